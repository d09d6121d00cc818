import Addressing
import Foundation
import HostGateway
import Netlink
import Routes
import Synchronization
import TestThreads
import Testing

/// DirectRoutes against a kernel: the lookups it makes, the routes it keeps, and the vxlan
/// device's routes it leaves alone. One namespace: d0 198.18.0.1/24 (peer d1 up), 198.18.1.0/24
/// via the router 198.18.0.254, and veth `ov0` standing in for flannel.1.
@Suite(
    .ownThread,
    .enabled(if: TestNamespace.missing == nil, "\(TestNamespace.missing ?? "")"),
    .timeLimit(.minutes(1))
)
struct DirectRoutesTests {
    static let network = IPv4Prefix(IPv4Address(10, 244, 0, 0), length: 16)

    static func peer(_ third: UInt8, _ publicIP: IPv4Address) -> Route {
        Route(
            subnet: IPv4Prefix(IPv4Address(10, 244, third, 0), length: 24),
            nextHop: NextHop(
                publicIP: publicIP,
                port: 8472,
                vtepMAC: MACAddress(0x0e_00_00_00_00_00 | UInt64(third)),
                backend: .vxlan
            )
        )
    }

    private func withBed(
        _ body: @escaping @Sendable (TestNamespace, _ underlay: Int32, _ overlay: Int32) throws -> Void
    ) throws {
        try TestNamespace.with { namespace in
            for arguments in [
                ["link", "add", "d0", "type", "veth", "peer", "name", "d1"],
                ["addr", "add", "198.18.0.1/24", "dev", "d0"],
                ["link", "set", "d1", "up"], ["link", "set", "d0", "up"],
                ["link", "add", "ov0", "type", "veth", "peer", "name", "ov1"],
                ["link", "set", "ov1", "up"], ["link", "set", "ov0", "up"],
                ["route", "add", "198.18.1.0/24", "via", "198.18.0.254", "dev", "d0"],
            ] {
                let (status, output) = try TestNamespace.run(["-n", namespace.name] + arguments)
                guard status == 0 else { throw TestFailure("ip \(arguments): \(output)") }
            }
            try namespace.enter {
                try body(namespace, try RouteNetlink.interfaceIndex("d0"), try RouteNetlink.interfaceIndex("ov0"))
            }
        }
    }

    private static func routes(_ namespace: TestNamespace) throws -> [String] {
        let (_, shown) = try namespace.ip("route", "show", "root", "10.244.0.0/16")
        return shown.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.sorted()
    }

    @Test func directPeersGetRoutesTheOthersNoneAndTheOverlaysRoutesStay() throws {
        try withBed { namespace, underlay, overlay in
            _ = try namespace.ip("route", "add", "10.244.9.0/24", "dev", "ov0", "proto", "87")
            let lines = Mutex<[String]>([])
            var direct = try DirectRoutes(
                enabled: true,
                interfaceIndex: underlay,
                address: IPv4Address(198, 18, 0, 1),
                network: Self.network,
                overlayIndex: overlay,
                log: { line in lines.withLock { $0.append(line) } }
            )
            let near = Self.peer(2, IPv4Address(198, 18, 0, 2))
            let far = Self.peer(3, IPv4Address(198, 18, 1, 3))
            let split = direct.split([near, far])
            #expect(split.direct == [near] && split.tunnelled == [far])
            try direct.apply(split.direct)
            #expect(
                try Self.routes(namespace) == [
                    "10.244.2.0/24 via 198.18.0.2 dev d0 proto 87", "10.244.9.0/24 dev ov0 proto 87 scope link",
                ]
            )
            let subnets = direct.directSubnets
            #expect(subnets == [near.subnet])
            #expect(
                lines.withLock { $0 }.contains(
                    "vxlan: subnet 10.244.3.0/24 PublicIP 198.18.1.3 goes through VXLAN: reached via the router 198.18.0.254"
                )
            )

            // The router route goes: the far peer is directly connected now, found by the resplit alone.
            _ = try namespace.ip("route", "del", "198.18.1.0/24")
            _ = try namespace.ip("addr", "add", "198.18.1.1/24", "dev", "d0")
            let resplit = direct.resplit()
            let again = try #require(resplit)
            #expect(Set(again.direct) == [near, far])
            try direct.apply(again.direct)
            #expect(try Self.routes(namespace).contains("10.244.3.0/24 via 198.18.1.3 dev d0 proto 87"))

            // Both leases gone: their routes go, the overlay's stays.
            let none = direct.split([])
            try direct.apply(none.direct)
            #expect(try Self.routes(namespace) == ["10.244.9.0/24 dev ov0 proto 87 scope link"])
        }
    }

    @Test func withDirectRoutingOffAPreviousRunsDirectRoutesGoOnceAndNothingElse() throws {
        try withBed { namespace, underlay, overlay in
            _ = try namespace.ip("route", "add", "10.244.4.0/24", "via", "198.18.0.4", "dev", "d0", "proto", "87")
            _ = try namespace.ip("route", "add", "10.244.5.0/24", "via", "198.18.0.5", "dev", "d0", "proto", "static")
            _ = try namespace.ip("route", "add", "10.244.9.0/24", "dev", "ov0", "proto", "87")
            var direct = try DirectRoutes(
                enabled: false,
                interfaceIndex: underlay,
                address: IPv4Address(198, 18, 0, 1),
                network: Self.network,
                overlayIndex: overlay
            )
            let peer = Self.peer(2, IPv4Address(198, 18, 0, 2))
            let split = direct.split([peer])
            let subnets = direct.directSubnets
            #expect(split.direct.isEmpty && split.tunnelled == [peer] && subnets == nil)
            let removed = try direct.apply(split.direct).removed
            #expect(removed.map(\.destination) == [IPv4Prefix(IPv4Address(10, 244, 4, 0), length: 24)])
            #expect(
                try Self.routes(namespace) == [
                    "10.244.5.0/24 via 198.18.0.5 dev d0 proto static", "10.244.9.0/24 dev ov0 proto 87 scope link",
                ]
            )

            // Later applies do not read the table again: a route added now stays.
            _ = try namespace.ip("route", "add", "10.244.6.0/24", "via", "198.18.0.6", "dev", "d0", "proto", "87")
            let later = try direct.apply([])
            #expect(later.removed.isEmpty)
            #expect(try Self.routes(namespace).contains("10.244.6.0/24 via 198.18.0.6 dev d0 proto 87"))
        }
    }
}
