import Addressing
import CShims
import Glibc
import Testing

@testable import Netlink

// Byte vectors written out by hand from linux/netlink.h and linux/rtnetlink.h (struct nlmsghdr,
// struct rtmsg, struct rtattr, struct nlmsgerr) on a little-endian host: native-order integers,
// network-order addresses. They do not go through the encoder's own helpers.
private let subnet = IPv4Prefix(IPv4Address(10, 244, 2, 0), length: 24)
private let gateway = IPv4Address(198, 18, 0, 2)

@Suite struct RouteMessageCodecTests {
    @Test func hostIsLittleEndian() {
        #expect(
            UInt16(1).littleEndian == 1 && UInt16(1).bigEndian != 1,
            "the vectors below assume x86-64/arm64 byte order"
        )
    }

    @Test func addRouteEncodesAsIPRouteWould() {
        let route = KernelRoute(destination: subnet, gateway: gateway, interfaceIndex: 3, routeProtocol: 87)
        let bytes = RouteMessage.encode(route, type: UInt16(RTM_NEWROUTE), flags: 0x0605, sequence: 7).finished()
        #expect(
            bytes == [
                // len 52, RTM_NEWROUTE 24, REQUEST|ACK|EXCL|CREATE, seq 7, pid 0
                0x34, 0, 0, 0, 0x18, 0, 0x05, 0x06, 7, 0, 0, 0, 0, 0, 0, 0,
                2, 24, 0, 0, 254, 87, 0, 1, 0, 0, 0, 0,  // AF_INET, /24, main table, proto 87, scope universe, unicast
                8, 0, 1, 0, 10, 244, 2, 0,  // RTA_DST
                8, 0, 5, 0, 198, 18, 0, 2,  // RTA_GATEWAY
                8, 0, 4, 0, 3, 0, 0, 0,  // RTA_OIF
            ]
        )
    }

    @Test func deleteAsksForAnyScopeAndKeepsTheProtocol() {
        let route = KernelRoute(
            destination: subnet,
            gateway: gateway,
            interfaceIndex: 3,
            routeProtocol: 87,
            priority: 100
        )
        var selector = route
        selector.scope = 255
        let bytes = RouteMessage.encode(selector, type: UInt16(RTM_DELROUTE), flags: 0x0005, sequence: 9).finished()
        #expect(
            bytes == [
                0x3c, 0, 0, 0, 0x19, 0, 0x05, 0, 9, 0, 0, 0, 0, 0, 0, 0,  // len 60, RTM_DELROUTE 25, REQUEST|ACK
                2, 24, 0, 0, 254, 87, 255, 1, 0, 0, 0, 0,  // scope RT_SCOPE_NOWHERE
                8, 0, 1, 0, 10, 244, 2, 0,
                8, 0, 5, 0, 198, 18, 0, 2,
                8, 0, 4, 0, 3, 0, 0, 0,
                8, 0, 6, 0, 100, 0, 0, 0,  // RTA_PRIORITY 100
            ]
        )
    }

    @Test func dumpRequestIsAnEmptyInetRtmsg() {
        let bytes = RouteMessage.dumpRequest(family: UInt8(AF_INET), sequence: 0x0102_0304).finished()
        #expect(
            bytes == [
                // RTM_GETROUTE 26, REQUEST|ROOT|MATCH (NLM_F_DUMP)
                28, 0, 0, 0, 0x1a, 0, 0x01, 0x03, 4, 3, 2, 1, 0, 0, 0, 0,
                2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ]
        )
    }

    @Test func lookupRequestIsIPRouteGetsMessage() {
        let bytes = RouteMessage.lookupRequest(IPv4Address(198, 18, 1, 3), sequence: 4).finished()
        #expect(
            bytes == [
                36, 0, 0, 0, 0x1a, 0, 0x05, 0, 4, 0, 0, 0, 0, 0, 0, 0,  // len 36, RTM_GETROUTE 26, REQUEST|ACK
                2, 32, 0, 0, 0, 0, 0, 0, 0x00, 0x10, 0, 0,  // AF_INET, /32, rtm_flags RTM_F_LOOKUP_TABLE
                8, 0, 1, 0, 198, 18, 1, 3,  // RTA_DST
            ]
        )
    }

    /// A dump datagram as the kernel sends it for `ip route add 10.244.2.0/24 via 198.18.0.2 dev
    /// <3> proto 87` plus a local-table route and a connected route with RTA_PREFSRC, then NLMSG_DONE.
    private static let dumpDatagram: [UInt8] = [
        // RTM_NEWROUTE, NLM_F_MULTI, seq 5, pid 1234: RTA_TABLE, RTA_DST, RTA_GATEWAY, RTA_OIF
        0x3c, 0, 0, 0, 0x18, 0, 0x02, 0, 5, 0, 0, 0, 0xd2, 0x04, 0, 0,
        2, 24, 0, 0, 254, 87, 0, 1, 0, 0, 0, 0,
        8, 0, 15, 0, 254, 0, 0, 0,
        8, 0, 1, 0, 10, 244, 2, 0,
        8, 0, 5, 0, 198, 18, 0, 2,
        8, 0, 4, 0, 3, 0, 0, 0,
        // local table (255) route: RTA_TABLE 255, RTA_DST 198.18.0.1/32, RTA_OIF 3, type RTN_LOCAL, proto kernel, scope host
        0x34, 0, 0, 0, 0x18, 0, 0x02, 0, 5, 0, 0, 0, 0xd2, 0x04, 0, 0,
        2, 32, 0, 0, 255, 2, 254, 2, 0, 0, 0, 0,
        8, 0, 15, 0, 255, 0, 0, 0,
        8, 0, 1, 0, 198, 18, 0, 1,
        8, 0, 4, 0, 3, 0, 0, 0,
        // connected 198.18.0.0/24 dev 3 proto kernel scope link src 198.18.0.1, metric 5, and a
        // 6-byte unknown attribute (padded to 8) the decoder must step over
        0x4c, 0, 0, 0, 0x18, 0, 0x02, 0, 5, 0, 0, 0, 0xd2, 0x04, 0, 0,
        2, 24, 0, 0, 254, 2, 253, 1, 0, 0, 0, 0,
        8, 0, 15, 0, 254, 0, 0, 0,
        6, 0, 0x63, 0, 0xaa, 0xbb, 0, 0,
        8, 0, 1, 0, 198, 18, 0, 0,
        8, 0, 7, 0, 198, 18, 0, 1,
        8, 0, 6, 0, 5, 0, 0, 0,
        8, 0, 4, 0, 3, 0, 0, 0,
        // NLMSG_DONE, error 0
        20, 0, 0, 0, 3, 0, 0x02, 0, 5, 0, 0, 0, 0xd2, 0x04, 0, 0, 0, 0, 0, 0,
    ]

    @Test func dumpDatagramSplitsIntoItsMessages() throws {
        let replies = try NetlinkReply.split(Self.dumpDatagram[...], "test", "dump")
        #expect(replies.map(\.type) == [24, 24, 24, 3])
        #expect(replies.allSatisfy { $0.sequence == 5 && $0.flags & weft_nlm_f_multi != 0 })
        #expect(replies.map(\.payload.count) == [44, 36, 60, 4])
    }

    @Test func routesDecodeWithTheirTableProtocolAndMetric() throws {
        let replies = try NetlinkReply.split(Self.dumpDatagram[...], "test", "dump")
        let routes: [KernelRoute] = try replies.dropLast().map { try #require(try RouteMessage.decode($0.payload)) }
        #expect(routes[0] == KernelRoute(destination: subnet, gateway: gateway, interfaceIndex: 3, routeProtocol: 87))
        #expect(routes[0].description == "10.244.2.0/24 via 198.18.0.2 dev 3 proto 87")
        #expect(
            routes[1]
                == KernelRoute(
                    destination: IPv4Prefix(IPv4Address(198, 18, 0, 1), length: 32),
                    gateway: nil,
                    interfaceIndex: 3,
                    routeProtocol: 2,
                    table: 255,
                    scope: 254,
                    type: 2
                )
        )
        #expect(
            routes[2]
                == KernelRoute(
                    destination: IPv4Prefix(IPv4Address(198, 18, 0, 0), length: 24),
                    gateway: nil,
                    interfaceIndex: 3,
                    routeProtocol: 2,
                    scope: 253,
                    priority: 5
                )
        )
        #expect(routes[2].description == "198.18.0.0/24 dev 3 proto kernel metric 5")
    }

    @Test func otherFamiliesAreSkipped() throws {
        var payload: [UInt8] = [10, 64, 0, 0, 254, 2, 0, 1, 0, 0, 0, 0]  // AF_INET6
        payload += [8, 0, 4, 0, 3, 0, 0, 0]
        #expect(try RouteMessage.decode(payload) as KernelRoute? == nil)
    }

    @Test func errorReplyCarriesTheErrnoAndTheKernelText() throws {
        let text = Array("Nexthop has invalid gateway".utf8) + [0]
        // NLMSG_ERROR, ACK_TLVS|CAPPED
        var datagram: [UInt8] = [0, 0, 0, 0, 2, 0, 0x00, 0x03, 11, 0, 0, 0, 0xd2, 0x04, 0, 0]
        datagram += [0x9b, 0xff, 0xff, 0xff]  // -101 ENETUNREACH
        datagram += [0x3c, 0, 0, 0, 0x18, 0, 0x05, 0x06, 11, 0, 0, 0, 0, 0, 0, 0]  // the request's header, capped
        datagram += [UInt8(4 + text.count), 0, 1, 0] + text  // NLMSGERR_ATTR_MSG
        while datagram.count % 4 != 0 { datagram.append(0) }
        datagram[0] = UInt8(datagram.count)
        let reply = try #require(try NetlinkReply.split(datagram[...], "test", "error").first)
        #expect(try reply.errorCode("test", "error") == -101)
        #expect(reply.extendedAckMessage() == "Nexthop has invalid gateway")
    }

    @Test func plainAckHasNoText() throws {
        let datagram: [UInt8] = [
            36, 0, 0, 0, 2, 0, 0x00, 0x01, 11, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0,
            0x3c, 0, 0, 0, 0x18, 0, 0x05, 0x06, 11, 0, 0, 0, 0, 0, 0, 0,
        ]
        let reply = try #require(try NetlinkReply.split(datagram[...], "test", "ack").first)
        #expect(try reply.errorCode("test", "ack") == 0)
        #expect(reply.extendedAckMessage() == nil)
    }

    @Test(arguments: [
        ([12, 0, 0, 0, 24, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0] as [UInt8], "nlmsg_len 12"),  // shorter than a header
        // runs past the datagram
        ([64, 0, 0, 0, 24, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0] as [UInt8], "nlmsg_len 64"),
    ])
    func malformedHeadersThrowEBADMSG(datagram: [UInt8], detail: String) {
        #expect {
            _ = try NetlinkReply.split(datagram[...], "RTM_GETROUTE dump", "main table")
        } throws: { error in
            guard let error = error as? NetlinkError else { return false }
            return error.code == EBADMSG && error.subject.contains(detail)
        }
    }

    @Test func malformedRouteMessagesThrowEBADMSG() {
        let short: [UInt8] = [2, 24, 0, 0, 254]
        let wideDestination: [UInt8] = [2, 33, 0, 0, 254, 87, 0, 1, 0, 0, 0, 0]
        let longAttribute: [UInt8] = [2, 24, 0, 0, 254, 87, 0, 1, 0, 0, 0, 0, 12, 0, 1, 0, 10, 244, 2, 0]
        let tinyAttribute: [UInt8] = [2, 24, 0, 0, 254, 87, 0, 1, 0, 0, 0, 0, 2, 0, 1, 0]
        for (payload, detail) in [
            (short, "rtmsg of 5 bytes"), (wideDestination, "rtm_dst_len 33"),
            (longAttribute, "rtattr length 12"), (tinyAttribute, "rtattr length 2"),
        ] {
            do {
                _ = try RouteMessage.decode(payload) as KernelRoute?
                Issue.record("decoded a malformed rtmsg: \(detail)")
            } catch {
                #expect(error.code == EBADMSG && error.subject.contains(detail), "\(error)")
            }
        }
        let errorTooShort = NetlinkReply(type: 2, flags: 0, sequence: 1, payload: [0, 0])
        #expect(throws: NetlinkError.self) { _ = try errorTooShort.errorCode("op", "subject") }
    }
}
