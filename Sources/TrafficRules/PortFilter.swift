import Addressing
import Foundation

/// The backend's UDP port open to the peers only: a set of the peers' PublicIPs and, on the input
/// hook, one rule that drops a datagram to the port from any other source and counts it.
///
/// flanneld and the kernel's VXLAN device accept encapsulated packets from anyone who can reach
/// the port; Calico filters the same way with an ipset. The input hook sees only datagrams for
/// this host, after routing and before the socket (the user-space engine's or the kernel device's),
/// so a forwarded datagram to the same port on another host is left alone.
///
///     set peers { type ipv4_addr; elements = { <each peer's PublicIP> } }
///     chain input: udp dport <port> ip saddr != @peers counter name "port-filter-dropped" drop
///
/// A backend that listens on the same port over the IPv6 underlay too (kernel vxlan's
/// flannel-v6.<VNI> in a dual-stack network) gets the same set, chain and counter in
/// `table ip6 weft`, holding the peers' PublicIPv6 (`ipv6Peers`, type ipv6_addr).
///
/// The set holds each lease's PublicIP as advertised: a peer whose datagrams arrive from another
/// address (a NAT between the nodes rewriting the source) is dropped, as the engine's own
/// unknown-sender check drops it.
public struct PortFilter: Equatable, Sendable {
    public static let setName = "peers"
    public static let counterName = "port-filter-dropped"
    public static let chainName = "input"

    /// The backend's UDP port (vxlan: Backend.Port or 8472; udp: Backend.Port or 8285).
    public var port: UInt16
    /// Each peer's PublicIP as its lease advertises it.
    public var peers: Set<IPv4Address>
    /// Each peer's PublicIPv6, when the backend listens over the IPv6 underlay too; nil when it
    /// does not (no `table ip6 weft` filter).
    public var ipv6Peers: Set<IPv6Address>?

    public init(port: UInt16, peers: Set<IPv4Address>, ipv6Peers: Set<IPv6Address>? = nil) {
        self.port = port
        self.peers = peers
        self.ipv6Peers = ipv6Peers
    }

    /// The chain of `table ip weft`, as `nft list table` prints it.
    public var chain: NFTChain { Self.chain(TrafficRuleset.family, port: port) }

    /// The chain of `table ip6 weft`; nil without an IPv6 side.
    public var ipv6Chain: NFTChain? { ipv6Peers == nil ? nil : Self.chain(TrafficRuleset.ipv6Family, port: port) }

    private static func chain(_ ip: String, port: UInt16) -> NFTChain {
        NFTChain(
            name: chainName,
            lines: [
                "type filter hook input priority filter; policy accept;",
                "udp dport \(port) \(ip) saddr != @\(setName) counter name \"\(counterName)\" drop",
            ]
        )
    }

    /// The set of peers, its elements in nft's address order.
    public var set: NFTSet { Self.set(of: peers) }

    /// The set of peers' PublicIPv6 in `table ip6 weft`; nil without an IPv6 side.
    public var ipv6Set: NFTSet? { ipv6Peers.map { Self.set(of: $0) } }

    private static func set<Address: IPAddress>(of peers: Set<Address>) -> NFTSet {
        let type = Address.bitWidth == 32 ? "ipv4_addr" : "ipv6_addr"
        return NFTSet(name: setName, lines: ["type \(type)"], elements: peers.sorted().map { "\($0)" })
    }

    /// What turns the set holding `old` into this filter's: each address added and removed, in
    /// address order.
    public func changes(from old: Set<IPv4Address>) -> (added: [IPv4Address], removed: [IPv4Address]) {
        Self.changes(peers, from: old)
    }

    public static func changes<Address: IPAddress>(
        _ new: Set<Address>,
        from old: Set<Address>
    ) -> (added: [Address], removed: [Address]) {
        (new.subtracting(old).sorted(), old.subtracting(new).sorted())
    }

    /// One nft transaction that turns the sets holding `old` (and `oldIPv6`, in `table ip6 weft`)
    /// into this filter's, nil when they are equal. All or nothing: a datagram meets the old sets
    /// or the new ones, never a half-made one.
    public func elementScript(from old: Set<IPv4Address>, ipv6 oldIPv6: Set<IPv6Address> = []) -> String? {
        var script = Self.elementLines(TrafficRuleset.family, peers, from: old)
        if let ipv6Peers { script += Self.elementLines(TrafficRuleset.ipv6Family, ipv6Peers, from: oldIPv6) }
        return script.isEmpty ? nil : script
    }

    private static func elementLines<Address: IPAddress>(
        _ family: String,
        _ new: Set<Address>,
        from old: Set<Address>
    ) -> String {
        let (added, removed) = changes(new, from: old)
        let set = "\(family) \(TrafficRuleset.table) \(setName)"
        var script = ""
        if !added.isEmpty { script += "add element \(set) { \(added.map { "\($0)" }.joined(separator: ", ")) }\n" }
        if !removed.isEmpty {
            script += "delete element \(set) { \(removed.map { "\($0)" }.joined(separator: ", ")) }\n"
        }
        return script
    }
}

/// One named set of the table: its name, its declaration lines (`type …`, `flags …`) and its
/// elements, as nft prints them.
public struct NFTSet: Equatable, Sendable {
    public var name: String
    public var lines: [String]
    public var elements: [String]

    public init(name: String, lines: [String], elements: [String]) {
        self.name = name
        self.lines = lines
        self.elements = elements
    }
}

/// What the filter's named counter holds: the datagrams it dropped and their bytes (IP headers
/// included, as nft counts them).
public struct PortFilterCounts: Equatable, Sendable {
    public var packets: UInt64
    public var bytes: UInt64

    public init(packets: UInt64 = 0, bytes: UInt64 = 0) {
        self.packets = packets
        self.bytes = bytes
    }

    public static func + (lhs: PortFilterCounts, rhs: PortFilterCounts) -> PortFilterCounts {
        PortFilterCounts(packets: lhs.packets &+ rhs.packets, bytes: lhs.bytes &+ rhs.bytes)
    }

    /// Reads `nft -j list counter …`: `{"nftables": [{"metainfo": …}, {"counter": {…, "packets": N,
    /// "bytes": N}}]}`. Nil when no counter object is in it.
    public init?(nftJSON: String) {
        struct Listing: Decodable {
            struct Object: Decodable { var counter: Counter? }
            struct Counter: Decodable {
                var packets: UInt64
                var bytes: UInt64
            }
            var nftables: [Object]
        }
        guard let listing = try? JSONDecoder().decode(Listing.self, from: Data(nftJSON.utf8)),
            let counter = listing.nftables.lazy.compactMap(\.counter).first
        else { return nil }
        self.init(packets: counter.packets, bytes: counter.bytes)
    }
}
