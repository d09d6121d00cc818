import Addressing
import HostGateway
import Netlink
import Testing

private let own = IPv4Prefix(IPv4Address(10, 244, 1, 0), length: 24)
private let earlier = IPv4Prefix(IPv4Address(10, 244, 9, 0), length: 24)

private func blackhole(
    _ subnet: IPv4Prefix,
    proto: UInt8 = HostGatewayRoutes.routeProtocol,
    metric: UInt32 = BlackholeRoute.metric
) -> KernelRoute {
    var route = BlackholeRoute.route(for: subnet)
    route.routeProtocol = proto
    route.priority = metric
    return route
}

/// The plan on hand-made tables; the route against a host's bridge is in HostGatewayRootTests.
@Suite struct BlackholeRoutePlanTests {
    private let connected = KernelRoute(destination: own, gateway: nil, interfaceIndex: 4, routeProtocol: 2, scope: 253)

    @Test func missingRouteIsAddedAtTheHighestMetric() {
        let (add, delete) = BlackholeRoute.plan(table: [connected], wanted: own)
        #expect(add == blackhole(own) && add?.priority == UInt32.max)
        #expect(delete.isEmpty)
    }

    @Test func presentRouteIsLeftAlone() {
        let (add, delete) = BlackholeRoute.plan(table: [connected, blackhole(own)], wanted: own)
        #expect(add == nil && delete.isEmpty)
    }

    @Test func anEarlierLeasesRouteAndOneWithAnotherMetricGo() {
        let (add, delete) = BlackholeRoute.plan(table: [blackhole(earlier), blackhole(own, metric: 0)], wanted: own)
        #expect(add == blackhole(own))
        #expect(delete == [blackhole(earlier), blackhole(own, metric: 0)])
    }

    @Test func withoutTheFlagOnlyWeftsBlackholesGo() {
        let operators = blackhole(own, proto: 4)
        let peer = KernelRoute(
            destination: earlier,
            gateway: IPv4Address(198, 18, 0, 9),
            interfaceIndex: 3,
            routeProtocol: HostGatewayRoutes.routeProtocol
        )
        let (add, delete) = BlackholeRoute.plan(table: [connected, operators, peer, blackhole(own)], wanted: nil)
        #expect(add == nil)
        #expect(delete == [blackhole(own)])
    }
}
