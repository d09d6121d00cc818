import Addressing
import Config

/// Another node's lease as flannel's nodeToLease reads it from the Node: the subnet from its
/// podCIDRs, the attributes from its annotations.
public struct PeerLease: Equatable, Sendable {
    public let nodeName: String
    public let subnet: IPv4Prefix
    public let attributes: LeaseAttributes
    /// The node's IPv6 podCIDR, read when the network has IPv6.
    public let ipv6Subnet: IPv6Prefix?

    public init(nodeName: String, subnet: IPv4Prefix, attributes: LeaseAttributes, ipv6Subnet: IPv6Prefix? = nil) {
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
    /// EnableIPv6: each node's IPv6 podCIDR, public-ipv6 and backend-v6-data are read too, and a
    /// node without them is unusable, as flannel's nodeToLease has it.
    public let ipv6: Bool

    public init(keys: AnnotationKeys, ownNodeName: String, ipv6: Bool = false) {
        self.keys = keys
        self.ownNodeName = ownNodeName
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
        let publicIPText = annotations[keys.publicIP] ?? ""
        guard let publicIP = IPv4Address(publicIPText) else {
            if publicIPText.isEmpty { return .failure(Why(text: "annotation \(keys.publicIP) is missing")) }
            return .failure(
                Why(text: "annotation \(keys.publicIP) \(KubeError.quoted(publicIPText)) is not an IPv4 address")
            )
        }
        let subnet: IPv4Prefix
        switch podSubnet(node) {
        case .success(let found): subnet = found
        case .failure(let why): return .failure(why)
        }
        let backendType = annotations[keys.backendType] ?? ""
        let rawData = annotations[keys.backendData] ?? ""
        let backendData = rawData.isEmpty || rawData == "null" ? nil : rawData
        var attributes = LeaseAttributes(publicIP: publicIP, backendType: backendType, backendData: backendData)
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
        let ipv6Subnet: IPv6Prefix
        switch podIPv6Subnet(node) {
        case .success(let found): ipv6Subnet = found
        case .failure(let why): return .failure(why)
        }
        return .success(PeerLease(nodeName: node.name, subnet: subnet, attributes: attributes, ipv6Subnet: ipv6Subnet))
    }

    /// nodeToLease's IPv6 half: the first IPv6 entry of podCIDRs (or podCIDR when the list is empty).
    private func podIPv6Subnet(_ node: Node) -> Result<IPv6Prefix, Why> {
        let list = node.spec.podCIDRs ?? []
        let texts = list.isEmpty ? [node.spec.podCIDR ?? ""] : list
        for text in texts {
            if case .ipv6(let cidr) = PodCIDR(text), let prefix = IPv6Prefix(cidr) { return .success(prefix) }
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
        for (index, text) in texts.enumerated() {
            let field = list.isEmpty ? "spec.podCIDR" : "spec.podCIDRs[\(index)]"
            guard let cidr = PodCIDR(text) else {
                return .failure(Why(text: "\(field): invalid CIDR address: \(text)"))
            }
            if let prefix = cidr.ipv4 { return .success(prefix) }
        }
        return .failure(
            Why(
                text:
                    "missing IPv4 address on n.Spec.PodCIDRs (spec.podCIDRs holds only \(texts.joined(separator: ", ")); IPv6 is not yet supported by Weft)"
            )
        )
    }
}
