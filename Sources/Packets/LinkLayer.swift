/// What precedes the outer IPv4 header in a capture, named by its pcap link type.
public enum LinkLayer: Sendable, Equatable {
    /// Ethernet II (LINKTYPE_ETHERNET 1), optionally with one 802.1Q tag.
    case ethernet
    /// The IP header first (LINKTYPE_RAW 101, DLT_RAW 12 or 14, LINKTYPE_IPV4 228).
    case raw
    /// Linux cooked capture v1 (LINKTYPE_LINUX_SLL 113): 16 bytes, protocol at offset 14.
    case linuxCooked
    /// Linux cooked capture v2 (LINKTYPE_LINUX_SLL2 276): 20 bytes, protocol at offset 0.
    /// `tcpdump -i any` writes v1 or v2 depending on its version.
    case linuxCooked2

    /// The link layer for a pcap file's link type, or nil for one Weft does not read.
    public init?(linkType: Int) {
        switch linkType {
        case 1: self = .ethernet
        case 12, 14, 101, 228: self = .raw
        case 113: self = .linuxCooked
        case 276: self = .linuxCooked2
        default: return nil
        }
    }

    /// Bytes before the network header (before any VLAN tag).
    @inlinable public var headerLength: Int {
        switch self {
        case .ethernet: Ethernet.headerLength
        case .raw: 0
        case .linuxCooked: 16
        case .linuxCooked2: 20
        }
    }

    /// Where the EtherType-valued protocol field sits, or nil when there is none.
    @inlinable public var protocolOffset: Int? {
        switch self {
        case .ethernet: 12
        case .raw: nil
        case .linuxCooked: 14
        case .linuxCooked2: 0
        }
    }
}
