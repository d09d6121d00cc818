import Addressing
import CShims
import Foundation
import Glibc
import TestThreads
import Testing

@testable import Netlink

private let subnet = IPv6Prefix("fc00:0:0:2::/64")!
private let gateway = IPv6Address("2001:db8::2")!

@Suite struct IPv6RouteMessageCodecTests {
    /// Written out by hand from linux/rtnetlink.h: AF_INET6 (10), 16-byte addresses, and the
    /// metric 1024 the kernel would give the route anyway, sent explicitly.
    @Test func addRouteEncodesAsIPRouteWould() throws {
        let route = KernelIPv6Route(destination: subnet, gateway: gateway, interfaceIndex: 3, routeProtocol: 87)
        let bytes = RouteMessage.encode(route, type: UInt16(RTM_NEWROUTE), flags: 0x0605, sequence: 7).finished()
        #expect(
            bytes == [
                0x54, 0, 0, 0, 0x18, 0, 0x05, 0x06, 7, 0, 0, 0, 0, 0, 0, 0,  // len 84
                10, 64, 0, 0, 254, 87, 0, 1, 0, 0, 0, 0,  // AF_INET6, /64
                20, 0, 1, 0, 0xfc, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0,  // RTA_DST
                20, 0, 5, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,  // RTA_GATEWAY
                8, 0, 4, 0, 3, 0, 0, 0,  // RTA_OIF
                8, 0, 6, 0, 0, 4, 0, 0,  // RTA_PRIORITY 1024
            ]
        )
        #expect(try RouteMessage.decode(Array(bytes[16...])) == route)
        #expect(route.description == "fc00:0:0:2::/64 via 2001:db8::2 dev 3 proto 87 metric 1024")
    }

    @Test func eachFamilySkipsTheOther() throws {
        let v4 = RouteMessage.encode(
            KernelRoute(destination: IPv4Prefix("10.244.2.0/24")!, gateway: nil, interfaceIndex: 3, routeProtocol: 87),
            type: UInt16(RTM_NEWROUTE),
            flags: 0,
            sequence: 1
        ).finished()
        #expect(try RouteMessage.decode(Array(v4[16...])) as KernelIPv6Route? == nil)
        let v6 = RouteMessage.encode(
            KernelIPv6Route(destination: subnet, gateway: nil, interfaceIndex: 3, routeProtocol: 87),
            type: UInt16(RTM_NEWROUTE),
            flags: 0,
            sequence: 1
        ).finished()
        #expect(try RouteMessage.decode(Array(v6[16...])) as KernelRoute? == nil)
    }

    @Test func destinationLengthAbove128Throws() {
        #expect(throws: NetlinkError.self) {
            _ = try RouteMessage.decode([10, 129, 0, 0, 254, 87, 0, 1, 0, 0, 0, 0]) as KernelIPv6Route?
        }
    }
}

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
            try netlink.addRoute(subnet, via: gateway, interfaceIndex: index, routeProtocol: 87)
            #expect(
                try shown(namespace, "route", "show", "\(subnet)")
                    == "fc00:0:0:2::/64 via 2001:db8::2 dev d0 proto 87 metric 1024 pref medium"
            )
            #expect(throws: NetlinkError.self) {
                try netlink.addRoute(subnet, via: gateway, interfaceIndex: index, routeProtocol: 87)
            }
            let moved = IPv6Address("2001:db8::3")!
            try netlink.replaceRoute(subnet, via: moved, interfaceIndex: index, routeProtocol: 87)
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
