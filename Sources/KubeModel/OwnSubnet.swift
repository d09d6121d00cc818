import Addressing

/// Our lease in Kubernetes mode: the node's podCIDR, checked as flannel's AcquireLease checks it.
public struct OwnSubnet: Equatable, Sendable {
    public let subnet: IPv4Prefix
    /// The node's IPv6 podCIDR when the network has IPv6 (EnableIPv6).
    public let ipv6Subnet: IPv6Prefix?
    /// The node's IPv6 podCIDR when the network has none: not carried, only noted.
    public let ignoredIPv6: String?

    public init(subnet: IPv4Prefix, ipv6Subnet: IPv6Prefix? = nil, ignoredIPv6: String? = nil) {
        self.subnet = subnet
        self.ipv6Subnet = ipv6Subnet
        self.ignoredIPv6 = ignoredIPv6
    }

    /// A line to log when the node is dual-stack; nil otherwise.
    public func note(node: String) -> String? {
        ignoredIPv6.map {
            "node \(KubeError.quoted(node)) also has the IPv6 pod cidr \($0); the network config has no IPv6 (EnableIPv6), so only \(subnet) is carried"
        }
    }

    /// Picks the IPv4 podCIDR of `node` (the last one, as AcquireLease does) and checks it lies
    /// inside `network`; with an `ipv6Network` (EnableIPv6), the IPv6 one too, checked against
    /// it. A missing podCIDR is `.podCIDRNotAssigned`: weftd waits for it, where flannel exits
    /// and crash-loops.
    public static func select(
        node: Node,
        network: IPv4Prefix,
        ipv6Network: IPv6Prefix? = nil
    ) throws(KubeError) -> OwnSubnet {
        let name = node.name
        let quotedName = KubeError.quoted(name)
        guard let single = node.spec.podCIDR, !single.isEmpty else {
            throw KubeError(
                .podCIDRNotAssigned,
                "node \(quotedName) pod cidr not assigned",
                fix:
                    "have kube-controller-manager assign one (--allocate-node-cidrs=true --cluster-cidr=\(network), or kubeadm init --pod-network-cidr=\(network)) or set it with kubectl patch node \(name) -p '{\"spec\":{\"podCIDR\":\"<a subnet of \(network)>\"}}'; weftd waits and becomes ready when it appears"
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
        var ipv4: IPv4Prefix?
        var ipv6: String?
        for (index, text) in texts.enumerated() {
            guard let cidr = PodCIDR(text) else {
                let field = list.isEmpty ? "spec.podCIDR" : "spec.podCIDRs[\(index)]"
                throw KubeError(
                    .podCIDR,
                    "node \(quotedName) \(field): invalid CIDR address: \(text)",
                    fix:
                        "the podCIDR must be a CIDR such as \(network.network)/24; check how it was assigned (kube-controller-manager or kubectl patch)"
                )
            }
            switch cidr {
            case .ipv4(let prefix): ipv4 = prefix
            case .ipv6(let prefix): ipv6 = prefix
            }
        }
        guard let ipv4 else {
            throw KubeError(
                .podCIDR,
                "node \(quotedName) has only the IPv6 pod cidr \(ipv6 ?? ""): IPv6 is not yet supported by Weft",
                fix:
                    "give the cluster an IPv4 cluster CIDR too (dual-stack: --cluster-cidr=\(network),<IPv6 CIDR>) so the node gets an IPv4 podCIDR"
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
        guard let ipv6Network else { return OwnSubnet(subnet: ipv4, ignoredIPv6: ipv6) }
        guard let ipv6, let prefix = IPv6Prefix(ipv6) else { return OwnSubnet(subnet: ipv4) }
        guard ipv6Network.contains(prefix) else {
            throw KubeError(
                .podCIDR,
                "subnet \"\(ipv6Network)\" specified in the flannel net config doesn't contain \"\(ipv6)\" IPv6 PodCIDR of the \(quotedName) node",
                fix:
                    "make net-conf.json's IPv6Network the cluster's IPv6 CIDR (the second --cluster-cidr of kube-controller-manager), which must contain every node's IPv6 podCIDR"
            )
        }
        return OwnSubnet(subnet: ipv4, ipv6Subnet: prefix)
    }
}
