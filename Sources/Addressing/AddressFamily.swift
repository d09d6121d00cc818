/// What IPv4Address and IPv6Address share, so subnet arithmetic is written once for both
/// families (NIO's SocketAddress .v4/.v6 made a parameter rather than two copies).
public protocol IPAddressProtocol: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The address as a host-order integer: UInt32 or UInt128.
    associatedtype Value: FixedWidthInteger & UnsignedInteger & Sendable
    var value: Value { get }
    init(_ value: Value)
    /// The unspecified address (0.0.0.0, ::), flannel's "unset".
    static var any: Self { get }
}

/// What IPv4Prefix and IPv6Prefix share.
public protocol IPPrefixProtocol: Hashable, Sendable, CustomStringConvertible {
    associatedtype Address: IPAddressProtocol
    var network: Address { get }
    var length: Int { get }
    var last: Address { get }
    /// Masks off host bits.
    init(_ address: Address, length: Int)
    func contains(_ address: Address) -> Bool
    func overlaps(_ other: Self) -> Bool
    /// The prefix of the same length right after this one; nil past the family's last address.
    var next: Self? { get }
}

extension IPPrefixProtocol {
    /// Bits in an address of this family: 32 or 128.
    public static var addressBits: Int { Address.Value.bitWidth }
}

extension IPv4Address: IPAddressProtocol {}
extension IPv6Address: IPAddressProtocol {}
extension IPv4Prefix: IPPrefixProtocol {}
extension IPv6Prefix: IPPrefixProtocol {}
