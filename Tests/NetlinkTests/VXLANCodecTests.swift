import Addressing
import CShims
import Glibc
import Testing

@testable import Netlink

// Byte vectors written out by hand from linux/if_link.h (IFLA_*, IFLA_INFO_*, IFLA_VXLAN_*),
// linux/neighbour.h (struct ndmsg, NDA_*) and linux/if_addr.h on a little-endian host: native-order
// integers, network-order addresses and port.
private let vtep = MACAddress(0x0E00_0000_0001)
private let peerMAC = MACAddress(0x0E00_0000_0002)

@Suite struct VXLANLinkCodecTests {
    static let flannel1 = VXLANLink(
        name: "flannel.1",
        vni: 1,
        local: IPv4Address(198, 18, 0, 1),
        underlayIndex: 2,
        port: 8472,
        mac: vtep,
        mtu: 1450
    )

    /// What `ip link add flannel.1 address 0e:00:00:00:00:01 mtu 1450 type vxlan id 1 local
    /// 198.18.0.1 dev <2> dstport 8472 nolearning` asks for.
    static let createBytes: [UInt8] =
        [
            // len 128, RTM_NEWLINK, REQUEST|ACK|EXCL|CREATE, seq 3
            128, 0, 0, 0, 16, 0, 0x05, 0x06, 3, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  // ifinfomsg: nothing to match
            14, 0, 3, 0,
        ] + Array("flannel.1".utf8) + [
            0, 0, 0,  // IFLA_IFNAME, NUL, padded to 16
            10, 0, 1, 0, 0x0e, 0, 0, 0, 0, 1, 0, 0,  // IFLA_ADDRESS
            8, 0, 4, 0, 0xaa, 0x05, 0, 0,  // IFLA_MTU 1450
            60, 0, 18, 0x80,  // IFLA_LINKINFO, nested
            10, 0, 1, 0,
        ] + Array("vxlan".utf8) + [
            0, 0, 0,  //   IFLA_INFO_KIND "vxlan\0", padded to 12
            44, 0, 2, 0x80,  //   IFLA_INFO_DATA, nested
            8, 0, 1, 0, 1, 0, 0, 0,  //     IFLA_VXLAN_ID 1
            8, 0, 4, 0, 198, 18, 0, 1,  //     IFLA_VXLAN_LOCAL
            8, 0, 3, 0, 2, 0, 0, 0,  //     IFLA_VXLAN_LINK 2
            6, 0, 15, 0, 0x21, 0x18, 0, 0,  //     IFLA_VXLAN_PORT 8472, big-endian
            5, 0, 7, 0, 0, 0, 0, 0,  //     IFLA_VXLAN_LEARNING 0
        ]

    @Test func createEncodesAsIPLinkAddWould() {
        #expect(LinkMessage.createVXLAN(Self.flannel1, sequence: 3).finished() == Self.createBytes)
    }

    @Test func gbpIsAnEmptyFlagAtTheEndOfTheData() {
        var link = Self.flannel1
        link.gbp = true
        let bytes = LinkMessage.createVXLAN(link, sequence: 3).finished()
        #expect(bytes.count == 132)
        #expect(Array(bytes.suffix(4)) == [4, 0, 23, 0])  // IFLA_VXLAN_GBP, no payload
        // the message, IFLA_LINKINFO and IFLA_INFO_DATA grew by 4
        #expect(bytes[0] == 132 && bytes[68] == 64 && bytes[84] == 48)
    }

    /// An RTM_NEWLINK reply for that device as the kernel writes it: more attributes than asked
    /// for (IFLA_TXQLEN, IFLA_VXLAN_TTL, IFLA_VXLAN_UDP_CSUM, a 1-byte GBP), which are stepped over.
    static let replyPayload: [UInt8] =
        [
            0, 0, 1, 0, 9, 0, 0, 0, 0x43, 0x10, 1, 0, 0, 0, 0, 0,  // ARPHRD_ETHER, index 9, flags UP|RUNNING|...
            14, 0, 3, 0,
        ] + Array("flannel.1".utf8) + [
            0, 0, 0,
            8, 0, 13, 0, 0xe8, 0x03, 0, 0,  // IFLA_TXQLEN 1000
            8, 0, 4, 0, 0xaa, 0x05, 0, 0,
            10, 0, 1, 0, 0x0e, 0, 0, 0, 0, 1, 0, 0,
            76, 0, 18, 0x80,
            10, 0, 1, 0,
        ] + Array("vxlan".utf8) + [
            0, 0, 0,
            60, 0, 2, 0x80,
            8, 0, 1, 0, 1, 0, 0, 0,
            8, 0, 3, 0, 2, 0, 0, 0,
            8, 0, 4, 0, 198, 18, 0, 1,
            5, 0, 5, 0, 0, 0, 0, 0,  // IFLA_VXLAN_TTL 0
            5, 0, 7, 0, 0, 0, 0, 0,
            6, 0, 15, 0, 0x21, 0x18, 0, 0,
            5, 0, 18, 0, 1, 0, 0, 0,  // IFLA_VXLAN_UDP_CSUM 1
        ]

    @Test func replyDecodesIntoTheLinkAndItsVXLANAttributes() throws {
        let state = try LinkMessage.decode(Self.replyPayload)
        #expect(state.index == 9 && state.name == "flannel.1" && state.kind == "vxlan" && state.isUp)
        #expect(state.mac == vtep && state.mtu == 1450)
        #expect(state.vxlan == Self.flannel1)
        #expect(state.vxlan?.incompatibility(with: Self.flannel1) == nil)

        var gbp = Self.replyPayload
        gbp += [5, 0, 23, 0, 1, 0, 0, 0]
        gbp[60] += 8
        gbp[76] += 8
        #expect(try LinkMessage.decode(gbp).vxlan?.gbp == true)
    }

    @Test func truncatedRepliesAreRefused() {
        #expect(throws: NetlinkError.self) { try LinkMessage.decode(Array(Self.replyPayload.prefix(12))) }
        var overrun = Self.replyPayload
        overrun[76] = 200  // IFLA_INFO_DATA claims more than its parent holds
        #expect(throws: NetlinkError.self) { try LinkMessage.decode(overrun) }
    }
}

@Suite struct NeighbourCodecTests {
    @Test func neighbourReplaceEncodesAsIPNeighReplaceWould() {
        let entry = NeighbourEntry(interfaceIndex: 5, address: IPv4Address(10, 244, 2, 0), mac: peerMAC)
        let bytes = NeighbourMessage.encode(entry, type: UInt16(RTM_NEWNEIGH), flags: 0x0505, sequence: 4).finished()
        #expect(
            bytes == [
                48, 0, 0, 0, 28, 0, 0x05, 0x05, 4, 0, 0, 0, 0, 0, 0, 0,  // RTM_NEWNEIGH, REQUEST|ACK|REPLACE|CREATE
                2, 0, 0, 0, 5, 0, 0, 0, 0x80, 0, 0, 0,  // AF_INET, index 5, NUD_PERMANENT
                8, 0, 1, 0, 10, 244, 2, 0,  // NDA_DST
                10, 0, 2, 0, 0x0e, 0, 0, 0, 0, 2, 0, 0,  // NDA_LLADDR
            ]
        )
        let delete = NeighbourMessage.encode(entry, type: UInt16(RTM_DELNEIGH), flags: 0x0005, sequence: 4).finished()
        #expect(delete.count == 36 && delete[4] == 29, "a delete names the address only")
    }

    @Test func fdbReplaceEncodesAsBridgeFDBReplaceWould() {
        let entry = FDBEntry(interfaceIndex: 5, mac: peerMAC, destination: IPv4Address(198, 18, 0, 2))
        let bytes = NeighbourMessage.encode(entry, type: UInt16(RTM_NEWNEIGH), flags: 0x0505, sequence: 6).finished()
        #expect(
            bytes == [
                48, 0, 0, 0, 28, 0, 0x05, 0x05, 6, 0, 0, 0, 0, 0, 0, 0,
                7, 0, 0, 0, 5, 0, 0, 0, 0x80, 0, 2, 0,  // AF_BRIDGE, index 5, NUD_PERMANENT, NTF_SELF
                10, 0, 2, 0, 0x0e, 0, 0, 0, 0, 2, 0, 0,  // NDA_LLADDR
                8, 0, 1, 0, 198, 18, 0, 2,  // NDA_DST
            ]
        )
    }

    /// An FDB dump message as vxlan_fdb_info writes one: NDA_LLADDR, NDA_DST, NDA_PORT (0: the
    /// device's), NDA_VNI, NDA_IFINDEX... and NDA_CACHEINFO, all but two stepped over.
    @Test func fdbDumpMessagesDecode() throws {
        let payload: [UInt8] =
            [7, 0, 0, 0, 5, 0, 0, 0, 0x80, 0, 2, 1]
            + [10, 0, 2, 0, 0x0e, 0, 0, 0, 0, 2, 0, 0]
            + [8, 0, 1, 0, 198, 18, 0, 2]
            + [20, 0, 3, 0] + [UInt8](repeating: 0, count: 16)
        #expect(
            try NeighbourMessage.fdb(payload)
                == FDBEntry(interfaceIndex: 5, mac: peerMAC, destination: IPv4Address(198, 18, 0, 2))
        )
        #expect(try NeighbourMessage.neighbour(payload) as NeighbourEntry? == nil, "AF_BRIDGE is not a neighbour")
        #expect(throws: NetlinkError.self) { try NeighbourMessage.fdb(Array(payload.prefix(10))) as FDBEntry? }
    }

    @Test func aResolvingNeighbourHasNoMAC() throws {
        let payload: [UInt8] = [2, 0, 0, 0, 5, 0, 0, 0, 0x01, 0, 0, 1] + [8, 0, 1, 0, 10, 244, 2, 0]  // NUD_INCOMPLETE
        let entry: NeighbourEntry = try #require(try NeighbourMessage.neighbour(payload))
        #expect(entry.mac == nil && !entry.isPermanent && entry.address == IPv4Address(10, 244, 2, 0))
    }

    @Test func addressDumpMessagesDecode() throws {
        // ifaddrmsg AF_INET /32 index 5, IFA_ADDRESS then IFA_LOCAL, IFA_LABEL
        let payload: [UInt8] =
            [2, 32, 0x80, 0, 5, 0, 0, 0]
            + [8, 0, 1, 0, 10, 244, 1, 0] + [8, 0, 2, 0, 10, 244, 1, 0]
            + [14, 0, 3, 0] + Array("flannel.1".utf8) + [0, 0, 0]
        #expect(
            try AddressMessage.decode(payload)
                == LinkAddress(interfaceIndex: 5, address: IPv4Address(10, 244, 1, 0), prefixLength: 32)
        )
    }

    @Test func onlinkRoutesCarryTheFlagBothWays() throws {
        let route = KernelRoute(
            destination: IPv4Prefix(IPv4Address(10, 244, 2, 0), length: 24),
            gateway: IPv4Address(10, 244, 2, 0),
            interfaceIndex: 5,
            routeProtocol: 87,
            onlink: true
        )
        let bytes = RouteMessage.encode(route, type: UInt16(RTM_NEWROUTE), flags: 0x0505, sequence: 1).finished()
        #expect(Array(bytes[24..<28]) == [4, 0, 0, 0], "rtm_flags RTNH_F_ONLINK")
        #expect(try RouteMessage.decode(Array(bytes[16...])) == route)
    }
}
