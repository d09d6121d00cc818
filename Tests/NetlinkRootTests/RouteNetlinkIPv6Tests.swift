import Addressing
import CShims
import Foundation
import Glibc
import TestThreads
import Testing

@testable import Netlink

private let subnet = IPv6Prefix("fc00:0:0:2::/64")!
private let gateway = IPv6Address("2001:db8::2")!

/// IPv6 routes and addresses against the kernel, read back with `ip -6`.
@Suite(
    .ownThread,
    .enabled(if: TestNamespace.missing == nil, "\(TestNamespace.missing ?? "")"),
    .timeLimit(.minutes(1))
)
struct RouteNetlinkIPv6KernelTests {
    /// A namespace with veth d0 (2001:db8::1/64, no duplicate address detection) whose peer d1 is up.
    private func withUnderlay(_ body: @escaping @Sendable (TestNamespace, Int32) throws -> Void) throws {
        try withVethUnderlay(["-6", "addr", "add", "2001:db8::1/64", "dev", "d0", "nodad"], body)
    }

    private func shown(_ namespace: TestNamespace, _ arguments: String...) throws -> String {
        let (status, output) = try TestNamespace.run(["-n", namespace.name, "-6"] + arguments)
        guard status == 0 else { throw TestFailure("ip -6 \(arguments): \(output)") }
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func addReplaceListAndDelete() throws {
        try withUnderlay { namespace, index in
            var netlink = try RouteNetlink()
            try netlink.addRoute(
                KernelIPv6Route(destination: subnet, gateway: gateway, interfaceIndex: index, routeProtocol: 87)
            )
            #expect(
                try shown(namespace, "route", "show", "\(subnet)")
                    == "fc00:0:0:2::/64 via 2001:db8::2 dev d0 proto 87 metric 1024 pref medium"
            )
            #expect(throws: NetlinkError.self) {
                try netlink.addRoute(
                    KernelIPv6Route(destination: subnet, gateway: gateway, interfaceIndex: index, routeProtocol: 87)
                )
            }
            let moved = IPv6Address("2001:db8::3")!
            try netlink.replaceRoute(
                KernelIPv6Route(destination: subnet, gateway: moved, interfaceIndex: index, routeProtocol: 87)
            )
            #expect(
                try shown(namespace, "route", "show", "\(subnet)").hasPrefix("fc00:0:0:2::/64 via 2001:db8::3 dev d0")
            )

            _ = try shown(
                namespace,
                "route",
                "add",
                "fc00:0:0:7::/64",
                "via",
                "2001:db8::7",
                "dev",
                "d0",
                "proto",
                "static"
            )
            let routes = try netlink.mainTableRoutes(IPv6Address.self)
            let ours = KernelIPv6Route(destination: subnet, gateway: moved, interfaceIndex: index, routeProtocol: 87)
            let foreign = KernelIPv6Route(
                destination: IPv6Prefix("fc00:0:0:7::/64")!,
                gateway: IPv6Address("2001:db8::7")!,
                interfaceIndex: index,
                routeProtocol: UInt8(RTPROT_STATIC)
            )
            #expect(routes.contains(ours) && routes.contains(foreign), "\(routes)")
            #expect(
                routes.contains { $0.destination == IPv6Prefix("2001:db8::/64")! && $0.gateway == nil },
                "the connected route of d0's address: \(routes)"
            )
            #expect(try netlink.mainTableRoutes().allSatisfy { $0.interfaceIndex != index }, "no IPv4 route on d0")

            // Deleting with Weft's protocol leaves the static route alone.
            var impostor = foreign
            impostor.routeProtocol = 87
            #expect(throws: NetlinkError.self) { try netlink.deleteRoute(impostor) }
            #expect(try shown(namespace, "route", "show", "fc00:0:0:7::/64").contains("proto static"))
            try netlink.deleteRoute(ours)
            #expect(try shown(namespace, "route", "show", "\(subnet)").isEmpty)
        }
    }

    @Test func onlinkAndBlackholeRoutes() throws {
        try withUnderlay { namespace, index in
            var netlink = try RouteNetlink()
            // A gateway outside every prefix of d0: only onlink makes the kernel take it.
            let offLink = IPv6Address("2001:db8:ff::5")!
            var onlink = KernelIPv6Route(
                destination: IPv6Prefix("fc00:0:0:3::/64")!,
                gateway: offLink,
                interfaceIndex: index,
                routeProtocol: 87
            )
            #expect(throws: NetlinkError.self) { try netlink.addRoute(onlink) }
            onlink.onlink = true
            try netlink.addRoute(onlink)
            #expect(
                try shown(namespace, "route", "show", "fc00:0:0:3::/64").contains(
                    "via 2001:db8:ff::5 dev d0 proto 87 metric 1024 onlink"
                )
            )

            let blackhole = KernelIPv6Route(
                destination: IPv6Prefix("fc00::/48")!,
                gateway: nil,
                interfaceIndex: nil,
                routeProtocol: 87,
                type: UInt8(RTN_BLACKHOLE),
                priority: UInt32.max
            )
            try netlink.addRoute(blackhole)
            #expect(try shown(namespace, "route", "show", "type", "blackhole").hasPrefix("blackhole fc00::/48"))

            let routes = try netlink.mainTableRoutes(IPv6Address.self)
            #expect(routes.contains(onlink), "\(routes)")
            let found = try #require(routes.first { $0.type == UInt8(RTN_BLACKHOLE) })
            #expect(found.destination == blackhole.destination && found.priority == UInt32.max)
            #expect(found.routeProtocol == 87 && found.gateway == nil)
            try netlink.deleteRoute(found)
            #expect(try shown(namespace, "route", "show", "type", "blackhole").isEmpty)
        }
    }

    @Test func lookupAgreesWithIPRouteGet() throws {
        try withUnderlay { namespace, index in
            _ = try shown(namespace, "route", "add", "2001:db8:1::/64", "via", "2001:db8::fe", "dev", "d0")
            var netlink = try RouteNetlink()
            let direct = try netlink.lookupRoute(to: IPv6Address("2001:db8::2")!)
            #expect(direct.gateway == nil && direct.interfaceIndex == index && direct.type == UInt8(RTN_UNICAST))
            #expect(direct.destination == IPv6Prefix("2001:db8::2/128")!)
            let routed = try netlink.lookupRoute(to: IPv6Address("2001:db8:1::3")!)
            #expect(try shown(namespace, "route", "get", "2001:db8:1::3").contains("via 2001:db8::fe dev d0"))
            #expect(routed.gateway == IPv6Address("2001:db8::fe")! && routed.interfaceIndex == index)
            #expect {
                _ = try netlink.lookupRoute(to: IPv6Address("2001:db9::9")!)
            } throws: { error in
                (error as? NetlinkError).map { $0.code == ENETUNREACH && $0.subject.hasPrefix("2001:db9::9") } ?? false
            }
        }
    }

    @Test func addressesAddListAndDelete() throws {
        try withUnderlay { namespace, index in
            var netlink = try RouteNetlink()
            let address = IPv6Address("fc00:0:0:1::")!
            try netlink.addAddress(address, prefixLength: 128, index: index)
            #expect(try shown(namespace, "addr", "show", "dev", "d0").contains("inet6 fc00:0:0:1::/128 scope global"))
            let listed = try netlink.addresses(interfaceIndex: index, IPv6Address.self)
            let added = LinkIPv6Address(interfaceIndex: index, address: address, prefixLength: 128)
            #expect(listed.contains(added), "\(listed)")
            #expect(
                listed.contains(
                    LinkIPv6Address(interfaceIndex: index, address: IPv6Address("2001:db8::1")!, prefixLength: 64)
                )
            )
            #expect(try netlink.addresses(interfaceIndex: index).isEmpty, "d0 has no IPv4 address")
            try netlink.deleteAddress(added)
            #expect(try !netlink.addresses(interfaceIndex: index, IPv6Address.self).contains(added))
            #expect(try !shown(namespace, "addr", "show", "dev", "d0").contains("fc00:0:0:1::"))
        }
    }
}
