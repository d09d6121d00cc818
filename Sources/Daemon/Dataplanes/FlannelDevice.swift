import Config
import Netlink

/// The overlay device's name, flannel's: `flannel0` for udp, `flannel.<VNI>` for vxlan, a kernel
/// vxlan device (flanneld, and weftd's default kernel dataplane) or the engine's TUN
/// (--vxlan-dataplane=weft). Rules and scripts that name the device (`iptables -i flannel.1`,
/// monitoring) keep working when weftd replaces flanneld.
public enum FlannelDevice {
    public static let udpName = "flannel0"

    public static func vxlanName(vni: UInt32) -> String { "flannel.\(vni)" }

    /// flannel's second vxlan device, for a dual-stack network's IPv6 overlay over the IPv6 underlay.
    public static func ipv6VXLANName(vni: UInt32) -> String { "flannel-v6.\(vni)" }

    /// The device of `backend` (udp or vxlan; host-gw has none and gets udp's name).
    public static func name(_ backend: BackendConfig) -> String {
        name(vxlan: backend.kind == .vxlan, vni: backend.vni)
    }

    public static func name(vxlan: Bool, vni: UInt32) -> String {
        vxlan ? vxlanName(vni: vni) : udpName
    }

    /// flanneld (and weftd's kernel dataplane) leaves its device when it exits, so its kernel data
    /// path outlives it. A kernel vxlan device left under the name the engine's TUN takes would
    /// block the TUN and holds the vxlan UDP port, so the engine removes it, as flanneld replaces
    /// an incompatible flannel.<VNI> itself.
    /// Its neighbours, FDB entries and routes go with it; weftd's peer routes replace them. Returns
    /// true when it removed one; anything else by that name is left for the engine to report.
    static func removeKernelVXLAN(named name: String) throws(NetlinkError) -> Bool {
        var netlink = try RouteNetlink()
        guard let link = try netlink.link(named: name), link.kind == "vxlan" else { return false }
        try netlink.deleteLink(index: link.index)
        return true
    }
}
