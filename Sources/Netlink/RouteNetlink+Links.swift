import CShims
import Glibc

extension RouteNetlink {
    /// The kind of link `index` as `ip -d link` names it (IFLA_INFO_KIND: "vxlan", "tun", "veth",
    /// ...); nil for a link without one (a physical NIC, lo).
    public mutating func linkKind(index: Int32) throws(NetlinkError) -> String? {
        try Self.linkKind(newLink: linkPayload(index: index))
    }

    /// The RTM_NEWLINK payload an RTM_GETLINK of link `index` answers with.
    mutating func linkPayload(index: Int32) throws(NetlinkError) -> [UInt8] {
        var message = NetlinkMessage(
            type: UInt16(RTM_GETLINK),
            flags: UInt16(NLM_F_REQUEST | NLM_F_ACK),
            sequence: nextSequence()
        )
        message.appendLinkHeader(index: index)
        let replies = try exchange(message, "RTM_GETLINK", "index \(index)")
        guard let link = replies.first(where: { $0.type == UInt16(RTM_NEWLINK) }) else {
            throw NetlinkError("RTM_GETLINK", "index \(index): the reply holds no link", code: EBADMSG)
        }
        return link.payload
    }

    /// The index and kind of the link named `name` in the calling thread's network namespace; nil
    /// when there is no such link.
    public mutating func link(named name: String) throws(NetlinkError) -> (index: Int32, kind: String?)? {
        guard let index = try? Self.interfaceIndex(name) else { return nil }
        return (index, try linkKind(index: index))
    }

    /// RTM_DELLINK: removes link `index` with its addresses, neighbours and routes.
    public mutating func deleteLink(index: Int32) throws(NetlinkError) {
        var message = NetlinkMessage(
            type: UInt16(RTM_DELLINK),
            flags: UInt16(NLM_F_REQUEST | NLM_F_ACK),
            sequence: nextSequence()
        )
        message.appendLinkHeader(index: index)
        try request(message, "RTM_DELLINK", "index \(index)")
    }

    static let linkHeaderSize = 16

    /// IFLA_INFO_KIND inside IFLA_LINKINFO of an RTM_NEWLINK payload, nil when absent. A short
    /// header or an attribute running past its parent throws EBADMSG.
    static func linkKind(newLink payload: [UInt8]) throws(NetlinkError) -> String? {
        try RouteNetlink.requireHeader(payload, linkHeaderSize, "RTM_GETLINK reply", "ifinfomsg")
        for (type, value) in try attributes(
            payload,
            in: linkHeaderSize..<payload.count,
            "RTM_GETLINK reply",
            "ifinfomsg"
        )
        where type == UInt16(IFLA_LINKINFO) {
            for (innerType, kind) in try attributes(payload, in: value, "RTM_GETLINK reply", "ifinfomsg")
            where innerType == UInt16(IFLA_INFO_KIND) {
                return String(decoding: payload[kind].prefix { $0 != 0 }, as: UTF8.self)
            }
        }
        return nil
    }

    /// Throws EBADMSG for `operation` when `payload` is shorter than its `headerSize`-byte
    /// `message` header (rtmsg, ifinfomsg, ...).
    static func requireHeader(
        _ payload: [UInt8],
        _ headerSize: Int,
        _ operation: String,
        _ message: String
    ) throws(NetlinkError) {
        guard payload.count < headerSize else { return }
        throw NetlinkError(operation, "\(message) of \(payload.count) bytes (needs \(headerSize))", code: EBADMSG)
    }

    /// The attributes (type without the nested and byte-order flags, value's byte range) that fill
    /// `range` of `bytes`, a whole `message` (rtmsg, ifinfomsg, ...). One whose length is too small
    /// or runs past the range throws EBADMSG for `operation`.
    static func attributes(
        _ bytes: [UInt8],
        in range: Range<Int>,
        _ operation: String,
        _ message: String
    ) throws(NetlinkError)
        -> [(UInt16, Range<Int>)]
    {
        var found: [(UInt16, Range<Int>)] = []
        var offset = range.lowerBound
        while offset + 4 <= range.upperBound {
            let length = Int(bytes.loadNative(UInt16.self, at: offset))
            guard length >= 4, offset + length <= range.upperBound else {
                throw NetlinkError(
                    operation,
                    "rtattr length \(length) at offset \(offset) of a \(bytes.count)-byte \(message)",
                    code: EBADMSG
                )
            }
            found.append((bytes.loadNative(UInt16.self, at: offset + 2) & 0x3FFF, (offset + 4)..<(offset + length)))
            offset += (length + 3) & ~3
        }
        return found
    }
}
