import Addressing
import Routes

/// flannel's udp proxy route table (proxy_amd64.c), reproduced as the baseline `RouteTable` is
/// benchmarked against: a linear array of (network, mask) → next hop, scanned front to back; the
/// first entry that contains the destination wins (no longest-prefix rule: flannel's subnets never
/// overlap), and a hit is swapped with entry 0 because "packets for same dest tend to come in
/// bursts". A lookup writes to the table, so one cache serves one thread.
///
/// Entries live in manually allocated memory, like the C array, so the comparison measures the
/// algorithm rather than Array's uniqueness checks.
public struct LinearRouteCache: ~Copyable {
    @usableFromInline
    struct Entry {
        @usableFromInline var network: UInt32
        @usableFromInline var mask: UInt32
        @usableFromInline var nextHop: NextHop
    }

    @usableFromInline var entries: UnsafeMutablePointer<Entry>
    @usableFromInline var entryCount: Int
    var capacity: Int

    public init(routes: some Sequence<Route> = [Route]()) {
        capacity = 8  // flannel's first allocation
        entries = .allocate(capacity: capacity)
        entryCount = 0
        for route in routes { setRoute(route) }
    }

    deinit { entries.deallocate() }

    /// The first route containing `destination`, which then moves to the front (swapped with the
    /// entry that was there, as flannel does).
    @inlinable
    public mutating func lookup(_ destination: IPv4Address) -> NextHop? {
        let address = destination.value
        var index = 0
        while index < entryCount {
            if address & entries[index].mask == entries[index].network {
                let hit = entries[index]
                if index != 0 {
                    entries[index] = entries[0]
                    entries[0] = hit
                }
                return hit.nextHop
            }
            index &+= 1
        }
        return nil
    }

    /// Replaces the next hop of an entry with the same subnet, or appends one (flannel's
    /// set_route; capacity doubles like its realloc).
    public mutating func setRoute(_ route: Route) {
        let network = route.subnet.network.value
        let mask = route.subnet.mask
        for index in 0..<entryCount where entries[index].network == network && entries[index].mask == mask {
            entries[index].nextHop = route.nextHop
            return
        }
        if entryCount == capacity {
            let grown = UnsafeMutablePointer<Entry>.allocate(capacity: capacity * 2)
            grown.moveInitialize(from: entries, count: entryCount)
            entries.deallocate()
            entries = grown
            capacity *= 2
        }
        (entries + entryCount).initialize(to: Entry(network: network, mask: mask, nextHop: route.nextHop))
        entryCount += 1
    }

    /// Removes the entry for `subnet`, moving the last entry into its place (flannel's del_route).
    /// Returns whether there was one.
    @discardableResult
    public mutating func removeRoute(_ subnet: IPv4Prefix) -> Bool {
        for index in 0..<entryCount
        where entries[index].network == subnet.network.value && entries[index].mask == subnet.mask {
            entries[index] = entries[entryCount - 1]
            entryCount -= 1
            return true
        }
        return false
    }

    public var count: Int { entryCount }

    /// The entries in their current order (lookups reorder them).
    public var routes: [Route] {
        (0..<entryCount).map { index in
            let entry = entries[index]
            let length = entry.mask.nonzeroBitCount
            return Route(subnet: IPv4Prefix(IPv4Address(entry.network), length: length), nextHop: entry.nextHop)
        }
    }
}
