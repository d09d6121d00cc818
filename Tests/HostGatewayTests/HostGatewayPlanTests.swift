import Addressing
import Netlink
import Routes
import Testing

@testable import HostGateway

// The reconcile decisions on hand-made kernel tables; no root needed.
private let underlay: Int32 = 3
private let ours = HostGatewayRoutes.routeProtocol

private func prefix(_ text: String) -> IPv4Prefix { IPv4Prefix(text)! }
private func address(_ text: String) -> IPv4Address { IPv4Address(text)! }

private func peer(_ subnet: String, _ publicIP: String, backend: Backend = .hostGateway) -> Route {
    Route(
        subnet: prefix(subnet),
        nextHop: NextHop(publicIP: address(publicIP), port: backend == .vxlan ? 8472 : 0, backend: backend)
    )
}

private func kernel(
    _ destination: String,
    via gateway: String,
    dev: Int32 = underlay,
    proto: UInt8 = ours,
    metric: UInt32 = 0
) -> KernelRoute {
    KernelRoute(
        destination: prefix(destination),
        gateway: address(gateway),
        interfaceIndex: dev,
        routeProtocol: proto,
        priority: metric
    )
}

private let connected = KernelRoute(
    destination: prefix("198.18.0.0/24"),
    gateway: nil,
    interfaceIndex: underlay,
    routeProtocol: 2,
    scope: 253
)

private func plan(_ table: [KernelRoute], _ wanted: [Route]) -> HostGatewayPlan<Route> {
    HostGatewayPlan(
        table: [connected] + table,
        wanted: wanted,
        interfaceIndex: underlay,
        address: address("198.18.0.1"),
        segment: prefix("198.18.0.0/24"),
        network: prefix("10.244.0.0/16")
    )
}

@Suite struct HostGatewayPlanTests {
    @Test func emptyTableAddsEveryPeer() {
        let result = plan([], [peer("10.244.2.0/24", "198.18.0.2"), peer("10.244.3.0/24", "198.18.0.3")])
        #expect(
            result.steps.map(\.desired) == [
                kernel("10.244.2.0/24", via: "198.18.0.2"), kernel("10.244.3.0/24", via: "198.18.0.3"),
            ]
        )
        #expect(result.steps.allSatisfy { $0.replacing == nil })
        #expect(result.kept.isEmpty && result.removals.isEmpty && result.refused.isEmpty)
    }

    @Test func exactRouteIsKeptWithoutAStep() {
        let existing = kernel("10.244.2.0/24", via: "198.18.0.2")
        let result = plan([existing], [peer("10.244.2.0/24", "198.18.0.2")])
        #expect(result.kept == [existing])
        #expect(result.steps.isEmpty && result.removals.isEmpty)
    }

    @Test(arguments: [kernel("10.244.2.0/24", via: "198.18.0.7"), kernel("10.244.2.0/24", via: "198.18.0.2", dev: 9)])
    func movedGatewayOrDeviceIsReplacedInPlace(old: KernelRoute) {
        let result = plan([old], [peer("10.244.2.0/24", "198.18.0.2")])
        #expect(
            result.steps == [
                HostGatewayPlan.Step(
                    route: peer("10.244.2.0/24", "198.18.0.2"),
                    desired: kernel("10.244.2.0/24", via: "198.18.0.2"),
                    replacing: old
                )
            ]
        )
        #expect(result.removals.isEmpty)
    }

    @Test func ownedRouteWithAnotherMetricIsRemovedAndTheWantedOneAdded() {
        let metric = kernel("10.244.2.0/24", via: "198.18.0.2", metric: 100)
        let result = plan([metric], [peer("10.244.2.0/24", "198.18.0.2")])
        #expect(result.steps.map(\.replacing) == [nil])
        #expect(result.removals == [metric])
    }

    @Test func staleOwnedRoutesGoAndEverythingElseStays() {
        let stale = kernel("10.244.50.0/24", via: "198.18.0.9")
        let otherNetwork = kernel("10.250.0.0/24", via: "198.18.0.9")
        let operatorRoute = kernel("10.244.60.0/24", via: "198.18.0.3", proto: 4)
        let boot = kernel("10.244.61.0/24", via: "198.18.0.3", proto: 3)
        let result = plan([stale, otherNetwork, operatorRoute, boot], [])
        #expect(result.removals == [stale])
        #expect(result.steps.isEmpty && result.kept.isEmpty)
    }

    @Test func theBlackholeRouteForOurOwnSubnetIsNotAStalePeerRoute() {
        let blackhole = BlackholeRoute.route(for: prefix("10.244.1.0/24"))
        let result = plan([blackhole], [peer("10.244.2.0/24", "198.18.0.2")])
        #expect(result.removals.isEmpty && result.kept.isEmpty)
        #expect(result.steps.map(\.desired) == [kernel("10.244.2.0/24", via: "198.18.0.2")])
    }

    @Test func foreignRouteForAPeerSubnetRefusesThatPeerOnly() {
        let operatorRoute = kernel("10.244.3.0/24", via: "198.18.0.3", proto: 4, metric: 50)
        let result = plan([operatorRoute], [peer("10.244.2.0/24", "198.18.0.2"), peer("10.244.3.0/24", "198.18.0.3")])
        #expect(result.steps.map(\.desired.destination) == [prefix("10.244.2.0/24")])
        #expect(result.refused.map(\.reason) == [.foreignRoute])
        #expect(
            result.refused.first?.description
                == "host-gw: refusing peer 10.244.3.0/24 at 198.18.0.3: the main table already has 10.244.3.0/24 via 198.18.0.3 dev 3 proto static metric 50, which Weft did not add and will not change; delete it to let host-gw route this subnet"
        )
        #expect(!result.removals.contains(operatorRoute))
    }

    @Test func refusalsNameThePeerAndTheFix() {
        let result = plan(
            [],
            [
                peer("10.244.5.0/24", "198.19.0.5"),
                peer("10.244.7.0/24", "198.18.0.1"),
                peer("10.244.8.0/24", "198.19.0.8", backend: .vxlan),  // two faults: the backend is reported
                peer("10.99.0.0/24", "198.18.0.9"),
            ]
        )
        #expect(result.steps.isEmpty)
        #expect(result.refused.map(\.reason) == [.offSegment, .ownAddress, .otherBackend, .outsideNetwork])
        #expect(
            result.refused.map(\.description) == [
                "host-gw: refusing peer 10.244.5.0/24 at 198.19.0.5: 198.19.0.5 is not on our L2 segment 198.18.0.0/24 (interface index 3); host-gw needs every host on one L2 segment, use the vxlan backend",
                "host-gw: refusing peer 10.244.7.0/24 at 198.18.0.1: that PublicIP is our own interface address; two hosts claim it",
                "host-gw: refusing peer 10.244.8.0/24 at 198.19.0.8: its lease is for the vxlan backend, not host-gw; all hosts of a network must use one backend",
                "host-gw: refusing peer 10.99.0.0/24 at 198.18.0.9: the subnet is outside the Network 10.244.0.0/16",
            ]
        )
    }

    @Test func segmentEdgesAreOnTheSegment() {
        let result = plan([], [peer("10.244.2.0/24", "198.18.0.254"), peer("10.244.3.0/24", "198.18.1.0")])
        #expect(result.steps.map(\.desired.destination) == [prefix("10.244.2.0/24")])
        #expect(result.refused.map(\.route.subnet) == [prefix("10.244.3.0/24")])
    }

    /// vxlan's DirectRouting: vxlan leases are the peers, and the vxlan device's own routes (Weft's
    /// protocol too) are neither kept nor removed here, while a previous direct route is.
    @Test func directRoutingTakesVXLANLeasesAndLeavesTheOverlayDevicesRoutes() {
        let overlay: Int32 = 8
        let tunnelRoute = KernelRoute(
            destination: prefix("10.244.3.0/24"),
            gateway: address("10.244.3.0"),
            interfaceIndex: overlay,
            routeProtocol: ours,
            onlink: true
        )
        let staleDirect = kernel("10.244.4.0/24", via: "198.18.0.4")
        let result = HostGatewayPlan(
            table: [connected, tunnelRoute, staleDirect],
            wanted: [peer("10.244.2.0/24", "198.18.0.2", backend: .vxlan), peer("10.244.5.0/24", "198.18.0.5")],
            interfaceIndex: underlay,
            address: address("198.18.0.1"),
            segment: prefix("0.0.0.0/0"),
            network: prefix("10.244.0.0/16"),
            backend: .vxlan,
            overlayIndex: overlay
        )
        #expect(result.steps.map(\.desired) == [kernel("10.244.2.0/24", via: "198.18.0.2")])
        #expect(result.removals == [staleDirect])
        #expect(
            result.refused.map(\.description) == [
                "vxlan direct routing: refusing peer 10.244.5.0/24 at 198.18.0.5: its lease is for the host-gw backend, not vxlan; all hosts of a network must use one backend"
            ]
        )
    }

    @Test func duplicateSubnetKeepsTheFirstRoute() {
        let result = plan([], [peer("10.244.2.0/24", "198.18.0.2"), peer("10.244.2.0/24", "198.18.0.9")])
        #expect(result.steps.map(\.desired) == [kernel("10.244.2.0/24", via: "198.18.0.2")])
    }
}
