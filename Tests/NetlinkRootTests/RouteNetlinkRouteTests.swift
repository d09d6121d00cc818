import Addressing
import CShims
import Foundation
import Glibc
import TestThreads
import Testing

@testable import Netlink

private let subnet = IPv4Prefix(IPv4Address(10, 244, 2, 0), length: 24)
private let gateway = IPv4Address(198, 18, 0, 2)

/// The codec against the kernel: what Weft adds, `ip route` reads back, and what `ip route add`
/// installs, Weft's dump reads back.
@Suite(
    .ownThread,
    .enabled(if: TestNamespace.missing == nil, "\(TestNamespace.missing ?? "")"),
    .timeLimit(.minutes(1))
)
struct RouteNetlinkKernelTests {
    /// A namespace with veth d0 (198.18.0.1/24) whose peer d1 is up, so d0 has carrier.
    private func withUnderlay(_ body: @escaping @Sendable (TestNamespace, Int32) throws -> Void) throws {
        try withVethUnderlay(["addr", "add", "198.18.0.1/24", "dev", "d0"], body)
    }

    @Test func addedRouteShowsInIPRouteWithItsProtocol() throws {
        try withUnderlay { namespace, index in
            var netlink = try RouteNetlink()
            try netlink.addRoute(
                KernelRoute(destination: subnet, gateway: gateway, interfaceIndex: index, routeProtocol: 87)
            )
            let (_, shown) = try namespace.ip("-d", "route", "show", "10.244.2.0/24")
            #expect(
                shown.trimmingCharacters(in: .whitespacesAndNewlines)
                    == "unicast 10.244.2.0/24 via 198.18.0.2 dev d0 proto 87 scope global"
            )

            #expect {
                try netlink.addRoute(
                    KernelRoute(
                        destination: subnet,
                        gateway: IPv4Address(198, 18, 0, 3),
                        interfaceIndex: index,
                        routeProtocol: 87
                    )
                )
            } throws: { error in
                (error as? NetlinkError).map {
                    $0.code == EEXIST && $0.operation == "RTM_NEWROUTE"
                        && $0.subject.hasPrefix("10.244.2.0/24 via 198.18.0.3")
                } ?? false
            }
            try netlink.replaceRoute(
                KernelRoute(
                    destination: subnet,
                    gateway: IPv4Address(198, 18, 0, 3),
                    interfaceIndex: index,
                    routeProtocol: 87
                )
            )
            let (_, replaced) = try namespace.ip("route", "show", "10.244.2.0/24")
            #expect(
                replaced.trimmingCharacters(in: .whitespacesAndNewlines)
                    == "10.244.2.0/24 via 198.18.0.3 dev d0 proto 87"
            )
        }
    }

    @Test func dumpReadsWhatIPRouteAdded() throws {
        try withUnderlay { namespace, index in
            _ = try namespace.ip("route", "add", "10.244.7.0/24", "via", "198.18.0.9", "dev", "d0", "proto", "87")
            _ = try namespace.ip(
                "route",
                "add",
                "10.244.8.0/24",
                "via",
                "198.18.0.8",
                "dev",
                "d0",
                "proto",
                "static",
                "metric",
                "20"
            )
            var netlink = try RouteNetlink()
            let routes = Set(try netlink.mainTableRoutes())
            #expect(
                routes == [
                    KernelRoute(
                        destination: IPv4Prefix(IPv4Address(10, 244, 7, 0), length: 24),
                        gateway: IPv4Address(198, 18, 0, 9),
                        interfaceIndex: index,
                        routeProtocol: 87
                    ),
                    KernelRoute(
                        destination: IPv4Prefix(IPv4Address(10, 244, 8, 0), length: 24),
                        gateway: IPv4Address(198, 18, 0, 8),
                        interfaceIndex: index,
                        routeProtocol: UInt8(RTPROT_STATIC),
                        priority: 20
                    ),
                    KernelRoute(
                        destination: IPv4Prefix(IPv4Address(198, 18, 0, 0), length: 24),
                        gateway: nil,
                        interfaceIndex: index,
                        routeProtocol: UInt8(RTPROT_KERNEL),
                        scope: UInt8(RT_SCOPE_LINK.rawValue)
                    ),
                ]
            )
        }
    }

    @Test func deleteMatchesTheProtocolSoForeignRoutesSurvive() throws {
        try withUnderlay { namespace, index in
            _ = try namespace.ip("route", "add", "10.244.9.0/24", "via", "198.18.0.9", "dev", "d0", "proto", "static")
            var netlink = try RouteNetlink()
            let foreign = KernelRoute(
                destination: IPv4Prefix(IPv4Address(10, 244, 9, 0), length: 24),
                gateway: IPv4Address(198, 18, 0, 9),
                interfaceIndex: index,
                routeProtocol: 87
            )
            #expect {
                try netlink.deleteRoute(foreign)
            } throws: { error in
                (error as? NetlinkError).map { $0.code == ESRCH && $0.operation == "RTM_DELROUTE" } ?? false
            }
            let (_, kept) = try namespace.ip("route", "show", "10.244.9.0/24")
            #expect(kept.contains("proto static"), "\(kept)")

            var own = foreign
            own.destination = IPv4Prefix(IPv4Address(10, 244, 10, 0), length: 24)
            try netlink.addRoute(
                KernelRoute(
                    destination: own.destination,
                    gateway: own.gateway!,
                    interfaceIndex: index,
                    routeProtocol: 87
                )
            )
            try netlink.deleteRoute(own)
            let (_, gone) = try namespace.ip("route", "show", "10.244.10.0/24")
            #expect(gone.isEmpty, "\(gone)")
        }
    }

    @Test func offLinkGatewayFailsWithTheKernelsReason() throws {
        try withUnderlay { _, index in
            var netlink = try RouteNetlink()
            #expect {
                try netlink.addRoute(
                    KernelRoute(
                        destination: subnet,
                        gateway: IPv4Address(198, 19, 0, 5),
                        interfaceIndex: index,
                        routeProtocol: 87
                    )
                )
            } throws: { error in
                guard let error = error as? NetlinkError else { return false }
                return error.code == ENETUNREACH && error.description.contains("10.244.2.0/24 via 198.19.0.5")
                    && error.description.contains("Nexthop has invalid gateway")
            }
        }
    }

    /// The lookup against `ip route get` for each kind of answer: directly connected, via a
    /// router, one of our own addresses, and no route at all.
    @Test func lookupAgreesWithIPRouteGet() throws {
        try withUnderlay { namespace, index in
            _ = try namespace.ip("route", "add", "198.18.1.0/24", "via", "198.18.0.254", "dev", "d0")
            var netlink = try RouteNetlink()
            for (address, gateway) in [
                (IPv4Address(198, 18, 0, 2), nil), (IPv4Address(198, 18, 1, 3), IPv4Address(198, 18, 0, 254)),
            ] {
                let (status, shown) = try namespace.ip("route", "get", "\(address)")
                try #require(status == 0, "\(shown)")
                let route = try netlink.lookupRoute(to: address)
                #expect(shown.contains(" via ") == (gateway != nil) && shown.contains(" dev d0 "), "\(shown)")
                #expect(route.gateway == gateway, "ip route get: \(shown)")
                #expect(
                    route.interfaceIndex == index && route.type == UInt8(RTN_UNICAST)
                        && route.table == UInt32(RT_TABLE_MAIN.rawValue)
                )
                #expect(route.destination == IPv4Prefix(address, length: 32))
            }

            let (_, local) = try namespace.ip("route", "get", "198.18.0.1")
            #expect(local.hasPrefix("local 198.18.0.1"), "\(local)")
            let own = try netlink.lookupRoute(to: IPv4Address(198, 18, 0, 1))
            // The table is not checked: without policy rules the kernel keeps local routes in main's trie.
            #expect(own.type == UInt8(RTN_LOCAL) && own.gateway == nil, "\(own)")

            let (unreachableStatus, _) = try namespace.ip("route", "get", "203.0.113.9")
            #expect(unreachableStatus != 0)
            #expect {
                _ = try netlink.lookupRoute(to: IPv4Address(203, 0, 113, 9))
            } throws: { error in
                (error as? NetlinkError).map {
                    $0.code == ENETUNREACH && $0.operation == "RTM_GETROUTE" && $0.subject.hasPrefix("203.0.113.9")
                } ?? false
            }
        }
    }

    /// 1,500 routes take several dump datagrams (each at most 32 KiB), all of one NLM_F_MULTI reply.
    @Test func multipartDumpReadsEveryRoute() throws {
        try withUnderlay { namespace, index in
            let batch = (0..<1500).map {
                "route add 10.245.\($0 / 250).\($0 % 250)/32 via 198.18.0.\(2 + $0 % 200) dev d0 proto 87"
            }
            let file = FileManager.default.temporaryDirectory.appendingPathComponent(
                "weft-routes-\(getpid())-\(index).batch"
            )
            try batch.joined(separator: "\n").write(to: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: file) }
            let (status, output) = try namespace.ip("-batch", file.path)
            try #require(status == 0, "\(output)")
            var netlink = try RouteNetlink()
            let routes = try netlink.mainTableRoutes().filter { $0.routeProtocol == 87 }
            #expect(routes.count == 1500)
            var expected = Set<KernelRoute>()
            for n in 0..<1500 {
                let destination = IPv4Prefix(IPv4Address(10, 245, UInt8(n / 250), UInt8(n % 250)), length: 32)
                let gateway = IPv4Address(198, 18, 0, UInt8(2 + n % 200))
                expected.insert(
                    KernelRoute(destination: destination, gateway: gateway, interfaceIndex: index, routeProtocol: 87)
                )
            }
            #expect(Set(routes) == expected)
        }
    }
}

/// A namespace with veth d0, given its address by `addressArguments` (`ip` arguments), whose peer
/// d1 is up so d0 has carrier; `body` runs inside it with d0's index.
func withVethUnderlay(
    _ addressArguments: [String],
    _ body: @escaping @Sendable (TestNamespace, Int32) throws -> Void
) throws {
    try TestNamespace.with { namespace in
        for arguments in [
            ["link", "add", "d0", "type", "veth", "peer", "name", "d1"], addressArguments,
            ["link", "set", "d1", "up"], ["link", "set", "d0", "up"],
        ] {
            let (status, output) = try TestNamespace.run(["-n", namespace.name] + arguments)
            guard status == 0 else { throw TestFailure("ip \(arguments): \(output)") }
        }
        try namespace.enter { try body(namespace, try RouteNetlink.interfaceIndex("d0")) }
    }
}
