import Addressing
import CShims
import Glibc
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
