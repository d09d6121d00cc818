import Addressing
import Config

/// flannel's AcquireLease as one pure step over our node from the mirror: the subnet, what peers
/// will see as our public-ip, and the annotation patch to send (if any).
///
/// flannel patches before it checks the podCIDR against Network, so a misconfigured node still
/// announces itself and peers route to a subnet outside the overlay; here nothing is published
/// until the subnet is usable.
public struct OwnLease: Equatable, Sendable {
    public let subnet: OwnSubnet
    /// public-ip-overwrite when set, else the local address in the attributes.
    public let advertisedPublicIP: IPv4Address
    /// The body for `APIRequest.patchNodeStatus(name)`; nil when the node already carries it all.
    public let annotationPatch: String?

    public static func acquire(
        node: Node,
        network: IPv4Prefix,
        ipv6Network: IPv6Prefix? = nil,
        attributes: LeaseAttributes,
        keys: AnnotationKeys
    ) throws(KubeError) -> OwnLease {
        let subnet = try OwnSubnet.select(node: node, network: network, ipv6Network: ipv6Network)
        let overwrite = try OwnNodeAnnotations(node: node, keys: keys).publicIPOverwrite()
        let patch = try AnnotationPatch.body(node: node, attributes: attributes, keys: keys)
        return OwnLease(subnet: subnet, advertisedPublicIP: overwrite ?? attributes.publicIP, annotationPatch: patch)
    }
}
