import Addressing
import Config

/// Another node's lease as flannel's nodeToLease reads it from the Node: the subnet from its
/// podCIDRs, the attributes from its annotations.
public struct PeerLease: Equatable, Sendable {
    public let nodeName: String
    /// The node's IPv4 podCIDR; nil on an IPv6-only network (EnableIPv4 false).
    public let subnet: IPv4Prefix?
    public let attributes: LeaseAttributes
    /// The node's IPv6 podCIDR, read when the network has IPv6.
    public let ipv6Subnet: IPv6Prefix?

    public init(nodeName: String, subnet: IPv4Prefix?, attributes: LeaseAttributes, ipv6Subnet: IPv6Prefix? = nil) {
        self.nodeName = nodeName
        self.subnet = subnet
        self.attributes = attributes
        self.ipv6Subnet = ipv6Subnet
    }
}

/// What a node is to us.
public enum PeerReading: Equatable, Sendable {
    case lease(PeerLease)
    /// Our own node: its lease is ours, not a route.
    case ownNode
    /// No `kube-subnet-manager: "true"`: not run by flannel or weftd, ignored silently.
    case notManaged
    /// A managed node whose lease does not parse: skipped, with flannel's log wording plus the
    /// node and field at fault.
    case unusable(String)
}

/// Turns nodes into peer leases for one annotation prefix and one own node.
public struct PeerLeaseReader: Equatable, Sendable {
    public let keys: AnnotationKeys
    public let ownNodeName: String
    /// EnableIPv4: each node's IPv4 podCIDR, public-ip and backend-data are read. Without it (an
    /// IPv6-only network) none of them is looked at, as flannel's nodeToLease has it.
    public let ipv4: Bool
    /// EnableIPv6: each node's IPv6 podCIDR, public-ipv6 and backend-v6-data are read too, and a
    /// node without them is unusable, as flannel's nodeToLease has it.
    public let ipv6: Bool

    public init(keys: AnnotationKeys, ownNodeName: String, ipv4: Bool = true, ipv6: Bool = false) {
        precondition(ipv4 || ipv6, "a network carries IPv4, IPv6 or both")
        self.keys = keys
        self.ownNodeName = ownNodeName
        self.ipv4 = ipv4
        self.ipv6 = ipv6
    }

    public func read(_ node: Node) -> PeerReading {
        guard node.name != ownNodeName else { return .ownNode }
        let annotations = node.annotations
        guard annotations[keys.kubeSubnetManager] == "true" else { return .notManaged }
        switch lease(node, annotations) {
        case .success(let lease): return .lease(lease)
        case .failure(let why):
            return .unusable(
                "Error turning node \(KubeError.quoted(node.name)) to lease: \(why.text); it is skipped until its flannel or weftd writes a valid lease"
            )
        }
    }

    private struct Why: Error {
        let text: String
    }

    private func lease(_ node: Node, _ annotations: [String: String]) -> Result<PeerLease, Why> {
        let backendType = annotations[keys.backendType] ?? ""
        // PublicIP stays 0.0.0.0 on an IPv6-only network, as in flannel's lease.
        var attributes = LeaseAttributes(publicIP: .any, backendType: backendType)
        var subnet: IPv4Prefix?
        if ipv4 {
            let publicIPText = annotations[keys.publicIP] ?? ""
            guard let publicIP = IPv4Address(publicIPText) else {
                if publicIPText.isEmpty { return .failure(Why(text: "annotation \(keys.publicIP) is missing")) }
                return .failure(
                    Why(text: "annotation \(keys.publicIP) \(KubeError.quoted(publicIPText)) is not an IPv4 address")
                )
            }
            switch podSubnet(node) {
            case .success(let found): subnet = found
            case .failure(let why): return .failure(why)
            }
            let rawData = annotations[keys.backendData] ?? ""
            attributes.publicIP = publicIP
            attributes.backendData = rawData.isEmpty || rawData == "null" ? nil : rawData
            if backendType == BackendConfig.Kind.vxlan.rawValue {
                // The vxlan dataplane needs the VtepMAC; better one line now than a failure per packet path.
                do {
                    _ = try attributes.vxlanData()
                } catch {
                    return .failure(
                        Why(text: "annotation \(keys.backendData) \(KubeError.quoted(rawData)): \(error.problem)")
                    )
                }
            }
        }
        guard ipv6 else { return .success(PeerLease(nodeName: node.name, subnet: subnet, attributes: attributes)) }
        let publicIPv6Text = annotations[keys.publicIPv6] ?? ""
        guard let publicIPv6 = IPv6Address(publicIPv6Text) else {
            if publicIPv6Text.isEmpty { return .failure(Why(text: "annotation \(keys.publicIPv6) is missing")) }
            return .failure(
                Why(text: "annotation \(keys.publicIPv6) \(KubeError.quoted(publicIPv6Text)) is not an IPv6 address")
            )
        }
        attributes.publicIPv6Address = publicIPv6
        let rawV6Data = annotations[keys.backendV6Data] ?? ""
        attributes.backendV6Data = rawV6Data.isEmpty || rawV6Data == "null" ? nil : rawV6Data
        if !ipv4, backendType == BackendConfig.Kind.vxlan.rawValue {
            // An IPv6-only vxlan peer is reached through flannel-v6.<VNI> alone: its VtepMAC is needed.
            do {
                _ = try attributes.vxlanV6Data()
            } catch {
                return .failure(
                    Why(text: "annotation \(keys.backendV6Data) \(KubeError.quoted(rawV6Data)): \(error.problem)")
                )
            }
        }
        let ipv6Subnet: IPv6Prefix
        switch podIPv6Subnet(node) {
        case .success(let found): ipv6Subnet = found
        case .failure(let why): return .failure(why)
        }
        return .success(PeerLease(nodeName: node.name, subnet: subnet, attributes: attributes, ipv6Subnet: ipv6Subnet))
    }

    /// nodeToLease's IPv6 half: the first IPv6 entry of podCIDRs (or podCIDR when the list is empty).
    private func podIPv6Subnet(_ node: Node) -> Result<IPv6Prefix, Why> {
        let texts: [String]
        switch podCIDRTexts(node) {
        case .success(let found): texts = found
        case .failure(let why): return .failure(why)
        }
        for (index, text) in texts.enumerated() {
            switch PodCIDR(text) {
            case .ipv4: continue
            case .ipv6(let cidr):
                if let prefix = IPv6Prefix(cidr) { return .success(prefix) }
            case nil: break
            }
            return .failure(Why(text: "\(field(node, index)): invalid CIDR address: \(text)"))
        }
        return .failure(
            Why(
                text:
                    "missing IPv6 address on n.Spec.PodCIDRs (spec.podCIDRs holds only \(texts.joined(separator: ", ")))"
            )
        )
    }

    /// nodeToLease takes the first IPv4 entry of podCIDRs (or podCIDR when the list is empty).
    private func podSubnet(_ node: Node) -> Result<IPv4Prefix, Why> {
        let texts: [String]
        switch podCIDRTexts(node) {
        case .success(let found): texts = found
        case .failure(let why): return .failure(why)
        }
        for (index, text) in texts.enumerated() {
            guard let cidr = PodCIDR(text) else {
                return .failure(Why(text: "\(field(node, index)): invalid CIDR address: \(text)"))
            }
            if let prefix = cidr.ipv4 { return .success(prefix) }
        }
        return .failure(
            Why(
                text:
                    "missing IPv4 address on n.Spec.PodCIDRs (spec.podCIDRs holds only \(texts.joined(separator: ", ")); an IPv6-only cluster needs \"EnableIPv4\": false in net-conf.json)"
            )
        )
    }

    /// podCIDRs, or podCIDR when the list is empty; more than two is refused, as nodeToLease does.
    private func podCIDRTexts(_ node: Node) -> Result<[String], Why> {
        let list = node.spec.podCIDRs ?? []
        let texts = list.isEmpty ? [node.spec.podCIDR ?? ""] : list
        guard texts.count < 3 else {
            return .failure(
                Why(
                    text:
                        "node \(KubeError.quoted(node.name)) pod cidrs should be IPv4/IPv6 only or dualstack (spec.podCIDRs holds \(texts.joined(separator: ", ")))"
                )
            )
        }
        return .success(texts)
    }

    private func field(_ node: Node, _ index: Int) -> String {
        (node.spec.podCIDRs ?? []).isEmpty ? "spec.podCIDR" : "spec.podCIDRs[\(index)]"
    }
}
