import CShims

/// The link-layer header type of a capture, as libpcap's DLT_ value (libpcap maps the LINKTYPE_
/// number stored in the file to it, e.g. LINKTYPE_RAW 101 → DLT_RAW 12 on Linux).
public struct LinkType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32

    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// Ethernet II (with optional 802.1Q tags): tcpdump on a veth or a physical NIC.
    public static let ethernet = LinkType(rawValue: DLT_EN10MB)
    /// Bare IPv4 or IPv6 packets: what a TUN or a VXLAN device's inner side looks like once the
    /// Ethernet header is gone; what Weft writes for packets it would hand to the TUN or the socket.
    public static let raw = LinkType(rawValue: DLT_RAW)
    /// Bare IPv4 only (LINKTYPE_IPV4).
    public static let ipv4 = LinkType(rawValue: DLT_IPV4)
    /// Linux "cooked" capture v1: tcpdump -i any before libpcap 1.10.
    public static let linuxSLL = LinkType(rawValue: DLT_LINUX_SLL)
    /// Linux "cooked" capture v2: tcpdump -i any with libpcap ≥ 1.10.
    public static let linuxSLL2 = LinkType(rawValue: DLT_LINUX_SLL2)

    /// libpcap's name for the type, e.g. "EN10MB", "RAW", "LINUX_SLL2".
    public var description: String {
        guard let name = pcap_datalink_val_to_name(rawValue) else { return "DLT \(rawValue)" }
        return String(cString: name)
    }
}
