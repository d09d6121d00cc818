import Addressing

/// What the route table needs of an address family, so one builder, one lookup and one publisher
/// serve both IPv4 and IPv6 (DESIGN.md §3). Every requirement is a static function the compiler
/// resolves when it specializes the table for a family: `RouteTable` (IPv4) compiles to the same
/// code it did before the family was a parameter, and `IPv6RouteTable` to its 128-bit twin.
public protocol RouteFamily {
    /// An address as an unsigned integer, most significant bit first: UInt32, UInt128.
    associatedtype Key: FixedWidthInteger & UnsignedInteger & Sendable
    associatedtype Address: Hashable & Sendable
    associatedtype Prefix: Hashable & Sendable
    /// One peer's subnet and how to reach it. Must be trivial (no references): snapshots are
    /// freed without deinitialization.
    associatedtype Entry: Hashable & Sendable
    associatedtype Hop: Hashable & Sendable
    /// The underlay address a peer's datagrams come from, for `isPeer`.
    associatedtype PeerAddress: Comparable & Sendable

    static func key(_ address: Address) -> Key
    static func network(of prefix: Prefix) -> Key
    static func length(of prefix: Prefix) -> Int
    static func subnet(of entry: Entry) -> Prefix
    static func nextHop(of entry: Entry) -> Hop
    static func peer(of entry: Entry) -> PeerAddress
    /// A second underlay address the entry's peer sends from (IPv6: its PublicIPv6), or nil.
    static func otherPeer(of entry: Entry) -> PeerAddress?
}

extension RouteFamily {
    /// The network mask of a `length`-bit prefix as a key.
    @inlinable static func mask(_ length: Int) -> Key {
        length == 0 ? 0 : Key.max << (Key.bitWidth - length)
    }
}

/// IPv4 overlays: flannel's Network and SubnetLen, routes to the peers' PublicIPs.
public enum IPv4Routing: RouteFamily {
    public typealias Key = UInt32
    public typealias Entry = Route
    public typealias Hop = NextHop

    @inlinable public static func key(_ address: IPv4Address) -> UInt32 { address.value }
    @inlinable public static func network(of prefix: IPv4Prefix) -> UInt32 { prefix.network.value }
    @inlinable public static func length(of prefix: IPv4Prefix) -> Int { prefix.length }
    @inlinable public static func subnet(of entry: Route) -> IPv4Prefix { entry.subnet }
    @inlinable public static func nextHop(of entry: Route) -> NextHop { entry.nextHop }
    @inlinable public static func peer(of entry: Route) -> IPv4Address { entry.nextHop.publicIP }
    @inlinable public static func otherPeer(of entry: Route) -> IPv4Address? { nil }
}

/// IPv6 overlays: flannel's IPv6Network and IPv6SubnetLen (a /48 or /56 of /64s by default). A
/// lookup answers the IPv4 next hop; `lookupRoute` the IPv6 underlay too. A peer's underlay
/// addresses are IPv6 ones, its IPv4 PublicIP in IPv4-mapped form (::ffff:198.18.0.3) beside its
/// PublicIPv6, so one `isPeer` knows senders of either underlay.
public enum IPv6Routing: RouteFamily {
    public typealias Key = UInt128
    public typealias Entry = IPv6Route
    public typealias Hop = NextHop
    public typealias PeerAddress = IPv6Address

    @inlinable public static func key(_ address: IPv6Address) -> UInt128 { address.value }
    @inlinable public static func network(of prefix: IPv6Prefix) -> UInt128 { prefix.network.value }
    @inlinable public static func length(of prefix: IPv6Prefix) -> Int { prefix.length }
    @inlinable public static func subnet(of entry: IPv6Route) -> IPv6Prefix { entry.subnet }
    @inlinable public static func nextHop(of entry: IPv6Route) -> NextHop { entry.nextHop }
    @inlinable public static func peer(of entry: IPv6Route) -> IPv6Address { mapped(entry.nextHop.publicIP) }
    @inlinable public static func otherPeer(of entry: IPv6Route) -> IPv6Address? {
        entry.hasIPv6Underlay ? entry.publicIPv6 : nil
    }

    /// ::ffff:a.b.c.d.
    @inlinable public static func mapped(_ address: IPv4Address) -> IPv6Address {
        IPv6Address(0xFFFF << 32 | UInt128(address.value))
    }
}

extension RouteTableOf where Family == IPv6Routing {
    /// Whether `publicIP` is the IPv4 underlay address of any route's peer.
    @inlinable
    public func isPeer(publicIP: IPv4Address) -> Bool { isPeer(publicIP: IPv6Routing.mapped(publicIP)) }
}

/// The IPv4 table, snapshot, publisher and reader the engine and control plane use.
public typealias RouteTable = RouteTableOf<IPv4Routing>
public typealias RouteSnapshot = RouteSnapshotOf<IPv4Routing>
public typealias RouteTablePublisher = RouteTablePublisherOf<IPv4Routing>
public typealias RouteTableReader = RouteTableReaderOf<IPv4Routing>

/// Their IPv6 twins: the same guarantees (immutable snapshots, lock-free publication, no
/// allocation per lookup), keyed by 128-bit addresses.
public typealias IPv6RouteTable = RouteTableOf<IPv6Routing>
public typealias IPv6RouteSnapshot = RouteSnapshotOf<IPv6Routing>
public typealias IPv6RouteTablePublisher = RouteTablePublisherOf<IPv6Routing>
public typealias IPv6RouteTableReader = RouteTableReaderOf<IPv6Routing>
