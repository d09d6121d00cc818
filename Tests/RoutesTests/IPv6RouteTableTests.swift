import Addressing
import Synchronization
import TestSupport
import TestThreads
import Testing

@testable import Routes

/// IPv6 longest-prefix match by brute force, written independently of the table: every route
/// compared on its top `length` bits (a shift of the 128-bit value), the longest kept, and among
/// equal prefixes the later.
private struct ReferenceRoutesV6 {
    let input: [IPv6Route]
    let local: IPv6Prefix?

    func lookup(_ address: IPv6Address) -> IPv6Route? {
        var best: IPv6Route?
        for route in input where route.subnet != local {
            let hostBits = 128 - route.subnet.length
            let matches = hostBits == 128 || address.value >> hostBits == route.subnet.network.value >> hostBits
            if matches, route.subnet.length >= (best?.subnet.length ?? -1) { best = route }
        }
        return best
    }
}

private func randomHop(using generator: inout SplitMix64) -> NextHop {
    NextHop(
        publicIP: IPv4Address(
            198,
            18,
            UInt8.random(in: 0...255, using: &generator),
            UInt8.random(in: 1...254, using: &generator)
        ),
        port: 8285,
        backend: .udp
    )
}

/// flannel's IPv6 layout: `count` distinct random `subnetLength` subnets of `network`.
private func uniformRoutesV6(
    count: Int,
    network: IPv6Prefix,
    subnetLength: Int,
    using generator: inout SplitMix64
) -> [IPv6Route] {
    let available = 1 << (subnetLength - network.length)
    var chosen = Set<Int>()
    while chosen.count < count { chosen.insert(Int.random(in: 0..<available, using: &generator)) }
    return chosen.map { number in
        let base = network.network.value + UInt128(number) << UInt128(128 - subnetLength)
        return IPv6Route(
            subnet: IPv6Prefix(IPv6Address(base), length: subnetLength),
            nextHop: randomHop(using: &generator)
        )
    }
}

private func randomAddress(using generator: inout SplitMix64) -> UInt128 {
    UInt128(UInt64.random(in: 0...UInt64.max, using: &generator)) << 64
        | UInt128(UInt64.random(in: 0...UInt64.max, using: &generator))
}

/// A random host, the first and last address and the addresses just outside each route; the
/// edges of `network`; random addresses inside it and anywhere.
private func probes(
    for routes: [IPv6Route],
    network: IPv6Prefix,
    random: Int,
    using generator: inout SplitMix64
) -> [IPv6Address] {
    var values: [UInt128] = []
    for route in routes {
        let first = route.subnet.network.value
        let last = route.subnet.last.value
        values += [first, last, first &- 1, last &+ 1, first | (randomAddress(using: &generator) & ~route.subnet.mask)]
    }
    values += [network.first.value, network.last.value, network.first.value &- 1, network.last.value &+ 1]
    for _ in 0..<random {
        values.append(network.network.value | (randomAddress(using: &generator) & ~network.mask))
        values.append(randomAddress(using: &generator))
    }
    return values.map(IPv6Address.init)
}

private func disagreements(_ table: IPv6RouteTable, _ reference: ReferenceRoutesV6, _ probes: [IPv6Address]) -> [String]
{
    var found: [String] = []
    for address in probes {
        let expected = reference.lookup(address)
        if table.lookupRoute(address) != expected || table.lookup(address) != expected?.nextHop {
            found.append(
                "\(address): table \(table.lookupRoute(address).map(\.description) ?? "nil"), reference \(expected.map(\.description) ?? "nil")"
            )
            if found.count == 5 { break }
        }
    }
    return found
}

@Suite(.computeLane) struct IPv6RouteTableLookup {
    static let slash48 = IPv6Prefix("fc00:0:1::/48")!

    /// flannel's default layout: a /48 of /64s (16 index bits), 10,000 leased.
    @Test(arguments: [1, 256, 10_000])
    func slash48OfSlash64sIsADirectIndex(subnets: Int) {
        var generator = SplitMix64(seed: 4291 &+ UInt64(subnets))
        let routes = uniformRoutesV6(count: subnets, network: Self.slash48, subnetLength: 64, using: &generator)
        let snapshot = IPv6RouteSnapshot(routes: routes, network: Self.slash48, subnetLength: 64, generation: 9)
        let table = snapshot.table
        #expect(table.lookupStrategy == .directIndex)
        #expect(table.count == subnets)
        #expect(table.generation == 9)
        #expect(table.header.pointee.slotCount == 1 << 16)
        let sample = Array(routes.shuffled(using: &generator).prefix(500))
        let wrong = disagreements(
            table,
            ReferenceRoutesV6(input: routes, local: nil),
            probes(for: sample, network: Self.slash48, random: 1000, using: &generator)
        )
        #expect(wrong.isEmpty, "\(subnets) subnets: \(wrong)")
    }

    @Test func slash56OfSlash64sIsADirectIndex() {
        var generator = SplitMix64(seed: 56)
        let network = IPv6Prefix("2001:db8:0:ff00::/56")!
        let routes = uniformRoutesV6(count: 200, network: network, subnetLength: 64, using: &generator)
        let local = routes[7].subnet
        let snapshot = IPv6RouteSnapshot(routes: routes, network: network, subnetLength: 64, localSubnet: local)
        let table = snapshot.table
        #expect(table.lookupStrategy == .directIndex)
        #expect(table.count == 199, "our own subnet is not a route")
        #expect(table.lookup(local.host(1)) == nil)
        #expect(table.isLocal(local.host(0xFFFF)) && table.isLocal(local.last))
        #expect(
            !table.isLocal(IPv6Address(local.last.value &+ 1)) && !table.isLocal(IPv6Address(local.network.value &- 1))
        )
        let wrong = disagreements(
            table,
            ReferenceRoutesV6(input: routes, local: local),
            probes(for: routes, network: network, random: 500, using: &generator)
        )
        #expect(wrong.isEmpty, "\(wrong)")
    }

    /// Mixed lengths 0...128, clustered so that routes nest, with duplicates, at the bottom and
    /// top of the address space: the longest-prefix strategy, whose intervals must end properly
    /// at ffff:…:ffff.
    @Test func mixedLengthsMatchReference() {
        let bases: [UInt128] = [0xfc00 << 112, 0xfc00_0000_0001 << 80, 0, UInt128.max << 32]
        for seed in UInt64(1)...40 {
            var generator = SplitMix64(seed: seed)
            var routes: [IPv6Route] = []
            for _ in 0..<Int.random(in: 1...200, using: &generator) {
                let base = bases.randomElement(using: &generator)!
                let address =
                    base | UInt128(UInt32.random(in: 0...UInt32.max, using: &generator))
                    << UInt128(Int.random(in: 0...64, using: &generator))
                let length =
                    Bool.random(using: &generator)
                    ? Int.random(in: 0...128, using: &generator)
                    : Int.random(in: 48...72, using: &generator)
                routes.append(
                    IPv6Route(
                        subnet: IPv6Prefix(IPv6Address(address), length: length),
                        nextHop: randomHop(using: &generator)
                    )
                )
                if Int.random(in: 0..<10, using: &generator) == 0, let earlier = routes.randomElement(using: &generator)
                {
                    routes.append(IPv6Route(subnet: earlier.subnet, nextHop: randomHop(using: &generator)))
                }
            }
            routes.append(
                IPv6Route(subnet: IPv6Prefix(IPv6Address(.max), length: 128), nextHop: randomHop(using: &generator))
            )
            let snapshot = IPv6RouteSnapshot(routes: routes, network: Self.slash48, subnetLength: 64)
            let table = snapshot.table
            #expect(table.lookupStrategy == .longestPrefixMatch)
            #expect(table.header.pointee.slotCount <= 2 * table.count + 1)
            let wrong = disagreements(
                table,
                ReferenceRoutesV6(input: routes, local: nil),
                probes(for: routes, network: Self.slash48, random: 300, using: &generator)
            )
            #expect(wrong.isEmpty, "seed \(seed): \(wrong)")
        }
    }

    @Test func routesInOrderAndTheLastOfEqualSubnetsWins() {
        let a = IPv6Prefix("fc00:0:1:5::/64")!
        let b = IPv6Prefix("fc00:0:1:2::/64")!
        let first = NextHop(publicIP: IPv4Address(198, 18, 0, 1), port: 8285, backend: .udp)
        let second = NextHop(publicIP: IPv4Address(198, 18, 0, 2), port: 8285, backend: .udp)
        let snapshot = IPv6RouteSnapshot(
            routes: [
                IPv6Route(subnet: a, nextHop: first), IPv6Route(subnet: b, nextHop: first),
                IPv6Route(subnet: a, nextHop: second),
            ],
            network: Self.slash48,
            subnetLength: 64
        )
        let table = snapshot.table
        #expect(table.routes.map(\.subnet) == [b, a])
        #expect(table.lookup(IPv6Address("fc00:0:1:5::1")!) == second)
        #expect(
            table.isPeer(publicIP: IPv4Address(198, 18, 0, 1)) && table.isPeer(publicIP: IPv4Address(198, 18, 0, 2))
        )
        #expect(!table.isPeer(publicIP: IPv4Address(198, 18, 0, 3)))
        #expect(table.routes.first?.description == "fc00:0:1:2::/64 via 198.18.0.1:8285 udp")
    }

    @Test func directIndexFallsBackWhenItWouldBeTooLarge() {
        // A /40 of /64s needs 24 index bits: past the 20-bit limit, so longest prefix.
        let network = IPv6Prefix("fc00::/40")!
        let routes = [
            IPv6Route(
                subnet: IPv6Prefix("fc00:0:ab:cd::/64")!,
                nextHop: NextHop(publicIP: IPv4Address(1, 2, 3, 4), port: 1, backend: .udp)
            )
        ]
        let snapshot = IPv6RouteSnapshot(routes: routes, network: network, subnetLength: 64)
        #expect(snapshot.table.lookupStrategy == .longestPrefixMatch)
        #expect(snapshot.table.lookup(IPv6Address("fc00:0:ab:cd:1:2:3:4")!) != nil)
        #expect(snapshot.table.lookup(IPv6Address("fc00:0:ab:ce::")!) == nil)
        // A route outside the network, or of another length, also leaves the direct index.
        let outside = IPv6RouteSnapshot(
            routes: routes + [IPv6Route(subnet: IPv6Prefix("fd00::/64")!, nextHop: routes[0].nextHop)],
            network: Self.slash48,
            subnetLength: 64
        )
        #expect(outside.table.lookupStrategy == .longestPrefixMatch)
    }

    @Test func anEmptyTableMissesEverything() {
        let snapshot = IPv6RouteSnapshot(routes: [], network: Self.slash48, subnetLength: 64)
        #expect(snapshot.table.lookup(IPv6Address("fc00:0:1::1")!) == nil)
        #expect(snapshot.table.lookup(IPv6Address(.max)) == nil)
        #expect(!snapshot.table.isLocal(IPv6Address(0)))
    }
}

@Suite(.computeLane) struct IPv6RouteTablePublication {
    private final class FreeLog: Sendable {
        let generations = Mutex<[UInt64]>([])
        var hook: @Sendable (UInt64) -> Void { { generation in self.generations.withLock { $0.append(generation) } } }
        var freed: [UInt64] { generations.withLock { $0 } }
    }

    private func snapshot(generation: UInt64, subnets: Int) -> IPv6RouteSnapshot {
        var generator = SplitMix64(seed: generation)
        let network = IPv6Prefix("fc00:0:1::/48")!
        return IPv6RouteSnapshot(
            routes: uniformRoutesV6(count: subnets, network: network, subnetLength: 64, using: &generator),
            network: network,
            subnetLength: 64,
            generation: generation
        )
    }

    @Test func readersSeeNewTablesAndOldOnesAreFreedAfterQuiescence() {
        let log = FreeLog()
        let publisher = IPv6RouteTablePublisher(snapshot(generation: 0, subnets: 10), onFree: log.hook)
        let reader = publisher.makeReader()
        let held = reader.current()
        #expect(held.generation == 0 && held.count == 10)
        publisher.publish(snapshot(generation: 1, subnets: 20))
        #expect(publisher.reclaim() == 0, "the reader may still hold generation 0")
        #expect(held.count == 10)
        reader.quiescent()
        #expect(publisher.reclaim() == 1)
        #expect(log.freed == [0])
        let fresh = reader.current()
        #expect(fresh.generation == 1 && fresh.count == 20 && fresh.lookupStrategy == .directIndex)
        _ = consume reader
    }
}
