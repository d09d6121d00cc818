import Addressing

/// Our lease in Kubernetes mode: the node's podCIDR(s), checked as flannel's AcquireLease checks them.
public struct OwnSubnet: Equatable, Sendable {
    /// The node's IPv4 podCIDR; nil on an IPv6-only network (EnableIPv4 false).
    public let subnet: IPv4Prefix?
    /// The node's IPv6 podCIDR when the network has IPv6 (EnableIPv6).
    public let ipv6Subnet: IPv6Prefix?
    /// The node's podCIDR of the family the network does not carry: not used, only noted.
    public let ignored: String?

    public init(subnet: IPv4Prefix?, ipv6Subnet: IPv6Prefix? = nil, ignored: String? = nil) {
        self.subnet = subnet
        self.ipv6Subnet = ipv6Subnet
        self.ignored = ignored
    }

    /// A line to log when the node is dual-stack and the network is not; nil otherwise.
    public func note(node: String) -> String? {
        guard let ignored else { return nil }
        let (family, flag) =
            subnet == nil ? ("IPv4", "is IPv6-only (EnableIPv4 false)") : ("IPv6", "has no IPv6 (EnableIPv6)")
        let carried = subnet?.description ?? ipv6Subnet?.description ?? ""
        return
            "node \(KubeError.quoted(node)) also has the \(family) pod cidr \(ignored); the network config \(flag), so only \(carried) is carried"
    }

    /// Picks the node's IPv4 podCIDR (the last one, as AcquireLease does) and checks it lies
    /// inside `network`; with an `ipv6Network` (EnableIPv6), the IPv6 one too, checked against
    /// it. A nil `network` is an IPv6-only network (EnableIPv4 false): the IPv6 podCIDR alone
    /// makes the lease. A missing podCIDR is `.podCIDRNotAssigned`: weftd waits for it, where
    /// flannel exits and crash-loops.
    public static func select(
        node: Node,
        network: IPv4Prefix?,
        ipv6Network: IPv6Prefix? = nil
    ) throws(KubeError) -> OwnSubnet {
        let name = node.name
        let quotedName = KubeError.quoted(name)
        guard let network else {
            guard let ipv6Network else { preconditionFailure("a network config without IPv4 nor IPv6") }
            let cidrs = try podCIDRs(of: node, cluster: ipv6Network.description, example: "\(ipv6Network.network)/64")
            guard let ipv6 = cidrs.ipv6 else {
                throw KubeError(
                    .podCIDR,
                    "node \(quotedName) has only the IPv4 pod cidr \(cidrs.ipv4?.description ?? ""), but the network config is IPv6-only (EnableIPv4 false, IPv6Network \(ipv6Network))",
                    fix:
                        "give the cluster an IPv6 cluster CIDR inside \(ipv6Network) (kube-controller-manager --cluster-cidr, kubeadm --pod-network-cidr) and register the node again so it gets an IPv6 podCIDR, or set EnableIPv4 true with Network the IPv4 cluster CIDR"
                )
            }
            let prefix = try ipv6Prefix(ipv6, node: quotedName, within: ipv6Network)
            return OwnSubnet(subnet: nil, ipv6Subnet: prefix, ignored: cidrs.ipv4?.description)
        }
        let cidrs = try podCIDRs(of: node, cluster: network.description, example: "\(network.network)/24")
        guard let ipv4 = cidrs.ipv4 else {
            throw KubeError(
                .podCIDR,
                "node \(quotedName) has only the IPv6 pod cidr \(cidrs.ipv6 ?? ""), but the network config carries IPv4 (Network \(network))",
                fix:
                    "give the cluster an IPv4 cluster CIDR too (dual-stack: --cluster-cidr=\(network),<IPv6 CIDR>) so the node gets an IPv4 podCIDR, or make the network IPv6-only in net-conf.json (\"EnableIPv4\": false, \"EnableIPv6\": true, \"IPv6Network\": the IPv6 cluster CIDR)"
            )
        }
        // flannel's containsCIDR: the Network is no longer than the podCIDR and contains its address.
        guard network.contains(ipv4) else {
            throw KubeError(
                .podCIDR,
                "subnet \"\(network)\" specified in the flannel net config doesn't contain \"\(ipv4)\" PodCIDR of the \(quotedName) node",
                fix:
                    "make net-conf.json's Network the cluster CIDR (kube-controller-manager --cluster-cidr, kubeadm --pod-network-cidr), which must contain every node's podCIDR"
            )
        }
        guard let ipv6Network else { return OwnSubnet(subnet: ipv4, ignored: cidrs.ipv6) }
        guard let ipv6 = cidrs.ipv6, IPv6Prefix(ipv6) != nil else { return OwnSubnet(subnet: ipv4) }
        return OwnSubnet(subnet: ipv4, ipv6Subnet: try ipv6Prefix(ipv6, node: quotedName, within: ipv6Network))
    }

    /// The node's podCIDR of each family (the last of each, as AcquireLease's loop keeps it),
    /// after flannel's checks: spec.podCIDR set, at most two entries, each a CIDR.
    private static func podCIDRs(
        of node: Node,
        cluster: String,
        example: String
    ) throws(KubeError) -> (ipv4: IPv4Prefix?, ipv6: String?) {
        let name = node.name
        let quotedName = KubeError.quoted(name)
        guard let single = node.spec.podCIDR, !single.isEmpty else {
            throw KubeError(
                .podCIDRNotAssigned,
                "node \(quotedName) pod cidr not assigned",
                fix:
                    "have kube-controller-manager assign one (--allocate-node-cidrs=true --cluster-cidr=\(cluster), or kubeadm init --pod-network-cidr=\(cluster)) or set it with kubectl patch node \(name) -p '{\"spec\":{\"podCIDR\":\"<a subnet of \(cluster)>\"}}'; weftd waits and becomes ready when it appears"
            )
        }
        let list = node.spec.podCIDRs ?? []
        let texts = list.isEmpty ? [single] : list
        guard texts.count < 3 else {
            throw KubeError(
                .podCIDR,
                "node \(quotedName) pod cidrs should be IPv4/IPv6 only or dualstack",
                fix:
                    "spec.podCIDRs holds \(texts.joined(separator: ", ")); a node takes at most one IPv4 and one IPv6 podCIDR (set by kube-controller-manager)"
            )
        }
        var found: (ipv4: IPv4Prefix?, ipv6: String?) = (nil, nil)
        for (index, text) in texts.enumerated() {
            guard let cidr = PodCIDR(text) else {
                let field = list.isEmpty ? "spec.podCIDR" : "spec.podCIDRs[\(index)]"
                throw KubeError(
                    .podCIDR,
                    "node \(quotedName) \(field): invalid CIDR address: \(text)",
                    fix:
                        "the podCIDR must be a CIDR such as \(example); check how it was assigned (kube-controller-manager or kubectl patch)"
                )
            }
            switch cidr {
            case .ipv4(let prefix): found.ipv4 = prefix
            case .ipv6(let prefix): found.ipv6 = prefix
            }
        }
        return found
    }

    /// `text`, the node's IPv6 podCIDR, checked against IPv6Network as flannel's containsCIDR does.
    private static func ipv6Prefix(
        _ text: String,
        node quotedName: String,
        within ipv6Network: IPv6Prefix
    ) throws(KubeError) -> IPv6Prefix {
        guard let prefix = IPv6Prefix(text), ipv6Network.contains(prefix) else {
            throw KubeError(
                .podCIDR,
                "subnet \"\(ipv6Network)\" specified in the flannel net config doesn't contain \"\(text)\" IPv6 PodCIDR of the \(quotedName) node",
                fix:
                    "make net-conf.json's IPv6Network the cluster's IPv6 CIDR (the IPv6 --cluster-cidr of kube-controller-manager), which must contain every node's IPv6 podCIDR"
            )
        }
        return prefix
    }
}
