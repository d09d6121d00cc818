import Addressing
import CShims
import Netlink
import Routes
import Testing

@testable import KernelVXLAN

private let device: Int32 = 7
private let network = IPv4Prefix(IPv4Address(10, 244, 0, 0), length: 16)
private let local = IPv4Prefix(IPv4Address(10, 244, 1, 0), length: 24)
private let ourIP = IPv4Address(198, 18, 0, 1)

private func subnet(_ third: UInt8) -> IPv4Prefix { IPv4Prefix(IPv4Address(10, 244, third, 0), length: 24) }
private func mac(_ last: UInt8) -> MACAddress { MACAddress(0x0E00_0000_0000 | UInt64(last)) }
private func peer(_ third: UInt8, host: UInt8, mac last: UInt8, backend: Backend = .vxlan) -> Route {
    Route(
        subnet: subnet(third),
        nextHop: NextHop(publicIP: IPv4Address(198, 18, 0, host), port: 8472, vtepMAC: mac(last), backend: backend)
    )
}
private func neighbour(_ third: UInt8, mac last: UInt8, state: Int32 = NUD_PERMANENT) -> NeighbourEntry {
    NeighbourEntry(
        interfaceIndex: device,
        address: IPv4Address(10, 244, third, 0),
        mac: mac(last),
        state: UInt16(state)
    )
}
private func fdb(mac last: UInt8, host: UInt8) -> FDBEntry {
    FDBEntry(interfaceIndex: device, mac: mac(last), destination: IPv4Address(198, 18, 0, host))
}
private func route(
    _ third: UInt8,
    protocol value: UInt8 = 87,
    onlink: Bool = true,
    index: Int32 = device
) -> KernelRoute {
    KernelRoute(
        destination: subnet(third),
        gateway: IPv4Address(10, 244, third, 0),
        interfaceIndex: index,
        routeProtocol: value,
        onlink: onlink
    )
}

private func plan(
    _ wanted: [Route],
    neighbours: [NeighbourEntry] = [],
    fdb: [FDBEntry] = [],
    routes: [KernelRoute] = []
) -> VXLANEntriesPlan {
    VXLANEntriesPlan(
        device: device,
        network: network,
        localSubnet: local,
        localAddress: ourIP,
        wanted: wanted,
        neighbours: neighbours,
        fdb: fdb,
        routes: routes
    )
}

@Suite struct VXLANEntriesPlanTests {
    @Test func aNewPeerGetsFlannelsThreeEntries() {
        let result = plan([peer(2, host: 2, mac: 2)])
        #expect(result.neighbours == [neighbour(2, mac: 2)])
        #expect(result.fdb == [fdb(mac: 2, host: 2)])
        #expect(result.routes == [route(2)])
        #expect(result.routes.first?.description == "10.244.2.0/24 via 10.244.2.0 dev 7 onlink proto 87")
        #expect(
            result.staleNeighbours.isEmpty && result.staleFDB.isEmpty && result.staleRoutes.isEmpty
                && result.refused.isEmpty
        )
    }

    @Test func entriesAlreadyInPlaceAreKept() {
        let result = plan(
            [peer(2, host: 2, mac: 2)],
            neighbours: [neighbour(2, mac: 2)],
            fdb: [fdb(mac: 2, host: 2)],
            routes: [route(2)]
        )
        #expect(result.isEmpty, "\(result)")
        #expect(result.peers.count == 1)
    }

    @Test func aNewPublicIPRewritesTheFDBEntryInPlace() {
        let result = plan(
            [peer(2, host: 9, mac: 2)],
            neighbours: [neighbour(2, mac: 2)],
            fdb: [fdb(mac: 2, host: 2)],
            routes: [route(2)]
        )
        #expect(result.fdb == [fdb(mac: 2, host: 9)])
        // vxlan's replace rewrites the MAC's first remote: nothing left to delete.
        #expect(result.staleFDB.isEmpty)
        #expect(result.neighbours.isEmpty && result.routes.isEmpty)
    }

    @Test func aNewMACRewritesTheNeighbourAndRemovesTheOldFDBEntry() {
        let result = plan(
            [peer(2, host: 2, mac: 5)],
            neighbours: [neighbour(2, mac: 2)],
            fdb: [fdb(mac: 2, host: 2)],
            routes: [route(2)]
        )
        #expect(result.neighbours == [neighbour(2, mac: 5)])
        #expect(result.staleNeighbours.isEmpty, "replaced in place")
        #expect(result.fdb == [fdb(mac: 5, host: 2)])
        #expect(result.staleFDB == [fdb(mac: 2, host: 2)])
        #expect(result.routes.isEmpty)
    }

    @Test func aDepartedPeersEntriesAreStale() {
        let result = plan([], neighbours: [neighbour(3, mac: 3)], fdb: [fdb(mac: 3, host: 3)], routes: [route(3)])
        #expect(result.staleNeighbours == [neighbour(3, mac: 3)])
        #expect(result.staleFDB == [fdb(mac: 3, host: 3)])
        #expect(result.staleRoutes == [route(3)])
    }

    @Test func entriesWeftDidNotMakeAreLeftAlone() {
        let foreign = [
            route(3, protocol: UInt8(RTPROT_STATIC)),  // an operator's route through the device
            route(4, index: 2),  // proto 87 on another device (host-gw's)
            KernelRoute(
                destination: IPv4Prefix(IPv4Address(192, 168, 0, 0), length: 24),
                gateway: IPv4Address(10, 244, 3, 0),
                interfaceIndex: device,
                routeProtocol: 87,
                onlink: true
            ),  // outside the Network
        ]
        let transient = neighbour(3, mac: 3, state: NUD_REACHABLE)
        var otherDevice = fdb(mac: 4, host: 4)
        otherDevice.interfaceIndex = 2
        let result = plan([], neighbours: [transient], fdb: [otherDevice], routes: foreign)
        #expect(result.isEmpty, "\(result)")
    }

    @Test func flanneldsRoutesOnAnAdoptedDeviceAreRewrittenOrRemoved() {
        let flanneld = [route(2, protocol: UInt8(RTPROT_BOOT)), route(3, protocol: UInt8(RTPROT_BOOT))]
        let result = plan(
            [peer(2, host: 2, mac: 2)],
            neighbours: [neighbour(2, mac: 2)],
            fdb: [fdb(mac: 2, host: 2)],
            routes: flanneld
        )
        #expect(result.routes == [route(2)], "replaced in place under Weft's protocol")
        #expect(result.staleRoutes == [route(3, protocol: UInt8(RTPROT_BOOT))])
    }

    @Test func peersThatCannotBeServedAreRefusedWithAReason() {
        var noMAC = peer(6, host: 6, mac: 0)
        noMAC.nextHop.vtepMAC = MACAddress(0)
        let wanted = [
            peer(2, host: 2, mac: 2, backend: .udp),
            Route(
                subnet: IPv4Prefix(IPv4Address(10, 245, 0, 0), length: 24),
                nextHop: peer(3, host: 3, mac: 3).nextHop
            ),
            peer(1, host: 5, mac: 5),  // our own subnet
            peer(4, host: 1, mac: 4),  // our own PublicIP
            noMAC,
            peer(7, host: 7, mac: 7),
            peer(8, host: 8, mac: 7),  // 7's MAC again
        ]
        let result = plan(wanted)
        #expect(
            result.refused.map(\.reason) == [
                .otherBackend, .outsideNetwork, .ownSubnet, .ownAddress, .noMAC, .sharedMAC,
            ]
        )
        #expect(result.peers.map(\.route.subnet) == [subnet(7)])
        #expect(result.refused.last?.description.contains("10.244.7.0/24") == true)
    }

    @Test func aDuplicateSubnetKeepsTheFirstRoute() {
        let result = plan([peer(2, host: 2, mac: 2), peer(2, host: 3, mac: 3)])
        #expect(result.peers.map(\.route.nextHop.publicIP) == [IPv4Address(198, 18, 0, 2)])
    }
}

@Suite struct VXLANDeviceDecisionTests {
    private let wanted = VXLANLink(
        name: "flannel.1",
        vni: 1,
        local: ourIP,
        underlayIndex: 2,
        port: 8472,
        mac: mac(1),
        mtu: 1450
    )

    private func state(kind: String?, vxlan: VXLANLink? = nil) -> LinkState {
        LinkState(index: 9, name: "flannel.1", kind: kind, isUp: true, mac: nil, mtu: 1450, vxlan: vxlan)
    }

    @Test func nothingThereIsCreated() {
        #expect(VXLANDeviceDecision.decide(existing: nil, wanted: wanted) == .create)
    }

    @Test func aCompatibleDeviceIsAdoptedWhateverItsMACAndMTU() {
        var flanneld = wanted
        flanneld.mac = mac(9)
        flanneld.mtu = 1400
        #expect(
            VXLANDeviceDecision.decide(existing: state(kind: "vxlan", vxlan: flanneld), wanted: wanted)
                == .adopt(index: 9)
        )
    }

    @Test func anIncompatibleDeviceIsReplacedNamingTheDifference() {
        for (change, mention) in [
            ({ (l: inout VXLANLink) in l.vni = 2 }, "VNI 2"),
            ({ (l: inout VXLANLink) in l.port = 4789 }, "port 4789"),
            ({ (l: inout VXLANLink) in l.local = IPv4Address(198, 18, 0, 9) }, "local address 198.18.0.9"),
            ({ (l: inout VXLANLink) in l.underlayIndex = 3 }, "underlay interface index 3"),
            ({ (l: inout VXLANLink) in l.learning = true }, "learning on"),
            ({ (l: inout VXLANLink) in l.gbp = true }, "GBP on"),
        ] {
            var other = wanted
            change(&other)
            let decision = VXLANDeviceDecision.decide(existing: state(kind: "vxlan", vxlan: other), wanted: wanted)
            guard case .replace(9, let reason) = decision else {
                Issue.record("\(mention): \(decision)")
                continue
            }
            #expect(reason.contains(mention), "\(reason)")
        }
    }

    @Test func weftsTUNIsReplacedAndOtherKindsRefused() {
        #expect(
            VXLANDeviceDecision.decide(existing: state(kind: "tun"), wanted: wanted)
                == .replace(index: 9, reason: "a TUN device (weftd's user-space vxlan dataplane)")
        )
        guard case .refuse(let reason) = VXLANDeviceDecision.decide(existing: state(kind: "bridge"), wanted: wanted)
        else {
            Issue.record("a bridge named flannel.1 must be refused")
            return
        }
        #expect(reason.contains("a bridge device") && reason.contains("ip link del flannel.1"), "\(reason)")
    }
}
