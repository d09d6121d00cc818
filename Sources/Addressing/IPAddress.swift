/// What code written once for both families needs of an address: its value as an integer (subnet
/// arithmetic), its width, its bytes in network order (netlink attributes, nft set elements) and
/// its prefix type. The per-packet code keeps the concrete types; this serves the control-plane
/// layers (allocation, netlink, host-gw, nft), as NIO's SocketAddress .v4/.v6 made a parameter.
public protocol IPAddress: Hashable, Comparable, Sendable, LosslessStringConvertible {
    associatedtype Prefix: IPPrefix where Prefix.Address == Self
    /// The address as a host-order integer: UInt32 or UInt128.
    associatedtype Value: FixedWidthInteger & UnsignedInteger & Sendable
    var value: Value { get }
    init(_ value: Value)
    /// The unspecified address (0.0.0.0, ::), flannel's "unset".
    static var any: Self { get }
    /// The address in network order: 4 or 16 bytes.
    var networkBytes: [UInt8] { get }
    /// nil unless `bytes` holds exactly `bitWidth / 8` bytes (network order).
    init?(networkBytes bytes: some Collection<UInt8>)
}

/// A network of either family: IPv4Prefix, IPv6Prefix.
public protocol IPPrefix: Hashable, Sendable, LosslessStringConvertible {
    associatedtype Address: IPAddress where Address.Prefix == Self
    /// Masks off host bits.
    init(_ address: Address, length: Int)
    var network: Address { get }
    var length: Int { get }
    var last: Address { get }
    func contains(_ address: Address) -> Bool
    func contains(_ other: Self) -> Bool
    func overlaps(_ other: Self) -> Bool
    /// The prefix of the same length right after this one; nil past the family's last address.
    var next: Self? { get }
}

extension IPAddress {
    /// Bits in an address of this family: 32 or 128, the width of its integer value.
    public static var bitWidth: Int { Value.bitWidth }
}

extension IPv4Address: IPAddress {
    public typealias Prefix = IPv4Prefix

    public var networkBytes: [UInt8] { withUnsafeBytes(of: networkOrder) { Array($0) } }

    public init?(networkBytes bytes: some Collection<UInt8>) {
        guard bytes.count == 4 else { return nil }
        self.init(bytes.reduce(0) { $0 << 8 | UInt32($1) })
    }
}

extension IPv6Address: IPAddress {
    public typealias Prefix = IPv6Prefix

    public var networkBytes: [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 16)
        bytes.withUnsafeMutableBytes { store(to: $0.baseAddress!) }
        return bytes
    }

    public init?(networkBytes bytes: some Collection<UInt8>) {
        guard bytes.count == 16 else { return nil }
        self.init(bytes.reduce(0) { $0 << 8 | UInt128($1) })
    }
}

extension IPv4Prefix: IPPrefix {}
extension IPv6Prefix: IPPrefix {}
