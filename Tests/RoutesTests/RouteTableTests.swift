import Addressing
import TestSupport
import TestThreads
import Testing

@testable import Routes

@Suite(.computeLane) struct RouteTableLookup {
    static let tenSlashEight = IPv4Prefix("10.0.0.0/8")!

    @Test(arguments: [1, 256, 10_000])
    func uniformLayoutMatchesReference(subnets: Int) {
        for seed in UInt64(1)...4 {
            var generator = SplitMix64(seed: seed &* 7919 &+ UInt64(subnets))
            let routes = uniformRoutes(count: subnets, network: Self.tenSlashEight, subnetLength: 24, using: &generator)
            let snapshot = RouteSnapshot(
                routes: routes,
                network: Self.tenSlashEight,
                subnetLength: 24,
                generation: seed
            )
            let table = snapshot.table
            #expect(table.lookupStrategy == .directIndex)
            #expect(table.count == subnets)
            #expect(table.generation == seed)
            let sample = subnets > 500 ? Array(routes.shuffled(using: &generator).prefix(500)) : routes
            let probes = probeAddresses(for: sample, network: Self.tenSlashEight, random: 1000, using: &generator)
            let reference = ReferenceRoutes(input: routes, local: nil)
            let wrong = disagreements(table, reference, probes)
            #expect(wrong.isEmpty, "seed \(seed), \(subnets) subnets: \(wrong)")
        }
    }

    /// Mixed lengths 0...32, clustered so that many routes nest, with duplicates, near the bottom
    /// and top of the address space: the longest-prefix strategy.
    @Test func mixedLengthsMatchReference() {
        let bases: [UInt32] = [0x0A00_0000, 0x0A01_0000, 0xC0A8_0000, 0x0000_0000, 0xFFFF_FF00]
        var sawNesting = 0
        for seed in UInt64(1)...60 {
            var generator = SplitMix64(seed: seed)
            var routes: [Route] = []
            for _ in 0..<Int.random(in: 1...300, using: &generator) {
                let base = bases.randomElement(using: &generator)!
                let address = base &+ UInt32.random(in: 0..<(1 << 20), using: &generator)
                let length =
                    Bool.random(using: &generator)
                    ? Int.random(in: 0...32, using: &generator)
                    : Int.random(in: 16...28, using: &generator)
                routes.append(
                    Route(
                        subnet: IPv4Prefix(IPv4Address(address), length: length),
                        nextHop: randomNextHop(using: &generator)
                    )
                )
                if Int.random(in: 0..<10, using: &generator) == 0, let earlier = routes.randomElement(using: &generator)
                {
                    routes.append(Route(subnet: earlier.subnet, nextHop: randomNextHop(using: &generator)))
                }
            }
            let network = IPv4Prefix("10.0.0.0/16")!
            let snapshot = RouteSnapshot(routes: routes, network: network, subnetLength: 24)
            let table = snapshot.table
            #expect(table.lookupStrategy == .longestPrefixMatch)
            let reference = ReferenceRoutes(input: routes, local: nil)
            #expect(Array(table.routes) == reference.expectedRoutes)
            let probes = probeAddresses(for: routes, network: network, random: 500, using: &generator)
            let wrong = disagreements(table, reference, probes)
            #expect(wrong.isEmpty, "seed \(seed): \(wrong)")
            #expect(probes.allSatisfy { reference.lookup($0) == reference.scan($0) }, "the two references disagree")
            // n routes never need more than 2n + 1 intervals.
            #expect(table.header.pointee.slotCount <= 2 * table.count + 1)
            sawNesting +=
                routes.contains { outer in
                    routes.contains { $0.subnet.length > outer.subnet.length && outer.subnet.contains($0.subnet) }
                } ? 1 : 0
        }
        #expect(sawNesting > 30, "the generator must produce nested routes for this test to mean anything")
    }

    @Test func subnetLength30() {
        var generator = SplitMix64(seed: 30)
        let network = IPv4Prefix("10.244.0.0/16")!
        let routes = uniformRoutes(count: 3000, network: network, subnetLength: 30, using: &generator)
        let snapshot = RouteSnapshot(routes: routes, network: network, subnetLength: 30)
        #expect(snapshot.table.lookupStrategy == .directIndex)
        let probes = probeAddresses(for: Array(routes.prefix(400)), network: network, random: 2000, using: &generator)
        let wrong = disagreements(snapshot.table, ReferenceRoutes(input: routes, local: nil), probes)
        #expect(wrong.isEmpty, "\(wrong)")
    }

    /// flannel's default: Network /16, SubnetLen 24, every subnet leased; probe every subnet's
    /// first and last address and the addresses just outside the network.
    @Test func fullSlash16OfSlash24s() {
        var generator = SplitMix64(seed: 16)
        let network = IPv4Prefix("10.244.0.0/16")!
        let routes = uniformRoutes(count: 256, network: network, subnetLength: 24, using: &generator)
        let snapshot = RouteSnapshot(routes: routes, network: network, subnetLength: 24)
        let table = snapshot.table
        #expect(table.lookupStrategy == .directIndex)
        for route in routes {
            #expect(table.lookup(route.subnet.first) == route.nextHop)
            #expect(table.lookup(route.subnet.last) == route.nextHop)
        }
        #expect(table.lookup(IPv4Address("10.243.255.255")!) == nil)
        #expect(table.lookup(IPv4Address("10.245.0.0")!) == nil)
    }

    @Test func routeOutsideNetworkUsesLongestPrefixMatch() {
        var generator = SplitMix64(seed: 99)
        let network = IPv4Prefix("10.244.0.0/16")!
        var routes = uniformRoutes(count: 50, network: network, subnetLength: 24, using: &generator)
        let outside = Route(subnet: IPv4Prefix("172.16.5.0/24")!, nextHop: randomNextHop(using: &generator))
        routes.append(outside)
        let snapshot = RouteSnapshot(routes: routes, network: network, subnetLength: 24)
        let table = snapshot.table
        #expect(table.lookupStrategy == .longestPrefixMatch)
        #expect(table.lookup(IPv4Address("172.16.5.77")!) == outside.nextHop)
        #expect(table.lookup(IPv4Address("172.16.6.0")!) == nil)
        let probes = probeAddresses(for: routes, network: network, random: 1000, using: &generator)
        #expect(disagreements(table, ReferenceRoutes(input: routes, local: nil), probes).isEmpty)
    }

    @Test func differentLengthInsideNetworkUsesLongestPrefixMatch() {
        var generator = SplitMix64(seed: 7)
        let network = IPv4Prefix("10.244.0.0/16")!
        let wide = Route(subnet: IPv4Prefix("10.244.0.0/20")!, nextHop: randomNextHop(using: &generator))
        let narrow = Route(subnet: IPv4Prefix("10.244.3.0/24")!, nextHop: randomNextHop(using: &generator))
        let snapshot = RouteSnapshot(routes: [narrow, wide], network: network, subnetLength: 24)
        let table = snapshot.table
        #expect(table.lookupStrategy == .longestPrefixMatch)
        #expect(table.lookup(IPv4Address("10.244.3.9")!) == narrow.nextHop)
        #expect(table.lookup(IPv4Address("10.244.2.255")!) == wide.nextHop)
        #expect(table.lookup(IPv4Address("10.244.4.0")!) == wide.nextHop)
        #expect(table.lookup(IPv4Address("10.244.16.0")!) == nil)
    }

    @Test func wholeAddressSpaceEdges() {
        var generator = SplitMix64(seed: 32)
        let everything = Route(subnet: IPv4Prefix("0.0.0.0/0")!, nextHop: randomNextHop(using: &generator))
        let top = Route(subnet: IPv4Prefix("255.255.255.255/32")!, nextHop: randomNextHop(using: &generator))
        let bottom = Route(subnet: IPv4Prefix("0.0.0.0/32")!, nextHop: randomNextHop(using: &generator))
        let topHalf = Route(subnet: IPv4Prefix("128.0.0.0/1")!, nextHop: randomNextHop(using: &generator))
        let snapshot = RouteSnapshot(
            routes: [top, everything, bottom, topHalf],
            network: IPv4Prefix("10.0.0.0/8")!,
            subnetLength: 24
        )
        let table = snapshot.table
        #expect(table.lookup(IPv4Address(0)) == bottom.nextHop)
        #expect(table.lookup(IPv4Address(1)) == everything.nextHop)
        #expect(table.lookup(IPv4Address(0x7FFF_FFFF)) == everything.nextHop)
        #expect(table.lookup(IPv4Address(0x8000_0000)) == topHalf.nextHop)
        #expect(table.lookup(IPv4Address(0xFFFF_FFFE)) == topHalf.nextHop)
        #expect(table.lookup(IPv4Address(0xFFFF_FFFF)) == top.nextHop)
    }

    /// The direct index is used up to 2^20 slots and the longest-prefix strategy beyond; both
    /// answer the same.
    @Test(arguments: [(28, RouteTable.LookupStrategy.directIndex), (29, .longestPrefixMatch)])
    func directIndexSizeLimit(subnetLength: Int, strategy: RouteTable.LookupStrategy) {
        var generator = SplitMix64(seed: UInt64(subnetLength))
        let routes = uniformRoutes(
            count: 500,
            network: Self.tenSlashEight,
            subnetLength: subnetLength,
            using: &generator
        )
        let snapshot = RouteSnapshot(routes: routes, network: Self.tenSlashEight, subnetLength: subnetLength)
        #expect(snapshot.table.lookupStrategy == strategy)
        let probes = probeAddresses(for: routes, network: Self.tenSlashEight, random: 1000, using: &generator)
        #expect(disagreements(snapshot.table, ReferenceRoutes(input: routes, local: nil), probes).isEmpty)
    }

    @Test func slash32SubnetsInSlash24() {
        var generator = SplitMix64(seed: 3232)
        let network = IPv4Prefix("10.9.8.0/24")!
        let routes = uniformRoutes(count: 100, network: network, subnetLength: 32, using: &generator)
        let snapshot = RouteSnapshot(routes: routes, network: network, subnetLength: 32)
        #expect(snapshot.table.lookupStrategy == .directIndex)
        let probes = probeAddresses(for: routes, network: network, random: 300, using: &generator)
        #expect(disagreements(snapshot.table, ReferenceRoutes(input: routes, local: nil), probes).isEmpty)
    }

    /// Parameters no valid flannel config produces still give correct answers, never a crash.
    @Test(arguments: [
        (IPv4Prefix("10.244.0.0/16")!, 8), (IPv4Prefix("10.244.0.0/16")!, 40),
        (IPv4Prefix("10.244.0.0/16")!, -3), (IPv4Prefix("0.0.0.0/0")!, 0),
        (IPv4Prefix("0.0.0.0/0")!, 24),
    ])
    func unusualParameters(network: IPv4Prefix, subnetLength: Int) {
        var generator = SplitMix64(seed: 5)
        let routes = uniformRoutes(
            count: 40,
            network: IPv4Prefix("10.244.0.0/16")!,
            subnetLength: 24,
            using: &generator
        )
        let snapshot = RouteSnapshot(routes: routes, network: network, subnetLength: subnetLength)
        #expect(snapshot.table.lookupStrategy == .longestPrefixMatch)
        let probes = probeAddresses(for: routes, network: nil, random: 500, using: &generator)
        #expect(disagreements(snapshot.table, ReferenceRoutes(input: routes, local: nil), probes).isEmpty)
    }

    @Test(arguments: [(IPv4Prefix("10.244.0.0/16")!, 24), (IPv4Prefix("10.244.0.0/16")!, 99)])
    func emptyTableMissesEverything(network: IPv4Prefix, subnetLength: Int) {
        let snapshot = RouteSnapshot(routes: [], network: network, subnetLength: subnetLength)
        let table = snapshot.table
        #expect(table.count == 0)
        #expect(table.routes.isEmpty)
        for address in [0, 0x0AF4_0001, 0xFFFF_FFFF].map({ IPv4Address(UInt32($0)) }) {
            #expect(table.lookup(address) == nil)
            #expect(!table.isPeer(publicIP: address))
        }
    }

    @Test func duplicateSubnetsLastOneWins() {
        var generator = SplitMix64(seed: 11)
        let subnet = IPv4Prefix("10.244.7.0/24")!
        let hops = (0..<3).map { _ in randomNextHop(using: &generator) }
        let other = Route(subnet: IPv4Prefix("10.244.8.0/24")!, nextHop: randomNextHop(using: &generator))
        let routes = [
            Route(subnet: subnet, nextHop: hops[0]), other,
            Route(subnet: subnet, nextHop: hops[1]), Route(subnet: subnet, nextHop: hops[2]),
        ]
        let snapshot = RouteSnapshot(routes: routes, network: IPv4Prefix("10.244.0.0/16")!, subnetLength: 24)
        let table = snapshot.table
        #expect(table.count == 2)
        #expect(table.lookup(IPv4Address("10.244.7.1")!) == hops[2])
        #expect(Array(table.routes) == [Route(subnet: subnet, nextHop: hops[2]), other])
        #expect(table.lookupStrategy == .directIndex)
    }

    /// Routes already in (network, length) order skip the dictionary and the sort; the table
    /// must be the one the same routes build in any order, repeats and the local subnet included.
    @Test func routesGivenInOrderBuildTheTableTheyBuildShuffled() {
        var generator = SplitMix64(seed: 15)
        let network = IPv4Prefix("10.244.0.0/16")!
        let local = IPv4Prefix("10.244.34.0/24")!
        var routes = uniformRoutes(count: 200, network: network, subnetLength: 24, using: &generator).filter {
            $0.subnet != local
        }
        routes.append(Route(subnet: IPv4Prefix("10.244.0.0/20")!, nextHop: randomNextHop(using: &generator)))
        routes.append(Route(subnet: local, nextHop: randomNextHop(using: &generator)))
        let ordered = routes.sorted { RouteTableBuilder<IPv4Routing>.precedes($0.subnet, $1.subnet) }
        #expect(Set(ordered.map(\.subnet)).count == ordered.count, "the fast path needs distinct subnets")
        let inOrder = RouteSnapshot(routes: ordered, network: network, subnetLength: 24, localSubnet: local)
        let shuffled = RouteSnapshot(
            routes: ordered.shuffled(using: &generator),
            network: network,
            subnetLength: 24,
            localSubnet: local
        )
        #expect(Array(inOrder.table.routes) == Array(shuffled.table.routes))
        #expect(inOrder.table.count == routes.count - 1)
        #expect(inOrder.table.lookupStrategy == .longestPrefixMatch)
        let probes = probeAddresses(for: routes, network: network, random: 2000, using: &generator)
        #expect(disagreements(inOrder.table, ReferenceRoutes(input: routes, local: local), probes).isEmpty)
        for route in routes where route.subnet != local {
            #expect(inOrder.table.isPeer(publicIP: route.nextHop.publicIP))
        }

        // A repeated subnet, adjacent in an otherwise ordered input: the last one still wins.
        let index = ordered.indices.first { $0 >= 5 && ordered[$0].subnet.length == 24 && ordered[$0].subnet != local }!
        let repeated = Route(subnet: ordered[index].subnet, nextHop: randomNextHop(using: &generator))
        var withRepeat = ordered
        withRepeat.insert(repeated, at: index + 1)
        let again = RouteSnapshot(routes: withRepeat, network: network, subnetLength: 24, localSubnet: local)
        #expect(again.table.count == inOrder.table.count)
        #expect(again.table.lookup(repeated.subnet.network) == repeated.nextHop)
    }

    @Test(arguments: [0, 1, 7, 300, 5000])
    func everyTableStartsOnACacheLine(count: Int) {
        var generator = SplitMix64(seed: 16)
        let routes = uniformRoutes(count: count, network: Self.tenSlashEight, subnetLength: 24, using: &generator)
        let snapshot = RouteSnapshot(routes: routes, network: Self.tenSlashEight, subnetLength: 24)
        #expect(Int(bitPattern: snapshot.header) % cacheLine == 0)
        #expect(snapshot.table.count == count)
    }

    @Test func localSubnetIsNotARoute() {
        var generator = SplitMix64(seed: 12)
        let network = IPv4Prefix("10.244.0.0/16")!
        let local = IPv4Prefix("10.244.34.0/24")!
        var routes = uniformRoutes(count: 20, network: network, subnetLength: 24, using: &generator)
            .filter { $0.subnet != local }
        routes.append(Route(subnet: local, nextHop: randomNextHop(using: &generator)))
        let snapshot = RouteSnapshot(routes: routes, network: network, subnetLength: 24, localSubnet: local)
        let table = snapshot.table
        #expect(table.count == routes.count - 1)
        #expect(table.lookup(IPv4Address("10.244.34.5")!) == nil)
        #expect(table.isLocal(IPv4Address("10.244.34.0")!))
        #expect(table.isLocal(IPv4Address("10.244.34.255")!))
        #expect(!table.isLocal(IPv4Address("10.244.35.0")!))
        #expect(!table.isLocal(IPv4Address("10.244.33.255")!))
        #expect(table.localSubnet == local)
        #expect(table.network == network)
        #expect(table.subnetLength == 24)
        let probes = probeAddresses(for: routes, network: network, random: 500, using: &generator)
        #expect(disagreements(table, ReferenceRoutes(input: routes, local: local), probes).isEmpty)
    }

    @Test func withoutLocalSubnetNothingIsLocal() {
        let snapshot = RouteSnapshot(routes: [], network: IPv4Prefix("10.244.0.0/16")!, subnetLength: 24)
        #expect(snapshot.table.localSubnet == nil)
        for address in [0, 1, 0x0AF4_2201, 0xFFFF_FFFF].map({ IPv4Address(UInt32($0)) }) {
            #expect(!snapshot.table.isLocal(address))
        }
    }

    @Test func isPeerMatchesTheSetOfPublicIPs() {
        var generator = SplitMix64(seed: 13)
        let routes = uniformRoutes(count: 700, network: Self.tenSlashEight, subnetLength: 24, using: &generator)
        let snapshot = RouteSnapshot(routes: routes, network: Self.tenSlashEight, subnetLength: 24)
        let peers = Set(routes.map(\.nextHop.publicIP))
        var candidates = Array(peers)
        for _ in 0..<3000 {
            candidates.append(
                IPv4Address(
                    198,
                    18,
                    UInt8.random(in: 0...255, using: &generator),
                    UInt8.random(in: 0...255, using: &generator)
                )
            )
        }
        candidates += [IPv4Address(0), IPv4Address(UInt32.max)]
        for candidate in candidates {
            #expect(snapshot.table.isPeer(publicIP: candidate) == peers.contains(candidate), "\(candidate)")
        }
    }

    @Test func routesAreListedInAddressOrder() {
        var generator = SplitMix64(seed: 14)
        let routes = uniformRoutes(count: 300, network: Self.tenSlashEight, subnetLength: 24, using: &generator)
        let snapshot = RouteSnapshot(routes: routes, network: Self.tenSlashEight, subnetLength: 24)
        #expect(Array(snapshot.table.routes) == ReferenceRoutes(input: routes, local: nil).expectedRoutes)
        #expect(snapshot.table.routes.count == 300)
    }
}

@Suite struct RouteValues {
    @Test func backendRawValuesAreFlannels() {
        #expect(Backend.udp.rawValue == "udp")
        #expect(Backend.vxlan.rawValue == "vxlan")
        #expect(Backend.hostGateway.rawValue == "host-gw")
        #expect(Backend(rawValue: "host-gw") == .hostGateway)
        #expect(Backend(rawValue: "VXLAN") == nil)
        #expect(Backend(rawValue: "hostgw") == nil)
    }

    @Test func nextHopIsSixteenTrivialBytes() {
        #expect(MemoryLayout<NextHop>.size <= 16)
        #expect(MemoryLayout<NextHop>.stride == 16)
        #expect(_isPOD(NextHop.self))
        #expect(_isPOD(Route.self))
    }

    @Test func routeDescription() {
        let vxlan = Route(
            subnet: IPv4Prefix("10.244.3.0/24")!,
            nextHop: NextHop(
                publicIP: IPv4Address("198.18.0.3")!,
                port: 8472,
                vtepMAC: MACAddress("aa:bb:cc:dd:ee:0f")!,
                backend: .vxlan
            )
        )
        #expect(vxlan.description == "10.244.3.0/24 via 198.18.0.3:8472 vxlan aa:bb:cc:dd:ee:0f")
        let udp = Route(
            subnet: IPv4Prefix("10.244.4.0/24")!,
            nextHop: NextHop(publicIP: IPv4Address("198.18.0.4")!, port: 8285, backend: .udp)
        )
        #expect(udp.description == "10.244.4.0/24 via 198.18.0.4:8285 udp")
        #expect(udp.nextHop.vtepMAC == MACAddress(0))
    }
}
