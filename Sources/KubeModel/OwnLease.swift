import Addressing
import Config

/// flannel's AcquireLease as one pure step over our node from the mirror: the subnet, what peers
/// will see as our public-ip (and public-ipv6), and the annotation patch to send (if any).
///
/// flannel patches before it checks the podCIDR against Network, so a misconfigured node still
/// announces itself and peers route to a subnet outside the overlay; here nothing is published
/// until the subnet is usable.
public struct OwnLease: Equatable, Sendable {
    public let subnet: OwnSubnet
    /// public-ip-overwrite when set, else the address in the attributes (0.0.0.0 on an IPv6-only network).
    public let advertisedPublicIP: IPv4Address
    /// public-ipv6-overwrite when set, else the address in the attributes; nil without IPv6.
    public let advertisedPublicIPv6: IPv6Address?
    /// The body for `APIRequest.patchNodeStatus(name)`; nil when the node already carries it all.
    public let annotationPatch: String?

    /// A nil `network` is an IPv6-only network (EnableIPv4 false). flannel's backends leave
    /// PublicIP unset there, so public-ip is "0.0.0.0" where it is written (host-gw), whatever
    /// IPv4 address `attributes` has.
    public static func acquire(
        node: Node,
        network: IPv4Prefix?,
        ipv6Network: IPv6Prefix? = nil,
        attributes: LeaseAttributes,
        keys: AnnotationKeys
    ) throws(KubeError) -> OwnLease {
        let subnet = try OwnSubnet.select(node: node, network: network, ipv6Network: ipv6Network)
        let own = OwnNodeAnnotations(node: node, keys: keys)
        let overwrite = try own.publicIPOverwrite()
        let overwriteV6 = try ipv6Network == nil ? nil : own.publicIPv6Overwrite()
        var published = attributes
        if network == nil { published.publicIP = .any }
        let patch = try AnnotationPatch.body(node: node, attributes: published, keys: keys)
        return OwnLease(
            subnet: subnet,
            advertisedPublicIP: overwrite ?? published.publicIP,
            advertisedPublicIPv6: overwriteV6 ?? published.publicIPv6Address,
            annotationPatch: patch
        )
    }
}
