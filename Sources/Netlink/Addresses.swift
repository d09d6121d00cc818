import Addressing
import CShims
import Glibc

/// One address of a link, as `ip -4 addr show dev` (`ip -6`) lists it.
public struct LinkAddressOf<Address: IPAddress>: Hashable, Sendable, CustomStringConvertible {
    public var interfaceIndex: Int32
    /// IFA_LOCAL (IFA_ADDRESS when the kernel gave no IFA_LOCAL, as for IPv6).
    public var address: Address
    public var prefixLength: Int

    public init(interfaceIndex: Int32, address: Address, prefixLength: Int) {
        self.interfaceIndex = interfaceIndex
        self.address = address
        self.prefixLength = prefixLength
    }

    public var description: String { "\(address)/\(prefixLength) dev \(interfaceIndex)" }
}

public typealias LinkAddress = LinkAddressOf<IPv4Address>
public typealias LinkIPv6Address = LinkAddressOf<IPv6Address>

/// struct ifaddrmsg plus its attributes, both ways, for either family.
enum AddressMessage {
    static let headerSize = 8

    /// RTM_GETADDR with NLM_F_DUMP for `family`: every link's; the caller keeps one link's.
    static func dumpRequest(family: UInt8, sequence: UInt32) -> NetlinkMessage {
        var message = NetlinkMessage(
            type: UInt16(RTM_GETADDR),
            flags: UInt16(NLM_F_REQUEST) | weft_nlm_f_dump,
            sequence: sequence
        )
        message.append(family)
        message.append(UInt8(0))
        message.append(UInt8(0))
        message.append(UInt8(0))
        message.append(UInt32(0))
        return message
    }

    /// RTM_DELADDR for `address`.
    static func delete<Address>(_ address: LinkAddressOf<Address>, sequence: UInt32) -> NetlinkMessage {
        var message = NetlinkMessage(
            type: UInt16(RTM_DELADDR),
            flags: UInt16(NLM_F_REQUEST | NLM_F_ACK),
            sequence: sequence
        )
        // struct ifaddrmsg: family, prefixlen, flags, scope, index.
        message.append(Address.netlinkFamily)
        message.append(UInt8(address.prefixLength))
        message.append(UInt8(0))
        message.append(UInt8(0))
        message.append(UInt32(bitPattern: address.interfaceIndex))
        message.appendAttribute(type: UInt16(IFA_LOCAL), bytes: address.address.networkBytes)
        return message
    }

    /// An RTM_NEWADDR payload; nil for another family. Short or overrunning input throws EBADMSG.
    static func decode<Address>(_ payload: [UInt8]) throws(NetlinkError) -> LinkAddressOf<Address>? {
        try RouteNetlink.requireHeader(payload, headerSize, "RTM_GETADDR reply", "ifaddrmsg")
        guard payload[0] == Address.netlinkFamily else { return nil }
        var local: Address?
        var address: Address?
        for (type, range) in try RouteNetlink.attributes(
            payload,
            in: headerSize..<payload.count,
            "RTM_GETADDR reply",
            "ifaddrmsg"
        ) {
            guard let value = Address(networkBytes: payload[range]) else { continue }
            if type == UInt16(IFA_LOCAL) { local = value }
            if type == UInt16(IFA_ADDRESS) { address = value }
        }
        guard let found = local ?? address else { return nil }
        return LinkAddressOf(
            interfaceIndex: Int32(bitPattern: payload.loadNative(UInt32.self, at: 4)),
            address: found,
            prefixLength: Int(payload[1])
        )
    }
}

extension RouteNetlink {
    /// The IPv4 addresses of link `index`.
    public mutating func addresses(interfaceIndex index: Int32) throws(NetlinkError) -> [LinkAddress] {
        try addresses(interfaceIndex: index, IPv4Address.self)
    }

    /// The addresses of `family` (IPv4Address.self, IPv6Address.self) on link `index`; for IPv6
    /// the kernel's link-local fe80::/64 one among them.
    public mutating func addresses<Address>(
        interfaceIndex index: Int32,
        _ family: Address.Type
    ) throws(NetlinkError) -> [LinkAddressOf<Address>] {
        try dump(
            { AddressMessage.dumpRequest(family: Address.netlinkFamily, sequence: $0) },
            "RTM_GETADDR dump",
            Address.familyName,
            type: UInt16(RTM_NEWADDR),
            AddressMessage.decode
        )
        .filter { $0.interfaceIndex == index }
    }

    /// RTM_DELADDR. EADDRNOTAVAIL when the link does not hold it.
    public mutating func deleteAddress<Address>(_ address: LinkAddressOf<Address>) throws(NetlinkError) {
        try request(AddressMessage.delete(address, sequence: nextSequence()), "RTM_DELADDR", "\(address)")
    }
}
