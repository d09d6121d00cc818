import Addressing
import CShims
import Glibc

/// One IPv4 address of a link, as `ip -4 addr show dev` lists it.
public struct LinkAddress: Hashable, Sendable, CustomStringConvertible {
    public var interfaceIndex: Int32
    /// IFA_LOCAL (IFA_ADDRESS when the kernel gave no IFA_LOCAL).
    public var address: IPv4Address
    public var prefixLength: Int

    public init(interfaceIndex: Int32, address: IPv4Address, prefixLength: Int) {
        self.interfaceIndex = interfaceIndex
        self.address = address
        self.prefixLength = prefixLength
    }

    public var description: String { "\(address)/\(prefixLength) dev \(interfaceIndex)" }
}

/// struct ifaddrmsg plus its attributes, both ways.
enum AddressMessage {
    static let headerSize = 8

    /// RTM_GETADDR with NLM_F_DUMP for AF_INET: every link's; the caller keeps one link's.
    static func dumpRequest(sequence: UInt32) -> NetlinkMessage {
        var message = NetlinkMessage(
            type: UInt16(RTM_GETADDR),
            flags: UInt16(NLM_F_REQUEST) | weft_nlm_f_dump,
            sequence: sequence
        )
        message.append(UInt8(AF_INET))
        message.append(UInt8(0))
        message.append(UInt8(0))
        message.append(UInt8(0))
        message.append(UInt32(0))
        return message
    }

    /// RTM_DELADDR for `address`.
    static func delete(_ address: LinkAddress, sequence: UInt32) -> NetlinkMessage {
        var message = NetlinkMessage(
            type: UInt16(RTM_DELADDR),
            flags: UInt16(NLM_F_REQUEST | NLM_F_ACK),
            sequence: sequence
        )
        // struct ifaddrmsg: family, prefixlen, flags, scope, index.
        message.append(UInt8(AF_INET))
        message.append(UInt8(address.prefixLength))
        message.append(UInt8(0))
        message.append(UInt8(0))
        message.append(UInt32(bitPattern: address.interfaceIndex))
        message.appendAttribute(type: UInt16(IFA_LOCAL), address.address.networkOrder)
        return message
    }

    /// An RTM_NEWADDR payload; nil for another family. Short or overrunning input throws EBADMSG.
    static func decode(_ payload: [UInt8]) throws(NetlinkError) -> LinkAddress? {
        guard payload.count >= headerSize else {
            throw NetlinkError(
                "RTM_GETADDR reply",
                "ifaddrmsg of \(payload.count) bytes (needs \(headerSize))",
                code: EBADMSG
            )
        }
        guard payload[0] == UInt8(AF_INET) else { return nil }
        var local: IPv4Address?
        var address: IPv4Address?
        for (type, range) in try RouteNetlink.attributes(
            payload,
            in: headerSize..<payload.count,
            "RTM_GETADDR reply",
            "ifaddrmsg"
        )
        where range.count == 4 {
            let value = IPv4Address(networkOrder: payload.loadNative(UInt32.self, at: range.lowerBound))
            if type == UInt16(IFA_LOCAL) { local = value }
            if type == UInt16(IFA_ADDRESS) { address = value }
        }
        guard let found = local ?? address else { return nil }
        return LinkAddress(
            interfaceIndex: Int32(bitPattern: payload.loadNative(UInt32.self, at: 4)),
            address: found,
            prefixLength: Int(payload[1])
        )
    }
}

extension RouteNetlink {
    /// The IPv4 addresses of link `index`.
    public mutating func addresses(interfaceIndex index: Int32) throws(NetlinkError) -> [LinkAddress] {
        var found: [LinkAddress] = []
        for payload in try dump(
            { AddressMessage.dumpRequest(sequence: $0) },
            "RTM_GETADDR dump",
            "AF_INET",
            type: UInt16(RTM_NEWADDR)
        ) {
            if let address = try AddressMessage.decode(payload), address.interfaceIndex == index {
                found.append(address)
            }
        }
        return found
    }

    /// RTM_DELADDR. EADDRNOTAVAIL when the link does not hold it.
    public mutating func deleteAddress(_ address: LinkAddress) throws(NetlinkError) {
        try request(AddressMessage.delete(address, sequence: nextSequence()), "RTM_DELADDR", "\(address)")
    }
}
