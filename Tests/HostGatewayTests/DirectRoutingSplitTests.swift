import Addressing
import CShims
import Netlink
import Routes
import Testing

@testable import HostGateway

// vxlan's DirectRouting split on given lookups; no root needed.
private let underlay: Int32 = 3

private func prefix(_ text: String) -> IPv4Prefix { IPv4Prefix(text)! }
private func address(_ text: String) -> IPv4Address { IPv4Address(text)! }

private func peer(_ subnet: String, _ publicIP: String, backend: Backend = .vxlan) -> Route {
    Route(
        subnet: prefix(subnet),
        nextHop: NextHop(
            publicIP: address(publicIP),
            port: 8472,
            vtepMAC: MACAddress(0x0a_00_00_00_00_01),
            backend: backend
        )
    )
}

/// The bed's shape: 198.18.0.0/24 on the underlay, 198.18.1.0/24 behind the router 198.18.0.254.
private func reach(_ publicIP: IPv4Address) -> DirectRoutingSplit.Reach {
    IPv4Prefix("198.18.0.0/24")!.contains(publicIP) ? .direct : .gateway(address("198.18.0.254"))
}

@Suite struct DirectRoutingSplitTests {
    @Test func lookupsMeanWhatFlannelsDirectRoutingMeans() {
        let destination = prefix("198.18.0.2/32")
        let connected = KernelRoute(destination: destination, gateway: nil, interfaceIndex: underlay, routeProtocol: 0)
        #expect(DirectRoutingSplit.reach(connected, underlay: underlay) == .direct)

        var routed = connected
        routed.gateway = address("198.18.0.254")
        #expect(DirectRoutingSplit.reach(routed, underlay: underlay) == .gateway(address("198.18.0.254")))

        #expect(DirectRoutingSplit.reach(connected, underlay: 7) == .otherInterface(underlay))

        var local = connected
        local.type = UInt8(RTN_LOCAL)
        #expect(DirectRoutingSplit.reach(local, underlay: underlay) == .notUnicast(UInt8(RTN_LOCAL)))
        #expect(DirectRoutingSplit.reach(local, underlay: underlay).description == "it is one of our own addresses")

        // A multipath answer carries no gateway and no RTA_OIF: not a single directly connected route.
        var multipath = connected
        multipath.interfaceIndex = nil
        #expect(DirectRoutingSplit.reach(multipath, underlay: underlay) != .direct)
    }

    @Test func peersOnOurSegmentAreDirectTheRestTunnelled() {
        var split = DirectRoutingSplit()
        let two = peer("10.244.2.0/24", "198.18.0.2")
        let three = peer("10.244.3.0/24", "198.18.1.3")
        let result = split.split([two, three], reach: reach)
        #expect(result.direct == [two])
        #expect(result.tunnelled == [three])
        #expect(
            result.moves == [
                "vxlan: adding direct route to subnet 10.244.2.0/24 PublicIP 198.18.0.2 (directly connected)",
                "vxlan: subnet 10.244.3.0/24 PublicIP 198.18.1.3 goes through VXLAN: reached via the router 198.18.0.254",
            ]
        )
        #expect(split.direct == [prefix("10.244.2.0/24"): address("198.18.0.2")])
        #expect(split.tunnelled == [prefix("10.244.3.0/24"): .gateway(address("198.18.0.254"))])
    }

    @Test func anUnchangedTableLogsNothingAndAsksOncePerPublicIP() {
        var split = DirectRoutingSplit()
        let routes = [
            peer("10.244.2.0/24", "198.18.0.2"), peer("10.244.3.0/24", "198.18.1.3"),
            peer("10.244.4.0/24", "198.18.0.2"),
        ]
        _ = split.split(routes, reach: reach)
        var asked: [IPv4Address] = []
        let again = split.split(routes) {
            asked.append($0)
            return reach($0)
        }
        #expect(again.moves.isEmpty)
        #expect(again.direct.map(\.subnet) == [prefix("10.244.2.0/24"), prefix("10.244.4.0/24")])
        #expect(asked == [address("198.18.0.2"), address("198.18.1.3")])
    }

    @Test func aPeerWhosePublicIPMovesOntoOurSegmentBecomesDirectAndBack() {
        var split = DirectRoutingSplit()
        _ = split.split([peer("10.244.3.0/24", "198.18.1.3")], reach: reach)

        let moved = split.split([peer("10.244.3.0/24", "198.18.0.3")], reach: reach)
        #expect(moved.direct == [peer("10.244.3.0/24", "198.18.0.3")] && moved.tunnelled.isEmpty)
        #expect(
            moved.moves == [
                "vxlan: adding direct route to subnet 10.244.3.0/24 PublicIP 198.18.0.3 (directly connected; was through VXLAN)"
            ]
        )

        let back = split.split([peer("10.244.3.0/24", "198.18.1.3")], reach: reach)
        #expect(back.direct.isEmpty && back.tunnelled == [peer("10.244.3.0/24", "198.18.1.3")])
        #expect(
            back.moves == [
                "vxlan: subnet 10.244.3.0/24 PublicIP 198.18.1.3 goes through VXLAN: reached via the router 198.18.0.254 (was a direct route via 198.18.0.3)"
            ]
        )
    }

    @Test func reachabilityThatChangesMovesThePeerWithoutANewLease() {
        var split = DirectRoutingSplit()
        let two = peer("10.244.2.0/24", "198.18.0.2")
        _ = split.split([two], reach: reach)
        let cut = split.split([two]) { _ in .unreachable("ENETUNREACH") }
        #expect(cut.tunnelled == [two] && cut.direct.isEmpty)
        #expect(
            cut.moves == [
                "vxlan: subnet 10.244.2.0/24 PublicIP 198.18.0.2 goes through VXLAN: no route to it (ENETUNREACH) (was a direct route via 198.18.0.2)"
            ]
        )
    }

    @Test func aDirectPeerThatChangesPublicIPOnTheSegmentIsLoggedWithTheOldOne() {
        var split = DirectRoutingSplit()
        _ = split.split([peer("10.244.2.0/24", "198.18.0.2")], reach: reach)
        let moved = split.split([peer("10.244.2.0/24", "198.18.0.9")], reach: reach)
        #expect(
            moved.moves == [
                "vxlan: adding direct route to subnet 10.244.2.0/24 PublicIP 198.18.0.9 (directly connected; was PublicIP 198.18.0.2)"
            ]
        )
    }

    @Test func aGoneDirectPeerIsLoggedAsRemoved() {
        var split = DirectRoutingSplit()
        _ = split.split([peer("10.244.2.0/24", "198.18.0.2"), peer("10.244.3.0/24", "198.18.1.3")], reach: reach)
        let gone = split.split([], reach: reach)
        #expect(gone.direct.isEmpty && gone.tunnelled.isEmpty)
        #expect(
            gone.moves == [
                "vxlan: removing direct route to subnet 10.244.2.0/24 PublicIP 198.18.0.2 (its lease is gone)"
            ]
        )
        #expect(split.direct.isEmpty && split.tunnelled.isEmpty)
    }

    @Test func leasesOfAnotherBackendAreLeftToTheVXLANPlanWithoutALookup() {
        var split = DirectRoutingSplit()
        let hostGateway = peer("10.244.5.0/24", "198.18.0.5", backend: .hostGateway)
        let result = split.split([hostGateway]) { _ in
            Issue.record("looked up a non-vxlan lease's PublicIP")
            return .direct
        }
        #expect(result.tunnelled == [hostGateway] && result.direct.isEmpty && result.moves.isEmpty)
    }
}
