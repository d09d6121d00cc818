import Addressing
import Netlink

/// What to do with whatever holds the name flannel.<VNI> (flannel-v6.<VNI>) before the kernel
/// dataplane starts, decided from the kernel's description of it alone.
public enum VXLANDeviceDecision: Equatable, Sendable {
    /// Nothing by that name: create the device.
    case create
    /// A compatible vxlan device (flanneld's, or a previous run's): keep it with its entries, so
    /// traffic does not stop; its MAC, MTU and address are set to what the lease says.
    case adopt(index: Int32)
    /// A device weftd or flanneld made that cannot serve (weftd's TUN, or a vxlan device with
    /// another VNI, port, address, address family or underlay): delete it, with its entries, and
    /// create ours.
    case replace(index: Int32, reason: String)
    /// A device of another kind (a bridge, a veth): someone else's, left alone; weftd cannot start.
    case refuse(String)

    public static func decide<Address>(existing: LinkState?, wanted: VXLANLinkOf<Address>) -> VXLANDeviceDecision {
        guard let existing else { return .create }
        switch existing.kind {
        case "vxlan":
            guard let attributes = existing.vxlan(Address.self) else {
                if let other = existing.vxlan?.local.map({ "\($0)" }) ?? existing.vxlan6?.local.map({ "\($0)" }) {
                    return .replace(
                        index: existing.index,
                        reason: "a vxlan device with local address \(other), wanted an \(Address.familyName) one"
                    )
                }
                return .replace(
                    index: existing.index,
                    reason: existing.vxlan == nil
                        ? "a vxlan device whose attributes the kernel did not report"
                        : "a vxlan device without a local address, wanted an \(Address.familyName) one"
                )
            }
            if let incompatibility = attributes.incompatibility(with: wanted) {
                return .replace(index: existing.index, reason: "an incompatible vxlan device (\(incompatibility))")
            }
            return .adopt(index: existing.index)
        case "tun":
            return .replace(index: existing.index, reason: "a TUN device (weftd's user-space vxlan dataplane)")
        default:
            let kind = existing.kind.map { "a \($0) device" } ?? "a device of no kind"
            return .refuse(
                "\(wanted.name) exists as \(kind), which neither weftd nor flanneld makes; delete it (ip link del \(wanted.name)); weftd leaves it alone"
            )
        }
    }
}
