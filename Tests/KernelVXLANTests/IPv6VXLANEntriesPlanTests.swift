import Addressing
import CShims
import Netlink
import Routes
import Testing

@testable import KernelVXLAN

// flannel-v6.<VNI>'s plan: the same rules as flannel.<VNI>'s (VXLANEntriesPlanTests), with NDP
// neighbours, FDB remotes at PublicIPv6 and IPv6 routes, whose default metric is 1024.
private let device: Int32 = 8
private let network = IPv6Prefix("fc00::/48")!
private let local = IPv6Prefix("fc00:0:0:1::/64")!
private let ourIPv6 = IPv6Address("2001:db8::1")!

private func subnet(_ n: UInt16) -> IPv6Prefix {
    IPv6Prefix(IPv6Address(groups: [0xFC00, 0, 0, n, 0, 0, 0, 0]), length: 64)
}
private func underlay(_ host: UInt16) -> IPv6Address { IPv6Address(groups: [0x2001, 0xDB8, 0, 0, 0, 0, 0, host]) }
private func mac(_ last: UInt8) -> MACAddress { MACAddress(0x0E00_0000_0000 | UInt64(last)) }
private func peer(
    _ n: UInt16,
    host: UInt16?,
    mac last: UInt8?,
    backend: Backend = .vxlan
) -> IPv6Peer {
    IPv6Peer(
        subnet: subnet(n),
        nextHop: NextHop(publicIP: IPv4Address(198, 18, 0, UInt8(n)), port: 8472, backend: backend),
        publicIPv6: host.map(underlay),
        vtepMAC: last.map(mac)
    )
}
private func neighbour(_ n: UInt16, mac last: UInt8) -> IPv6NeighbourEntry {
    IPv6NeighbourEntry(interfaceIndex: device, address: subnet(n).network, mac: mac(last))
}
private func fdb(mac last: UInt8, host: UInt16) -> IPv6FDBEntry {
    IPv6FDBEntry(interfaceIndex: device, mac: mac(last), destination: underlay(host))
}
private func route(_ n: UInt16, protocol value: UInt8 = 87, metric: UInt32 = 1024) -> KernelIPv6Route {
    KernelIPv6Route(
        destination: subnet(n),
        gateway: subnet(n).network,
        interfaceIndex: device,
        routeProtocol: value,
        priority: metric,
        onlink: true
    )
}

private func plan(
    _ wanted: [IPv6Peer],
    neighbours: [IPv6NeighbourEntry] = [],
    fdb: [IPv6FDBEntry] = [],
    routes: [KernelIPv6Route] = []
) -> IPv6VXLANEntriesPlan {
    IPv6VXLANEntriesPlan(
        device: device,
        network: network,
        localSubnet: local,
        localAddress: ourIPv6,
        wanted: wanted,
        neighbours: neighbours,
        fdb: fdb,
        routes: routes
    )
}

@Suite struct IPv6VXLANEntriesPlanTests {
    @Test func aNewPeerGetsAnNDPEntryAnFDBRemoteAtItsPublicIPv6AndAnOnlinkRoute() {
        let result = plan([peer(2, host: 2, mac: 2)])
        #expect(result.neighbours == [neighbour(2, mac: 2)])
        #expect(result.neighbours.first?.description == "fc00:0:0:2:: dev 8 lladdr 0e:00:00:00:00:02 PERMANENT")
        #expect(result.fdb == [fdb(mac: 2, host: 2)])
        #expect(result.fdb.first?.description == "0e:00:00:00:00:02 dev 8 dst 2001:db8::2 self permanent")
        #expect(result.routes == [route(2)])
        #expect(
            result.routes.first?.description == "fc00:0:0:2::/64 via fc00:0:0:2:: dev 8 onlink proto 87 metric 1024"
        )
        #expect(result.staleNeighbours.isEmpty && result.staleFDB.isEmpty && result.staleRoutes.isEmpty)
    }

    @Test func entriesInPlaceAtTheIPv6DefaultMetricAreKept() {
        let result = plan(
            [peer(2, host: 2, mac: 2)],
            neighbours: [neighbour(2, mac: 2)],
            fdb: [fdb(mac: 2, host: 2)],
            routes: [route(2)]
        )
        #expect(result.isEmpty, "\(result)")
        #expect(result.peers.count == 1)
    }

    @Test func aRouteAtAnotherMetricIsRewrittenAndTheOldOneRemoved() {
        let result = plan([peer(2, host: 2, mac: 2)], routes: [route(2, metric: 0)])
        #expect(result.routes == [route(2)])
        #expect(result.staleRoutes == [route(2, metric: 0)])
    }

    @Test func aDepartedPeersEntriesAndAMovedPeersRemoteAreStale() {
        let result = plan(
            [peer(3, host: 9, mac: 3)],
            neighbours: [neighbour(2, mac: 2), neighbour(3, mac: 3)],
            fdb: [fdb(mac: 2, host: 2), fdb(mac: 3, host: 3), fdb(mac: 3, host: 4)],
            routes: [route(2), route(3), route(4, protocol: UInt8(RTPROT_BOOT))]
        )
        #expect(result.staleNeighbours == [neighbour(2, mac: 2)])
        // The first remote of the MAC is rewritten in place; the second and the departed peer's go.
        #expect(result.fdb == [fdb(mac: 3, host: 9)])
        #expect(result.staleFDB == [fdb(mac: 2, host: 2), fdb(mac: 3, host: 4)])
        #expect(result.staleRoutes == [route(2), route(4, protocol: UInt8(RTPROT_BOOT))], "flanneld's too")
        #expect(result.routes.isEmpty && result.neighbours.isEmpty)
    }

    @Test func peersThatCannotBeReachedOverIPv6AreRefused() {
        let result = plan([
            peer(2, host: 2, mac: nil),
            peer(3, host: nil, mac: 3),
            peer(4, host: 1, mac: 4),
            peer(5, host: 5, mac: 5, backend: .udp),
            peer(6, host: 6, mac: 6),
            peer(7, host: 7, mac: 6),
            peer(1, host: 8, mac: 8),
            IPv6Peer(
                subnet: IPv6Prefix("fd00:0:0:2::/64")!,
                nextHop: NextHop(publicIP: .any, port: 8472, backend: .vxlan),
                publicIPv6: underlay(9),
                vtepMAC: mac(9)
            ),
        ])
        #expect(
            result.refused.map(\.reason) == [
                .noMAC, .noRemote, .ownAddress, .otherBackend, .sharedMAC, .ownSubnet, .outsideNetwork,
            ]
        )
        #expect(result.peers.map(\.route.subnet) == [subnet(6)])
        #expect(
            result.refused.first?.description
                == "vxlan: refusing peer fc00:0:0:2::/64 at 2001:db8::2: its lease has no VtepMAC; the peer must publish one in BackendV6Data"
        )
        #expect(result.refused[2].description.contains("that PublicIPv6 is our own"))
    }
}
