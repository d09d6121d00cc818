import Addressing
import CShims
import Glibc

/// A neighbour entry of either family: `ip neigh add <address> lladdr <mac> dev <index> nud
/// permanent`, ARP for IPv4 (`NeighbourEntry`), NDP for IPv6 (`IPv6NeighbourEntry`). flannel gives
/// each peer's subnet address its VTEP MAC this way, so the kernel never resolves over the tunnel.
public struct NeighbourEntryOf<Address: IPAddress>: Hashable, Sendable {
    public var interfaceIndex: Int32
    /// NDA_DST.
    public var address: Address
    /// NDA_LLADDR; nil for an entry still resolving or failed.
    public var mac: MACAddress?
    /// ndm_state: NUD_PERMANENT (0x80), NUD_REACHABLE, NUD_FAILED, ...
    public var state: UInt16

    public init(interfaceIndex: Int32, address: Address, mac: MACAddress?, state: UInt16 = UInt16(NUD_PERMANENT)) {
        self.interfaceIndex = interfaceIndex
        self.address = address
        self.mac = mac
        self.state = state
    }

    public var isPermanent: Bool { state & UInt16(NUD_PERMANENT) != 0 }
}

public typealias NeighbourEntry = NeighbourEntryOf<IPv4Address>
public typealias IPv6NeighbourEntry = NeighbourEntryOf<IPv6Address>

extension NeighbourEntryOf: CustomStringConvertible {
    /// `ip neigh`'s shape: "10.244.2.0 dev 5 lladdr 0e:00:00:00:00:02 PERMANENT"; dev is the index.
    public var description: String {
        "\(address) dev \(interfaceIndex)" + (mac.map { " lladdr \($0)" } ?? "")
            + (isPermanent ? " PERMANENT" : " state 0x\(String(state, radix: 16))")
    }
}

/// A bridge forwarding entry on a vxlan device: `bridge fdb replace <mac> dev <index> dst
/// <destination> self permanent`. flannel sends frames for each peer's VTEP MAC to its PublicIP
/// (`FDBEntry`) or, on flannel-v6.<VNI>, its PublicIPv6 (`IPv6FDBEntry`) so.
public struct FDBEntryOf<Address: IPAddress>: Hashable, Sendable {
    public var interfaceIndex: Int32
    /// NDA_LLADDR.
    public var mac: MACAddress
    /// NDA_DST: the remote VTEP's underlay address; nil for an entry without one.
    public var destination: Address?
    public var state: UInt16
    /// ndm_flags: NTF_SELF for the vxlan device's own table.
    public var flags: UInt8

    public init(
        interfaceIndex: Int32,
        mac: MACAddress,
        destination: Address?,
        state: UInt16 = UInt16(NUD_PERMANENT),
        flags: UInt8 = UInt8(NTF_SELF)
    ) {
        self.interfaceIndex = interfaceIndex
        self.mac = mac
        self.destination = destination
        self.state = state
        self.flags = flags
    }
}

public typealias FDBEntry = FDBEntryOf<IPv4Address>
public typealias IPv6FDBEntry = FDBEntryOf<IPv6Address>

extension FDBEntryOf: CustomStringConvertible {
    /// `bridge fdb`'s shape: "0e:00:00:00:00:02 dev 5 dst 198.18.0.2 self permanent".
    public var description: String {
        var text = "\(mac) dev \(interfaceIndex)"
        if let destination { text += " dst \(destination)" }
        if flags & UInt8(NTF_SELF) != 0 { text += " self" }
        if state & UInt16(NUD_PERMANENT) != 0 { text += " permanent" }
        return text
    }
}

/// struct ndmsg plus its attributes, both ways, for AF_INET and AF_INET6 neighbours and AF_BRIDGE
/// FDB entries (whose NDA_DST is a 4- or 16-byte address). Attribute numbers are linux/neighbour.h's
/// (NDA_*).
enum NeighbourMessage {
    static let headerSize = 12

    /// RTM_NEWNEIGH (NLM_F_CREATE | NLM_F_REPLACE) or RTM_DELNEIGH for `entry`; a delete carries NDA_DST only.
    static func encode<Address>(
        _ entry: NeighbourEntryOf<Address>,
        type: UInt16,
        flags: UInt16,
        sequence: UInt32
    ) -> NetlinkMessage {
        var message = NetlinkMessage(type: type, flags: flags, sequence: sequence)
        message.appendNeighbourHeader(family: Address.netlinkFamily, index: entry.interfaceIndex, state: entry.state)
        message.appendAttribute(type: UInt16(NDA_DST), bytes: entry.address.networkBytes)
        if type == UInt16(RTM_NEWNEIGH), let mac = entry.mac {
            message.appendAttribute(type: UInt16(NDA_LLADDR), bytes: mac.bytes)
        }
        return message
    }

    /// RTM_NEWNEIGH or RTM_DELNEIGH for an FDB `entry` (AF_BRIDGE): NDA_LLADDR, then NDA_DST, so a
    /// delete removes only that remote of the MAC.
    static func encode<Address>(
        _ entry: FDBEntryOf<Address>,
        type: UInt16,
        flags: UInt16,
        sequence: UInt32
    ) -> NetlinkMessage {
        var message = NetlinkMessage(type: type, flags: flags, sequence: sequence)
        message.appendNeighbourHeader(
            family: UInt8(AF_BRIDGE),
            index: entry.interfaceIndex,
            state: entry.state,
            flags: entry.flags
        )
        message.appendAttribute(type: UInt16(NDA_LLADDR), bytes: entry.mac.bytes)
        if let destination = entry.destination {
            message.appendAttribute(type: UInt16(NDA_DST), bytes: destination.networkBytes)
        }
        return message
    }

    /// RTM_GETNEIGH with NLM_F_DUMP for `family`. A bare ndmsg asks the AF_BRIDGE dump for every
    /// device (rtnl_fdb_dump's legacy form); callers keep one device's entries.
    static func dumpRequest(family: UInt8, sequence: UInt32) -> NetlinkMessage {
        var message = NetlinkMessage(
            type: UInt16(RTM_GETNEIGH),
            flags: UInt16(NLM_F_REQUEST) | weft_nlm_f_dump,
            sequence: sequence
        )
        message.appendNeighbourHeader(family: family, index: 0, state: 0)
        return message
    }

    /// The fields of an RTM_NEWNEIGH payload: family, ifindex, state, flags, NDA_DST's bytes and
    /// NDA_LLADDR (6 bytes only). A short header or an attribute running past the payload throws EBADMSG.
    static func decode(
        _ payload: [UInt8]
    ) throws(NetlinkError)
        -> (family: Int32, index: Int32, state: UInt16, flags: UInt8, destination: ArraySlice<UInt8>?, mac: MACAddress?)
    {
        try RouteNetlink.requireHeader(payload, headerSize, "RTM_GETNEIGH reply", "ndmsg")
        var destination: ArraySlice<UInt8>?
        var mac: MACAddress?
        for (type, range) in try RouteNetlink.attributes(
            payload,
            in: headerSize..<payload.count,
            "RTM_GETNEIGH reply",
            "ndmsg"
        ) {
            if type == UInt16(NDA_DST) { destination = payload[range] }
            if type == UInt16(NDA_LLADDR), range.count == 6 { mac = MACAddress(bytes: payload[range]) }
        }
        return (
            Int32(payload[0]), payload.loadNative(Int32.self, at: 4), payload.loadNative(UInt16.self, at: 8),
            payload[10],
            destination, mac
        )
    }

    /// A neighbour of `Address`'s family; nil for the other family's or one without an address.
    static func neighbour<Address>(_ payload: [UInt8]) throws(NetlinkError) -> NeighbourEntryOf<Address>? {
        let fields = try decode(payload)
        guard fields.family == Int32(Address.netlinkFamily),
            let address = fields.destination.flatMap({ Address(networkBytes: $0) })
        else { return nil }
        return NeighbourEntryOf(interfaceIndex: fields.index, address: address, mac: fields.mac, state: fields.state)
    }

    /// An FDB entry whose destination is of `Address`'s family or absent; nil for one whose
    /// destination is of the other family.
    static func fdb<Address>(_ payload: [UInt8]) throws(NetlinkError) -> FDBEntryOf<Address>? {
        let fields = try decode(payload)
        guard fields.family == AF_BRIDGE, let mac = fields.mac else { return nil }
        var destination: Address?
        if let bytes = fields.destination {
            guard let address = Address(networkBytes: bytes) else { return nil }
            destination = address
        }
        return FDBEntryOf(
            interfaceIndex: fields.index,
            mac: mac,
            destination: destination,
            state: fields.state,
            flags: fields.flags
        )
    }
}

extension NetlinkMessage {
    /// struct ndmsg: family, pad1, pad2, ifindex, state, flags, type.
    mutating func appendNeighbourHeader(family: UInt8, index: Int32, state: UInt16, flags: UInt8 = 0) {
        append(family)
        append(UInt8(0))
        append(UInt16(0))
        append(index)
        append(state)
        append(flags)
        append(UInt8(0))
    }
}

extension RouteNetlink {
    /// The IPv4 neighbour entries of link `index`.
    public mutating func neighbours(interfaceIndex index: Int32) throws(NetlinkError) -> [NeighbourEntry] {
        try neighbours(interfaceIndex: index, IPv4Address.self)
    }

    /// The neighbour entries of `family` (IPv4Address.self: ARP, IPv6Address.self: NDP) on link `index`.
    public mutating func neighbours<Address>(
        interfaceIndex index: Int32,
        _ family: Address.Type
    ) throws(NetlinkError) -> [NeighbourEntryOf<Address>] {
        try neighbourDump(family: Address.netlinkFamily, Address.familyName, NeighbourMessage.neighbour)
            .filter { $0.interfaceIndex == index }
    }

    /// `ip neigh replace <address> lladdr <mac> dev <index> nud permanent`: adds the entry or
    /// rewrites the one already there for the address.
    public mutating func replaceNeighbour<Address>(_ entry: NeighbourEntryOf<Address>) throws(NetlinkError) {
        try change(.replace, "RTM_NEWNEIGH replace", entry, NeighbourMessage.encode)
    }

    /// RTM_DELNEIGH for the entry's address on its link. ENOENT when there is none.
    public mutating func deleteNeighbour<Address>(_ entry: NeighbourEntryOf<Address>) throws(NetlinkError) {
        try change(.delete, "RTM_DELNEIGH", entry, NeighbourMessage.encode)
    }

    /// The FDB entries of link `index` with an IPv4 destination or none.
    public mutating func fdbEntries(interfaceIndex index: Int32) throws(NetlinkError) -> [FDBEntry] {
        try fdbEntries(interfaceIndex: index, IPv4Address.self)
    }

    /// The FDB entries of link `index` whose destination is of `family` or absent (one per remote
    /// of each MAC, as `bridge fdb show dev` lists them).
    public mutating func fdbEntries<Address>(
        interfaceIndex index: Int32,
        _ family: Address.Type
    ) throws(NetlinkError) -> [FDBEntryOf<Address>] {
        try neighbourDump(family: UInt8(AF_BRIDGE), "AF_BRIDGE", NeighbourMessage.fdb)
            .filter { $0.interfaceIndex == index }
    }

    /// `bridge fdb replace <mac> dev <index> dst <destination> self permanent`: adds the entry, or
    /// points the MAC's existing entry at the new destination (vxlan rewrites its first remote).
    public mutating func replaceFDB<Address>(_ entry: FDBEntryOf<Address>) throws(NetlinkError) {
        try change(.replace, "RTM_NEWNEIGH fdb replace", entry, NeighbourMessage.encode)
    }

    /// RTM_DELNEIGH for the entry's MAC and destination: only that remote goes. ENOENT when there is none.
    public mutating func deleteFDB<Address>(_ entry: FDBEntryOf<Address>) throws(NetlinkError) {
        try change(.delete, "RTM_DELNEIGH fdb", entry, NeighbourMessage.encode)
    }

    private enum Change {
        case replace
        case delete
    }

    /// RTM_NEWNEIGH creating or replacing, or RTM_DELNEIGH, for a neighbour or FDB `entry` that
    /// `encode` writes given the message type, flags and sequence.
    private mutating func change<Entry: CustomStringConvertible>(
        _ change: Change,
        _ operation: String,
        _ entry: Entry,
        _ encode: (Entry, UInt16, UInt16, UInt32) -> NetlinkMessage
    ) throws(NetlinkError) {
        let (type, flags) =
            switch change {
            case .replace: (RTM_NEWNEIGH, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE)
            case .delete: (RTM_DELNEIGH, NLM_F_REQUEST | NLM_F_ACK)
            }
        try request(encode(entry, UInt16(type), UInt16(flags), nextSequence()), operation, "\(entry)")
    }

    /// Every entry an RTM_GETNEIGH dump of `family` lists that `parse` reads (nil: skipped).
    private mutating func neighbourDump<Entry>(
        family: UInt8,
        _ familyName: String,
        _ parse: ([UInt8]) throws(NetlinkError) -> Entry?
    ) throws(NetlinkError) -> [Entry] {
        try dump(
            { NeighbourMessage.dumpRequest(family: family, sequence: $0) },
            "RTM_GETNEIGH dump",
            familyName,
            type: UInt16(RTM_NEWNEIGH),
            parse
        )
    }

    /// What `parse` reads from each payload of `type` in a dump (nil: skipped), the dump read again
    /// (up to four times) when the kernel marks it interrupted by a concurrent change (NLM_F_DUMP_INTR).
    mutating func dump<Entry>(
        _ makeRequest: (UInt32) -> NetlinkMessage,
        _ operation: String,
        _ subject: String,
        type: UInt16,
        _ parse: ([UInt8]) throws(NetlinkError) -> Entry?
    ) throws(NetlinkError) -> [Entry] {
        for _ in 0..<4 {
            let replies = try exchange(makeRequest(nextSequence()), operation, subject, dump: true)
            if replies.contains(where: { $0.flags & weft_nlm_f_dump_intr != 0 }) { continue }
            var entries: [Entry] = []
            for reply in replies where reply.type == type {
                if let entry = try parse(reply.payload) { entries.append(entry) }
            }
            return entries
        }
        throw NetlinkError(operation, "\(subject) (interrupted four times by concurrent changes)", code: EAGAIN)
    }
}
