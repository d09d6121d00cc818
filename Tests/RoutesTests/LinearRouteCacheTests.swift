import Addressing
import ReferencePaths
import TestSupport
import TestThreads
import Testing

@testable import Routes

@Suite(.computeLane) struct LinearRouteCacheBehaviour {
    @Test(arguments: [1, 256, 2000])
    func uniformLayoutMatchesReference(subnets: Int) {
        var generator = SplitMix64(seed: UInt64(subnets) &+ 404)
        let network = IPv4Prefix("10.0.0.0/8")!
        let routes = uniformRoutes(count: subnets, network: network, subnetLength: 24, using: &generator)
        var cache = LinearRouteCache(routes: routes)
        #expect(cache.count == subnets)
        let reference = ReferenceRoutes(input: routes, local: nil)
        let probes = probeAddresses(for: Array(routes.prefix(300)), network: network, random: 500, using: &generator)
        var wrong: [IPv4Address] = []
        for address in probes where cache.lookup(address) != reference.lookup(address)?.nextHop {
            wrong.append(address)
        }
        #expect(wrong.isEmpty, "\(wrong.prefix(5))")
        #expect(Set(cache.routes) == Set(routes))
    }

    @Test func hitIsSwappedWithTheFront() {
        var generator = SplitMix64(seed: 1)
        let routes = (0..<4).map { index in
            Route(
                subnet: IPv4Prefix(IPv4Address(10, 244, UInt8(index), 0), length: 24),
                nextHop: randomNextHop(using: &generator)
            )
        }
        var cache = LinearRouteCache(routes: routes)
        #expect(cache.routes == routes)
        #expect(cache.lookup(IPv4Address("10.244.2.9")!) == routes[2].nextHop)
        #expect(cache.routes == [routes[2], routes[1], routes[0], routes[3]])
        #expect(cache.lookup(IPv4Address("10.244.2.10")!) == routes[2].nextHop)
        #expect(cache.routes == [routes[2], routes[1], routes[0], routes[3]])
        #expect(cache.lookup(IPv4Address("10.245.0.1")!) == nil)
        #expect(cache.routes == [routes[2], routes[1], routes[0], routes[3]])
    }

    /// flannel scans in order and takes the first match, not the longest.
    @Test func firstMatchNotLongest() {
        var generator = SplitMix64(seed: 2)
        let wide = Route(subnet: IPv4Prefix("10.244.0.0/16")!, nextHop: randomNextHop(using: &generator))
        let narrow = Route(subnet: IPv4Prefix("10.244.1.0/24")!, nextHop: randomNextHop(using: &generator))
        var cache = LinearRouteCache(routes: [wide, narrow])
        #expect(cache.lookup(IPv4Address("10.244.1.1")!) == wide.nextHop)
    }

    @Test func setRouteReplacesOrAppendsAndGrows() {
        var generator = SplitMix64(seed: 3)
        var cache = LinearRouteCache()
        let routes = uniformRoutes(
            count: 100,
            network: IPv4Prefix("10.244.0.0/16")!,
            subnetLength: 24,
            using: &generator
        )
        for route in routes { cache.setRoute(route) }
        #expect(cache.count == 100)
        #expect(cache.routes == routes)
        let replacement = Route(subnet: routes[40].subnet, nextHop: randomNextHop(using: &generator))
        cache.setRoute(replacement)
        #expect(cache.count == 100)
        #expect(cache.routes[40] == replacement)
        #expect(cache.lookup(replacement.subnet.host(7)) == replacement.nextHop)
    }

    @Test func removeRouteMovesTheLastIntoTheHole() {
        var generator = SplitMix64(seed: 4)
        let routes = uniformRoutes(count: 5, network: IPv4Prefix("10.244.0.0/16")!, subnetLength: 24, using: &generator)
        var cache = LinearRouteCache(routes: routes)
        let removed = cache.removeRoute(routes[1].subnet)
        #expect(removed)
        #expect(cache.routes == [routes[0], routes[4], routes[2], routes[3]])
        let removedAgain = cache.removeRoute(routes[1].subnet)
        #expect(!removedAgain)
        #expect(cache.lookup(routes[1].subnet.host(1)) == nil)
        #expect(cache.count == 4)
    }
}
