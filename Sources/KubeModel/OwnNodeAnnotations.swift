import Addressing
import Config

/// What weftd reads from its own node's annotations before it publishes: the operator's
/// node-public-ip and public-ip-overwrite (reference §1.10), and the VtepMAC it published last time.
public struct OwnNodeAnnotations: Equatable, Sendable {
    public let nodeName: String
    public let annotations: [String: String]
    public let keys: AnnotationKeys

    public init(node: Node, keys: AnnotationKeys) {
        nodeName = node.name
        annotations = node.annotations
        self.keys = keys
    }

    /// node-public-ip, which replaces --public-ip before the interface is chosen (flannel's
    /// GetStoredPublicIP). It must be an address of this host: the interface choice checks that
    /// and should name `keys.nodePublicIP` when it is not.
    public func nodePublicIP() throws(KubeError) -> IPv4Address? {
        try address(
            keys.nodePublicIP,
            purpose: "a local address of this node (it chooses the interface, like --public-ip)",
            as: IPv4Address.self
        )
    }

    /// public-ip-overwrite: the address peers should use instead of ours (NAT). flannel copies it
    /// into public-ip unchecked; Weft refuses one that is not an IPv4 address, since every peer
    /// would skip the lease.
    public func publicIPOverwrite() throws(KubeError) -> IPv4Address? {
        try address(keys.publicIPOverwrite, purpose: "the IPv4 address peers reach this node at", as: IPv4Address.self)
    }

    /// public-ipv6-overwrite: public-ip-overwrite's IPv6 counterpart, refused unless an IPv6 address.
    public func publicIPv6Overwrite() throws(KubeError) -> IPv6Address? {
        try address(
            keys.publicIPv6Overwrite,
            purpose: "the IPv6 address peers reach this node at",
            as: IPv6Address.self
        )
    }

    /// The VtepMAC of our last backend-data, so flannel.1 keeps its MAC across restarts and peers'
    /// neighbour entries stay right (flannel's GetStoredMacAddresses). nil when absent or unreadable:
    /// the device then gets a new MAC and the patch publishes it.
    public func storedVtepMAC() -> MACAddress? {
        guard let raw = annotations[keys.backendData], !raw.isEmpty, raw != "null" else { return nil }
        return try? VXLANLeaseData.parse(raw).vtepMAC
    }

    private func address<Address: IPAddress>(
        _ key: String,
        purpose: String,
        as _: Address.Type
    ) throws(KubeError) -> Address? {
        guard let text = annotations[key], !text.isEmpty else { return nil }
        guard let address = Address(text.trimmingASCIIWhitespace) else {
            let family = Address.bitWidth == 32 ? "IPv4" : "IPv6"
            throw KubeError(
                .annotation,
                "node \(KubeError.quoted(nodeName)) annotation \(key) \(KubeError.quoted(text)) is not an \(family) address",
                fix:
                    "kubectl annotate node \(nodeName) --overwrite \(key)=<\(purpose)>, or remove it with kubectl annotate node \(nodeName) \(key)-"
            )
        }
        return address
    }
}
