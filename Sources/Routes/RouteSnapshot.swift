import Addressing

/// Owns one immutable route table: built once from the control plane's routes, read by any number
/// of threads through `table`, freed when the snapshot is destroyed or, once handed to a
/// `RouteTablePublisher`, when no reader can still hold it.
///
/// Building rules:
/// - Duplicate subnets: the last one in the input wins. The control plane applies lease events in
///   order, so the last entry is the newest; rejecting would leave the dataplane on a stale table.
/// - A route for `localSubnet` itself is left out: our own lease is never a next hop (a packet for
///   it arriving from the TUN would be sent back to ourselves). flannel's lease watcher filters
///   the local lease the same way.
/// - Overlapping routes of different lengths: the longest prefix wins.
///
/// `RouteSnapshot` is the IPv4 snapshot, `IPv6RouteSnapshot` the IPv6 one.
public struct RouteSnapshotOf<Family: RouteFamily>: ~Copyable, @unchecked Sendable {
    // Unique owner of the block; `@unchecked Sendable` because the block is immutable after
    // `init` and ownership moves with the value.
    let header: UnsafeMutablePointer<RouteTableHeader<Family>>

    init(header: UnsafeMutablePointer<RouteTableHeader<Family>>) { self.header = header }

    /// The per-packet view; valid while this snapshot is alive.
    public var table: RouteTableOf<Family> { RouteTableOf(header: header) }

    deinit { RouteTableMemory.deallocate(header) }

    /// Hands the block to a new owner (the publisher) without freeing it.
    consuming func relinquish() -> UnsafeMutablePointer<RouteTableHeader<Family>> {
        let block = header
        discard self
        return block
    }
}

// One initializer per family, each calling the builder with concrete types, so that the optimizer
// specializes the builder for the family: called through the generic parameter alone, every
// publish would run it as unspecialized generic code (a witness call per comparison).

extension RouteSnapshotOf where Family == IPv4Routing {
    /// Builds the table. `network` and `subnetLength` are flannel's Network and SubnetLen: when every
    /// route is a `subnetLength` subnet of `network`, lookup is a direct index; any other route set
    /// (any lengths, routes outside `network`, nonsense lengths) is still served, by the
    /// longest-prefix strategy. Never fails.
    public init(
        routes: some Sequence<Route>,
        network: IPv4Prefix,
        subnetLength: Int,
        localSubnet: IPv4Prefix? = nil,
        generation: UInt64 = 0
    ) {
        self.init(
            header: RouteTableBuilder<IPv4Routing>.build(
                routes: Array(routes),
                network: network,
                subnetLength: subnetLength,
                localSubnet: localSubnet,
                generation: generation
            )
        )
    }
}

extension RouteSnapshotOf where Family == IPv6Routing {
    /// Builds the table, as for IPv4: `network` and `subnetLength` are flannel's IPv6Network and
    /// IPv6SubnetLen (a /48 or /56 of /64s gives the direct index).
    public init(
        routes: some Sequence<IPv6Route>,
        network: IPv6Prefix,
        subnetLength: Int,
        localSubnet: IPv6Prefix? = nil,
        generation: UInt64 = 0
    ) {
        self.init(
            header: RouteTableBuilder<IPv6Routing>.build(
                routes: Array(routes),
                network: network,
                subnetLength: subnetLength,
                localSubnet: localSubnet,
                generation: generation
            )
        )
    }
}

/// Above this many index bits (2^20 slots, 4 MiB of UInt32) the direct strategy costs more memory
/// and build time per publish than it saves; the longest-prefix strategy takes over. flannel's
/// default (a /16 Network of /24s) needs 8 bits; a /8 of /24s needs 16; an IPv6 /48 of /64s, 16.
let maximumDirectIndexBits = 20

enum RouteTableBuilder<Family: RouteFamily> {
    typealias Key = Family.Key

    static func build(
        routes: [Family.Entry],
        network: Family.Prefix,
        subnetLength: Int,
        localSubnet: Family.Prefix?,
        generation: UInt64
    ) -> UnsafeMutablePointer<RouteTableHeader<Family>> {
        precondition(_isPOD(Family.Entry.self), "route entries are freed without deinitialization")

        let entries = orderedEntries(routes, localSubnet: localSubnet)
        var addresses: [Family.PeerAddress] = []
        addresses.reserveCapacity(entries.count)
        for entry in entries {
            addresses.append(Family.peer(of: entry))
            if let other = Family.otherPeer(of: entry) { addresses.append(other) }
        }
        let peers = sortedUnique(addresses)

        let networkKey = Family.network(of: network)
        let networkLength = Family.length(of: network)
        let networkMask = Family.mask(networkLength)
        let indexBits = subnetLength - networkLength
        let isDirect =
            subnetLength >= max(1, networkLength) && subnetLength <= Key.bitWidth
            && indexBits <= maximumDirectIndexBits
            && entries.allSatisfy {
                let subnet = Family.subnet(of: $0)
                return Family.length(of: subnet) == subnetLength
                    && Family.network(of: subnet) & networkMask == networkKey
            }

        var slots: [UInt32]
        var intervalStarts: [Key] = []
        if isDirect {
            slots = Array(repeating: 0, count: 1 << indexBits)
            let shift = Key.bitWidth - subnetLength
            for (index, entry) in entries.enumerated() {
                slots[Int(truncatingIfNeeded: (Family.network(of: Family.subnet(of: entry)) - networkKey) >> shift)] =
                    UInt32(index + 1)
            }
        } else {
            (intervalStarts, slots) = intervals(for: entries)
        }

        var layout = BlockLayout()
        let headerOffset = layout.reserve(RouteTableHeader<Family>.self, count: 1)
        let routesOffset = layout.reserve(Family.Entry.self, count: entries.count)
        let slotsOffset = layout.reserve(UInt32.self, count: slots.count)
        let startsOffset = layout.reserve(Key.self, count: intervalStarts.count)
        let peersOffset = layout.reserve(Family.PeerAddress.self, count: peers.count)

        // Cache-line aligned by hand inside a plain malloc block: glibc 2.36 reuses freed
        // memalign(64) blocks so poorly that a publish per Node change grew RSS by about 30 KiB
        // each at 5,000 peers (Benchmarks/KubeScale), with nothing live leaking.
        let allocation = UnsafeMutableRawPointer.allocate(byteCount: layout.size + cacheLine - 1, alignment: 16)
        let block = UnsafeMutableRawPointer(
            bitPattern: (Int(bitPattern: allocation) + cacheLine - 1) & ~(cacheLine - 1)
        )!
        let routesPointer = (block + routesOffset).bindMemory(to: Family.Entry.self, capacity: entries.count)
        routesPointer.initialize(from: entries, count: entries.count)
        let slotsPointer = (block + slotsOffset).bindMemory(to: UInt32.self, capacity: slots.count)
        slotsPointer.initialize(from: slots, count: slots.count)
        let startsPointer = (block + startsOffset).bindMemory(to: Key.self, capacity: intervalStarts.count)
        startsPointer.initialize(from: intervalStarts, count: intervalStarts.count)
        let peersPointer = (block + peersOffset).bindMemory(to: Family.PeerAddress.self, capacity: peers.count)
        peersPointer.initialize(from: peers, count: peers.count)

        let local = localSubnet.map { (Family.network(of: $0), Family.mask(Family.length(of: $0))) } ?? (1, 0)
        let header = (block + headerOffset).bindMemory(to: RouteTableHeader<Family>.self, capacity: 1)
        header.initialize(
            to: RouteTableHeader(
                isDirect: isDirect,
                directBase: isDirect ? networkKey : 1,
                directMask: isDirect ? networkMask : 0,
                directShift: isDirect ? Key(Key.bitWidth - subnetLength) : 0,
                localNetwork: local.0,
                localMask: local.1,
                slots: slotsPointer,
                slotCount: slots.count,
                intervalStarts: startsPointer,
                routes: routesPointer,
                routeCount: entries.count,
                peers: peersPointer,
                peerCount: peers.count,
                generation: generation,
                network: network,
                subnetLength: subnetLength,
                localSubnet: localSubnet,
                byteCount: layout.size,
                allocation: allocation
            )
        )
        return header
    }

    /// The routes without `localSubnet`, one per subnet (the last given), in (network, length)
    /// order: every prefix after all prefixes that contain it and before any disjoint prefix that
    /// follows it, a depth-first walk of the containment tree, which the interval sweep relies on.
    /// Routes already in that order without a repeated subnet (what the peer tables publish) are
    /// taken as they come: at 5,000 peers the dictionary and sort took half of a publish.
    static func orderedEntries(_ routes: [Family.Entry], localSubnet: Family.Prefix?) -> [Family.Entry] {
        var entries: [Family.Entry] = []
        entries.reserveCapacity(routes.underestimatedCount)
        var strictlyOrdered = true
        for route in routes where Family.subnet(of: route) != localSubnet {
            if strictlyOrdered, let last = entries.last, !precedes(Family.subnet(of: last), Family.subnet(of: route)) {
                strictlyOrdered = false
            }
            entries.append(route)
        }
        if strictlyOrdered { return entries }
        var latest: [Family.Prefix: Family.Entry] = [:]
        latest.reserveCapacity(entries.count)
        for route in entries { latest[Family.subnet(of: route)] = route }
        return latest.values.sorted { precedes(Family.subnet(of: $0), Family.subnet(of: $1)) }
    }

    @inline(__always)
    static func precedes(_ a: Family.Prefix, _ b: Family.Prefix) -> Bool {
        (Family.network(of: a), Family.length(of: a)) < (Family.network(of: b), Family.length(of: b))
    }

    /// Sorted and without repeats, sorting in place rather than hashing through a Set.
    static func sortedUnique(_ addresses: [Family.PeerAddress]) -> [Family.PeerAddress] {
        var addresses = addresses
        addresses.sort()
        var kept = 0
        for index in addresses.indices where kept == 0 || addresses[index] != addresses[kept - 1] {
            addresses[kept] = addresses[index]
            kept += 1
        }
        addresses.removeLast(addresses.count - kept)
        return addresses
    }

    /// Cuts the address space into intervals that each map to one entry number (0: no route), by
    /// walking the prefixes in containment order with a stack of the prefixes still open. n routes
    /// give at most 2n + 1 intervals, so a lookup is one binary search over ≤ 2n + 1 starts,
    /// however many distinct lengths the set has. (A per-length hash probes once per length and a
    /// trie walks up to 32 nodes; this keeps the hot path a single tight loop over one array, and
    /// all longest-prefix reasoning happens here, once per publish.)
    static func intervals(for entries: [Family.Entry]) -> (starts: [Key], targets: [UInt32]) {
        var starts: [Key] = [0]
        var targets: [UInt32] = [0]

        func mark(_ start: Key, _ target: UInt32) {
            if starts.last == start {
                // A longer prefix starting here, or several prefixes closing here: the last word wins.
                targets[targets.count - 1] = target
                if targets.count > 1 && targets[targets.count - 2] == target {
                    starts.removeLast()
                    targets.removeLast()
                }
            } else if targets.last != target {
                starts.append(start)
                targets.append(target)
            }
        }

        /// The interval after a prefix's last address goes to `target`; none follows the last address.
        func close(after last: Key, _ target: UInt32) {
            if last != Key.max { mark(last + 1, target) }
        }

        var open: [(last: Key, target: UInt32)] = []
        for (index, entry) in entries.enumerated() {
            let subnet = Family.subnet(of: entry)
            let first = Family.network(of: subnet)
            while let top = open.last, top.last < first {
                open.removeLast()
                close(after: top.last, open.last?.target ?? 0)
            }
            let target = UInt32(index + 1)
            mark(first, target)
            open.append((first | ~Family.mask(Family.length(of: subnet)), target))
        }
        while let top = open.popLast() {
            close(after: top.last, open.last?.target ?? 0)
        }
        return (starts, targets)
    }
}

/// Offsets of the regions in a snapshot's single allocation, each aligned for its type.
struct BlockLayout {
    private(set) var size = 0

    mutating func reserve<T>(_ type: T.Type, count: Int) -> Int {
        let offset = (size + MemoryLayout<T>.alignment - 1) & ~(MemoryLayout<T>.alignment - 1)
        size = offset + MemoryLayout<T>.stride * count
        return offset
    }
}

let cacheLine = 64

enum RouteTableMemory {
    /// Generation a poisoned table reports; no snapshot the control plane builds uses it.
    static let poisonedGeneration = UInt64.max

    static func deallocate<Family>(_ header: UnsafeMutablePointer<RouteTableHeader<Family>>) {
        // Every region holds trivial values: no deinitialization needed.
        header.pointee.allocation.deallocate()
    }

    /// Overwrites a table so a reader that (wrongly) still uses it sees `poisonedGeneration`, no
    /// routes, misses on every lookup, and 0xA5 bytes in every array.
    static func poison<Family>(_ header: UnsafeMutablePointer<RouteTableHeader<Family>>) {
        let byteCount = header.pointee.byteCount
        let block = UnsafeMutableRawPointer(header)
        var offset = MemoryLayout<RouteTableHeader<Family>>.stride
        while offset < byteCount {
            block.storeBytes(of: 0xA5, toByteOffset: offset, as: UInt8.self)
            offset += 1
        }
        header.pointee.isDirect = true
        header.pointee.directBase = 1
        header.pointee.directMask = 0
        header.pointee.localNetwork = 1
        header.pointee.localMask = 0
        header.pointee.slotCount = 0
        header.pointee.routeCount = 0
        header.pointee.peerCount = 0
        header.pointee.generation = poisonedGeneration
    }
}
