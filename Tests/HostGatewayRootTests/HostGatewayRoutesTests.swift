import Addressing
import Foundation
import HostGateway
import Netlink
import Routes
import TestThreads
import Testing

private typealias Bed = ThreeHostBed

/// A peer on another segment: 198.19.0.5 is outside every host's 198.18.0.0/24.
private let farPeer = Route(
    subnet: IPv4Prefix(IPv4Address(10, 244, 5, 0), length: 24),
    nextHop: NextHop(publicIP: IPv4Address(198, 19, 0, 5), port: 0, backend: .hostGateway)
)

/// What `ip route` prints for a Weft host-gw route to host `n`.
private func weftLine(_ n: Int, via gateway: Int? = nil) -> String {
    "10.244.\(n).0/24 via 198.18.0.\(gateway ?? n) dev ul0 proto 87"
}

private func others(_ n: Int) -> [Route] { Bed.hostNumbers.filter { $0 != n }.map(Bed.route) }

@Suite(.ownThread, .enabled(if: Bed.missing == nil, "\(Bed.missing ?? "")"), .serialized, .timeLimit(.minutes(2)))
struct HostGatewayRoutesTests {
    @Test func threeHostsReachEachOthersContainersAndTheFarPeerIsRefused() throws {
        try Bed.with { bed in
            var gateways: [Int: HostRoutes] = [:]
            for n in Bed.hostNumbers {
                let gateway = try bed.hostGateway(n)
                gateways[n] = gateway
                let result = try gateway.reconcile(others(n) + [farPeer])
                #expect(Set(result.added.map(\.destination)) == Set(others(n).map(\.subnet)))
                #expect(result.removed.isEmpty && result.replaced.isEmpty && result.kept == 0)
                #expect(result.refused.map(\.reason) == [.offSegment])
                let line = try #require(gateway.log.all.first { $0.contains("refusing") })
                #expect(
                    line
                        == "host-gw: refusing peer 10.244.5.0/24 at 198.19.0.5: 198.19.0.5 is not on our L2 segment 198.18.0.0/24 (interface index \(result.added[0].interfaceIndex!)); host-gw needs every host on one L2 segment, use the vxlan backend"
                )
                #expect(gateway.statistics.refused == [.offSegment: 1])
                #expect(gateway.statistics.installed == 2)
            }
            for n in Bed.hostNumbers {
                let weft = try bed.routes(n).filter { $0.contains("proto 87") }
                #expect(Set(weft) == Set(Bed.hostNumbers.filter { $0 != n }.map { weftLine($0) }), "host \(n): \(weft)")
            }
            for from in Bed.hostNumbers {
                for to in Bed.hostNumbers where to != from {
                    #expect(try bed.ping(from: from, to: to), "container \(from) → container \(to)")
                }
            }
            // A periodic resync changes nothing and does not repeat the refusal line.
            let again = try gateways[1]!.resync()
            #expect(again.kept == 2 && again.added.isEmpty && again.removed.isEmpty)
            #expect(gateways[1]!.log.all.filter { $0.contains("refusing") }.count == 1)
            #expect(gateways[1]!.statistics.refusalsLogged == 1)
        }
    }

    @Test func firstReconcileRemovesStaleWeftRoutesAndLeavesForeignOnes() throws {
        try Bed.with { bed in
            // Left over from a previous run: a peer that is gone, and a peer whose PublicIP moved.
            try bed.ip(1, "route", "add", "10.244.50.0/24", "via", "198.18.0.9", "dev", "ul0", "proto", "87")
            try bed.ip(1, "route", "add", "10.244.2.0/24", "via", "198.18.0.7", "dev", "ul0", "proto", "87")
            // Not Weft's: an operator's route in the same range, and another network's Weft route.
            try bed.ip(1, "route", "add", "10.244.60.0/24", "via", "198.18.0.3", "dev", "ul0", "proto", "static")
            try bed.ip(1, "route", "add", "10.250.0.0/24", "via", "198.18.0.9", "dev", "ul0", "proto", "87")

            let gateway = try bed.hostGateway(1)
            let result = try gateway.reconcile(others(1))
            #expect(
                result.removed.map(\.description) == [
                    "10.244.50.0/24 via 198.18.0.9 dev \(result.removed.first?.interfaceIndex ?? -1) proto 87"
                ]
            )
            #expect(result.replaced.map(\.destination) == [Bed.subnet(2)])
            #expect(result.added.map(\.destination) == [Bed.subnet(3)])
            #expect(result.refused.isEmpty)

            let lines = try bed.routes(1)
            #expect(lines.contains(weftLine(2)) && lines.contains(weftLine(3)), "\(lines)")
            #expect(!lines.contains { $0.hasPrefix("10.244.50.0/24") }, "\(lines)")
            #expect(!lines.contains(weftLine(2, via: 7)), "\(lines)")
            #expect(lines.contains("10.244.60.0/24 via 198.18.0.3 dev ul0 proto static"), "\(lines)")
            #expect(lines.contains("10.250.0.0/24 via 198.18.0.9 dev ul0 proto 87"), "\(lines)")
        }
    }

    @Test func removedPeerLosesItsRouteAndResyncRestoresADeletedOne() throws {
        try Bed.with { bed in
            var gateways: [Int: HostRoutes] = [:]
            for n in Bed.hostNumbers {
                gateways[n] = try bed.hostGateway(n)
                try gateways[n]!.reconcile(others(n))
            }
            #expect(try bed.ping(from: 1, to: 3))

            // Host 3's lease is gone from host 1's publication.
            let result = try gateways[1]!.reconcile([Bed.route(2)])
            #expect(result.removed.map(\.destination) == [Bed.subnet(3)])
            #expect(result.kept == 1)
            let lines = try bed.routes(1)
            #expect(!lines.contains { $0.hasPrefix("10.244.3.0/24") }, "\(lines)")
            #expect(lines.contains(weftLine(2)), "\(lines)")
            #expect(try !bed.ping(from: 1, to: 3))
            #expect(try bed.ping(from: 1, to: 2))
            #expect(gateways[1]!.statistics.installed == 1 && gateways[1]!.statistics.removed == 1)

            // Someone deletes a Weft route by hand; the next resync puts it back.
            try bed.ip(1, "route", "del", "10.244.2.0/24")
            let repaired = try gateways[1]!.resync()
            #expect(repaired.added.map(\.destination) == [Bed.subnet(2)])
            #expect(try bed.routes(1).contains(weftLine(2)))

            // A backend switch: removeAll takes Weft's routes out and leaves the connected ones.
            let before = try bed.routes(1).filter { !$0.contains("proto 87") }
            #expect(try gateways[1]!.removeAll().map(\.destination) == [Bed.subnet(2)])
            #expect(try bed.routes(1) == before)
        }
    }

    @Test func eachKindOfUnusablePeerIsRefusedAndTheRestInstalled() throws {
        try Bed.with { bed in
            // An operator's route already covers host 3's subnet exactly.
            try bed.ip(1, "route", "add", "10.244.3.0/24", "via", "198.18.0.3", "dev", "ul0", "proto", "static")
            let gateway = try bed.hostGateway(1)
            let ownAddress = Route(
                subnet: IPv4Prefix(IPv4Address(10, 244, 7, 0), length: 24),
                nextHop: NextHop(publicIP: Bed.publicIP(1), port: 0, backend: .hostGateway)
            )
            let vxlan = Route(
                subnet: IPv4Prefix(IPv4Address(10, 244, 8, 0), length: 24),
                nextHop: NextHop(publicIP: IPv4Address(198, 18, 0, 8), port: 8472, backend: .vxlan)
            )
            let outside = Route(
                subnet: IPv4Prefix(IPv4Address(10, 99, 0, 0), length: 24),
                nextHop: NextHop(publicIP: IPv4Address(198, 18, 0, 9), port: 0, backend: .hostGateway)
            )
            // A second route for host 2's subnet: the first one given wins (only the .2 route appears below).
            let duplicate = Route(
                subnet: Bed.subnet(2),
                nextHop: NextHop(publicIP: IPv4Address(198, 18, 0, 9), port: 0, backend: .hostGateway)
            )
            let result = try gateway.reconcile([
                Bed.route(2), duplicate, Bed.route(3), ownAddress, vxlan, outside, farPeer,
            ])

            #expect(result.added.map(\.destination) == [Bed.subnet(2)])
            let reasons = Dictionary(uniqueKeysWithValues: result.refused.map { ($0.route.subnet, $0.reason) })
            #expect(
                reasons == [
                    Bed.subnet(3): .foreignRoute, ownAddress.subnet: .ownAddress, vxlan.subnet: .otherBackend,
                    outside.subnet: .outsideNetwork, farPeer.subnet: .offSegment,
                ]
            )
            #expect(
                gateway.statistics.refused == [
                    .foreignRoute: 1, .ownAddress: 1, .otherBackend: 1, .outsideNetwork: 1, .offSegment: 1,
                ]
            )
            // One line per refused peer, each naming the peer.
            let refusals = gateway.log.all.filter { $0.hasPrefix("host-gw: refusing peer") }
            #expect(refusals.count == 5)
            for refusal in result.refused {
                #expect(
                    refusals.contains { $0.contains("\(refusal.route.subnet) at \(refusal.route.nextHop.publicIP)") }
                )
                #expect(!refusal.description.contains("\n"))
            }
            #expect(
                refusals.contains { $0.contains("10.244.3.0/24 via 198.18.0.3 dev") && $0.contains("proto static") }
            )

            let lines = try bed.routes(1)
            #expect(lines.contains("10.244.3.0/24 via 198.18.0.3 dev ul0 proto static"), "\(lines)")
            #expect(lines.filter { $0.contains("proto 87") } == [weftLine(2)], "\(lines)")
        }
    }

    @Test func kernelErrorsAreReportedPerPeerNotThrown() throws {
        try Bed.with { bed in
            let log = LogLines()
            // An interface index that does not exist: the kernel finds no nexthop for any gateway.
            let gateway = try bed.enter(bed.host(1)) {
                HostRoutes(
                    try HostGatewayRoutes(
                        interfaceIndex: 9999,
                        address: Bed.publicIP(1),
                        prefixLength: 24,
                        network: Bed.network,
                        log: { log.append($0) }
                    ),
                    log: log
                )
            }
            let result = try gateway.reconcile(others(1))
            #expect(result.added.isEmpty)
            #expect(result.refused.map(\.reason) == [.kernelError, .kernelError])
            #expect(
                result.refused.allSatisfy {
                    $0.description.contains("RTM_NEWROUTE") && $0.description.contains("errno \(ENETUNREACH)")
                        && $0.description.contains("(kernel: Nexthop has invalid gateway)")
                },
                "\(result.refused)"
            )
            #expect(gateway.statistics.installed == 0)
        }
    }

    @Test func connectedPrefixLengthComesFromTheKernelsConnectedRoute() throws {
        try Bed.with { bed in
            try bed.ip(1, "addr", "add", "198.18.7.1/28", "dev", "ul0")
            try bed.ip(1, "addr", "add", "198.18.9.1/32", "dev", "ul0")
            try bed.ip(1, "addr", "add", "198.18.8.1/24", "dev", "ul0", "noprefixroute")
            let (segment, narrower, ctr, missing, unprefixed) = try bed.enter(bed.host(1)) {
                let index = try RouteNetlink.interfaceIndex("ul0")
                let ctr = try RouteNetlink.interfaceIndex("ctr0")
                func length(_ index: Int32, _ text: String) -> Result<Int, NetlinkError> {
                    Result { () throws(NetlinkError) in
                        try HostGatewayRoutes.connectedPrefixLength(interfaceIndex: index, address: IPv4Address(text)!)
                    }
                }
                return (
                    length(index, "198.18.0.1"), length(index, "198.18.7.1"), length(ctr, "10.244.1.1"),
                    length(ctr, "198.18.0.1"), length(index, "198.18.8.1")
                )
            }
            #expect(try segment.get() == 24)
            #expect(try narrower.get() == 28)
            #expect(try ctr.get() == 24)
            for failure in [missing, unprefixed] {
                #expect(throws: NetlinkError.self) { try failure.get() }
                if case .failure(let error) = failure {
                    #expect(
                        error.code == ENOENT && error.description.contains("give the prefix length explicitly"),
                        "\(error)"
                    )
                }
            }
        }
    }

    @Test func prefixLengthOutOfRangeIsRejectedBeforeAnySocket() {
        #expect {
            _ = try HostGatewayRoutes(
                interfaceIndex: 1,
                address: Bed.publicIP(1),
                prefixLength: 33,
                network: Bed.network
            )
        } throws: { error in
            (error as? NetlinkError).map {
                $0.code == EINVAL && $0.subject.contains("198.18.0.1/33: prefix length outside 0...32")
            } ?? false
        }
    }
}
