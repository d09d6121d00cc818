import Addressing
import CShims
import Foundation
import HostGateway
import Netlink
import Routes
import Synchronization
import TestThreads
import Testing

private typealias Bed = ThreeHostBed

private func others6(_ n: Int) -> [IPv6Peer] { Bed.hostNumbers.filter { $0 != n }.map(Bed.ipv6Route) }

/// What `ip -6 route` prints for a Weft host-gw route to host `n`.
private func weftLine6(_ n: Int) -> String {
    "fc00:0:0:\(n)::/64 via 2001:db8::\(n) dev ul0 proto 87 metric 1024 pref medium"
}

/// host-gw's IPv6 side on the three-host bed: `<IPv6Subnet> via <PublicIPv6>` per peer, beside and
/// apart from the IPv4 routes, and containers reaching each other over IPv6 through them.
@Suite(.ownThread, .enabled(if: Bed.missing == nil, "\(Bed.missing ?? "")"), .serialized, .timeLimit(.minutes(2)))
struct HostGatewayIPv6Tests {
    @Test func threeHostsReachEachOthersContainersOverIPv6() throws {
        try Bed.with { bed in
            let far = Bed.ipv6Peer(
                IPv6Prefix("fc00:0:0:5::/64")!,
                publicIPv6: IPv6Address("2001:db9::5")!,
                backend: .hostGateway
            )
            // A lease without PublicIPv6 has nothing to route its IPv6 subnet via.
            let silent = Bed.ipv6Peer(IPv6Prefix("fc00:0:0:6::/64")!, publicIPv6: nil, backend: .hostGateway)
            var gateways: [Int: HostRoutesOf<IPv6Peer>] = [:]
            for n in Bed.hostNumbers {
                // The IPv4 routes first: the IPv6 instance must neither see nor touch them.
                try bed.hostGateway(n).reconcile(Bed.hostNumbers.filter { $0 != n }.map(Bed.route))
                let gateway = try bed.hostGatewayIPv6(n)
                gateways[n] = gateway
                let result = try gateway.reconcile(others6(n) + [far, silent])
                #expect(Set(result.added.map(\.destination)) == Set(others6(n).map(\.subnet)))
                #expect(result.removed.isEmpty && result.kept == 0)
                #expect(result.refused.map(\.reason) == [.offSegment, .noPublicAddress])
                #expect(
                    gateway.log.all.contains {
                        $0.hasPrefix(
                            "host-gw: refusing peer fc00:0:0:5::/64 at 2001:db9::5: 2001:db9::5 is not on our L2 segment 2001:db8::/64"
                        )
                    },
                    "\(gateway.log.all)"
                )
            }
            for n in Bed.hostNumbers {
                let weft = try bed.routes(n, family: "-6").filter { $0.contains("proto 87") }
                #expect(Set(weft) == Set(Bed.hostNumbers.filter { $0 != n }.map(weftLine6)), "host \(n): \(weft)")
                #expect(try bed.routes(n).filter { $0.contains("proto 87") }.count == 2, "the IPv4 routes stay")
            }
            for from in Bed.hostNumbers {
                for to in Bed.hostNumbers where to != from {
                    #expect(
                        try bed.ping(from: from, to: to, ipv6: true),
                        "container \(from) → container \(to) over IPv6"
                    )
                }
            }

            // A resync puts back a route deleted by hand; a peer gone loses its route.
            try bed.ip(1, "-6", "route", "del", "fc00:0:0:2::/64")
            let resync = try gateways[1]!.resync()
            #expect(resync.added.map(\.destination) == [Bed.ipv6Subnet(2)] && resync.kept == 1)
            let gone = try gateways[1]!.reconcile([Bed.ipv6Route(3)])
            #expect(gone.removed.map(\.destination) == [Bed.ipv6Subnet(2)])
            let removed = try gateways[1]!.removeAll()
            #expect(removed.map(\.destination) == [Bed.ipv6Subnet(3)])
            #expect(try bed.routes(1, family: "-6").filter { $0.contains("proto 87") }.isEmpty)
            #expect(try bed.routes(1).filter { $0.contains("proto 87") }.count == 2, "the IPv4 routes are not IPv6's")
        }
    }

    /// A peer whose PublicIPv6 moved is rewritten in place, and a foreign route for a peer's subnet
    /// makes that peer refused rather than replaced.
    @Test func movedPeersAreReplacedAndForeignRoutesRefused() throws {
        try Bed.with { bed in
            try bed.ip(1, "-6", "route", "add", "fc00:0:0:2::/64", "via", "2001:db8::7", "dev", "ul0", "proto", "87")
            try bed.ip(
                1,
                "-6",
                "route",
                "add",
                "fc00:0:0:3::/64",
                "via",
                "2001:db8::3",
                "dev",
                "ul0",
                "proto",
                "static"
            )
            let gateway = try bed.hostGatewayIPv6(1)
            let result = try gateway.reconcile(others6(1))
            #expect(result.replaced.map(\.destination) == [Bed.ipv6Subnet(2)])
            #expect(result.refused.map(\.reason) == [.foreignRoute])
            let routes = try bed.routes(1, family: "-6")
            #expect(routes.contains(weftLine6(2)), "\(routes)")
            #expect(
                routes.contains { $0.hasPrefix("fc00:0:0:3::/64 via 2001:db8::3 dev ul0 proto static") },
                "\(routes)"
            )
        }
    }

    /// --ip-blackhole-route for the IPv6 subnet: the bridge's connected route (metric 256) wins while
    /// it exists; the IPv6 reconcile never touches the IPv4 blackhole, nor the other way round.
    @Test func theIPv6BlackholeIsKeptApartFromTheIPv4One() throws {
        try Bed.with { bed in
            let subnet = Bed.ipv6Subnet(1)
            _ = try bed.enter(bed.host(1)) { try BlackholeRoute.reconcile(wanted: Bed.subnet(1)) }
            let first = try bed.enter(bed.host(1)) { try BlackholeRoute.reconcile(wanted: subnet) }
            #expect(first == BlackholeRoute.Change(added: subnet, deleted: []))
            let routes = try bed.routes(1, family: "-6")
            #expect(
                routes.contains { $0.hasPrefix("blackhole fc00:0:0:1::/64 dev lo proto 87 metric 4294967295") },
                "\(routes)"
            )
            let (reached, _) = try Bed.run([
                "netns", "exec", bed.host(1), "ping", "-n", "-c", "1", "-W", "2", "fc00:0:0:1::2",
            ])
            #expect(reached == 0, "the container behind the bridge")
            let again = try bed.enter(bed.host(1)) { try BlackholeRoute.reconcile(wanted: subnet) }
            #expect(again.isEmpty)

            try bed.ip(1, "-6", "addr", "del", "fc00:0:0:1::1/64", "dev", "ctr0")
            let (status, _) = try Bed.run(["-n", bed.host(1), "-6", "route", "get", "fc00:0:0:1::2"])
            #expect(status != 0, "a blackholed destination")

            let removed = try bed.enter(bed.host(1)) { try BlackholeRoute.reconcile(wanted: nil, IPv6Prefix.self) }
            #expect(removed == BlackholeRoute.Change(added: nil, deleted: [subnet]))
            #expect(try bed.routes(1).contains("blackhole 10.244.1.0/24 proto 87 metric 4294967295"), "IPv4's stays")
        }
    }
}

/// vxlan DirectRouting's split for IPv6 peers, by the kernel's route to each PublicIPv6.
@Suite(
    .ownThread,
    .enabled(if: TestNamespace.missing == nil, "\(TestNamespace.missing ?? "")"),
    .timeLimit(.minutes(1))
)
struct IPv6DirectRoutesTests {
    static func peer(_ n: Int, _ publicIPv6: String) -> IPv6Peer {
        Bed.ipv6Peer(IPv6Prefix("fc00:0:0:\(n)::/64")!, publicIPv6: IPv6Address(publicIPv6)!, backend: .vxlan)
    }

    /// `ip -n <namespace> <arguments>`, thrown when it fails.
    static func ip(_ arguments: [String], in namespace: TestNamespace) throws {
        let (status, output) = try TestNamespace.run(["-n", namespace.name] + arguments)
        guard status == 0 else { throw TestFailure("ip \(arguments): \(output)") }
    }

    /// The underlay d0 (2001:db8::1/64, its peer end d1) and the overlay device ov0, both up.
    static func makeUnderlayAndOverlay(in namespace: TestNamespace) throws {
        for arguments in [
            ["link", "add", "d0", "type", "veth", "peer", "name", "d1"],
            ["-6", "addr", "add", "2001:db8::1/64", "dev", "d0", "nodad"],
            ["link", "set", "d1", "up"], ["link", "set", "d0", "up"],
            ["link", "add", "ov0", "type", "veth", "peer", "name", "ov1"],
            ["link", "set", "ov1", "up"], ["link", "set", "ov0", "up"],
        ] {
            try ip(arguments, in: namespace)
        }
    }

    @Test func directPeersGetRoutesViaTheirPublicIPv6AndRoutedOnesGoThroughVXLAN() throws {
        try TestNamespace.with { namespace in
            try Self.makeUnderlayAndOverlay(in: namespace)
            for arguments in [
                ["-6", "route", "add", "2001:db8:1::/64", "via", "2001:db8::fe", "dev", "d0"],
                ["-6", "route", "add", "fc00:0:0:9::/64", "dev", "ov0", "proto", "87"],
            ] {
                try Self.ip(arguments, in: namespace)
            }
            try namespace.enter {
                let lines = Mutex<[String]>([])
                var direct = try IPv6DirectRoutes(
                    enabled: true,
                    interfaceIndex: try RouteNetlink.interfaceIndex("d0"),
                    address: IPv6Address("2001:db8::1")!,
                    network: IPv6Prefix("fc00::/48")!,
                    overlayIndex: try RouteNetlink.interfaceIndex("ov0"),
                    log: { line in lines.withLock { $0.append(line) } }
                )
                let near = Self.peer(2, "2001:db8::2")
                let far = Self.peer(3, "2001:db8:1::3")
                let split = direct.split([near, far])
                #expect(split.direct == [near] && split.tunnelled == [far])
                #expect(
                    lines.withLock { $0 }.contains(
                        "vxlan: subnet fc00:0:0:3::/64 PublicIP 2001:db8:1::3 goes through VXLAN: reached via the router 2001:db8::fe"
                    )
                )
                try direct.apply(split.direct)
                let (_, shown) = try namespace.ip("-6", "route", "show", "root", "fc00::/48")
                let routes = shown.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.sorted()
                #expect(
                    routes == [
                        "fc00:0:0:2::/64 via 2001:db8::2 dev d0 proto 87 metric 1024 pref medium",
                        "fc00:0:0:9::/64 dev ov0 proto 87 metric 1024 pref medium",
                    ],
                    "the overlay's own route stays: \(routes)"
                )
                try direct.apply(direct.split([]).direct)
                let (_, after) = try namespace.ip("-6", "route", "show", "root", "fc00::/48")
                #expect(!after.contains("2001:db8::2") && after.contains("dev ov0"), "\(after)")
            }
        }
    }

    /// A peer going back through VXLAN loses its direct route before the device takes its subnet:
    /// IPv6 refuses the device's onlink route while one for the same subnet leaves through the
    /// underlay. `withdraw` removes and adds nothing; with DirectRouting off it removes what a
    /// previous run (or host-gw) left.
    @Test func withdrawRemovesTheRoutesOfPeersGoingBackThroughVXLANAndAddsNone() throws {
        try TestNamespace.with { namespace in
            try Self.makeUnderlayAndOverlay(in: namespace)
            try namespace.enter {
                func make(enabled: Bool) throws -> IPv6DirectRoutes {
                    try IPv6DirectRoutes(
                        enabled: enabled,
                        interfaceIndex: try RouteNetlink.interfaceIndex("d0"),
                        address: IPv6Address("2001:db8::1")!,
                        network: IPv6Prefix("fc00::/48")!,
                        overlayIndex: try RouteNetlink.interfaceIndex("ov0")
                    )
                }
                func routes() throws -> String { try namespace.ip("-6", "route", "show", "root", "fc00::/48").1 }
                func ip(_ arguments: [String]) throws { try Self.ip(arguments, in: namespace) }
                var direct = try make(enabled: true)
                let near = Self.peer(2, "2001:db8::2")
                let other = Self.peer(4, "2001:db8::4")
                try direct.apply(direct.split([near, other]).direct)
                #expect(try routes().contains("fc00:0:0:2::/64 via 2001:db8::2"))
                // 2001:db8::2 is now reached through a router: near goes back through VXLAN.
                try ip(["-6", "route", "add", "2001:db8::2/128", "via", "2001:db8::fe", "dev", "d0"])
                let moved = direct.split([near, other])
                #expect(moved.tunnelled == [near] && moved.direct == [other])
                try direct.withdraw(leaving: moved)
                let withdrawn = try routes()
                #expect(!withdrawn.contains("fc00:0:0:2::/64"), "\(withdrawn)")
                #expect(
                    withdrawn.contains("fc00:0:0:4::/64 via 2001:db8::4"),
                    "the peer staying direct keeps its route"
                )
                // The device's onlink route for the subnet is now accepted.
                try ip(["-6", "route", "replace", "fc00:0:0:2::/64", "via", "fc00:0:0:2::", "dev", "ov0", "onlink"])
                #expect(try routes().contains("fc00:0:0:2::/64 via fc00:0:0:2:: dev ov0"))

                // DirectRouting off: a previous run's direct route goes before the device's reconcile.
                var off = try make(enabled: false)
                try off.withdraw(leaving: off.split([near, other]))
                let cleaned = try routes()
                #expect(!cleaned.contains("via 2001:db8::4"), "\(cleaned)")
            }
        }
    }
}
