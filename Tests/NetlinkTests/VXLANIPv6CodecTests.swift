import Addressing
import CShims
import Glibc
import Testing

@testable import Netlink

// flannel-v6.<VNI>'s messages, written out by hand from linux/if_link.h (IFLA_VXLAN_LOCAL6 = 17)
// and linux/neighbour.h on a little-endian host, as VXLANCodecTests does for flannel.<VNI>.
private let vtep = MACAddress(0x0E00_0000_0001)
private let peerMAC = MACAddress(0x0E00_0000_0002)
private let local6 = IPv6Address("2001:db8::1")!
/// 2001:db8::1 in network order.
private let local6Bytes: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1]

@Suite struct IPv6VXLANLinkCodecTests {
    static let flannelV6 = IPv6VXLANLink(
        name: "flannel-v6.1",
        vni: 1,
        local: local6,
        underlayIndex: 2,
        port: 8472,
        mac: vtep,
        mtu: 1430
    )

    /// What `ip link add flannel-v6.1 address 0e:00:00:00:00:01 mtu 1430 type vxlan id 1 local
    /// 2001:db8::1 dev <2> dstport 8472 nolearning` asks for: IFLA_VXLAN_LOCAL6 where flannel.1 has
    /// IFLA_VXLAN_LOCAL.
    static let createBytes: [UInt8] =
        [
            // len 144, RTM_NEWLINK, REQUEST|ACK|EXCL|CREATE, seq 3
            144, 0, 0, 0, 16, 0, 0x05, 0x06, 3, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            17, 0, 3, 0,
        ] + Array("flannel-v6.1".utf8) + [
            0, 0, 0, 0,  // IFLA_IFNAME, NUL, padded to 20
            10, 0, 1, 0, 0x0e, 0, 0, 0, 0, 1, 0, 0,  // IFLA_ADDRESS
            8, 0, 4, 0, 0x96, 0x05, 0, 0,  // IFLA_MTU 1430
            72, 0, 18, 0x80,  // IFLA_LINKINFO, nested
            10, 0, 1, 0,
        ] + Array("vxlan".utf8) + [
            0, 0, 0,
            56, 0, 2, 0x80,  //   IFLA_INFO_DATA, nested
            8, 0, 1, 0, 1, 0, 0, 0,  //     IFLA_VXLAN_ID 1
            20, 0, 17, 0,  //     IFLA_VXLAN_LOCAL6
        ] + local6Bytes + [
            8, 0, 3, 0, 2, 0, 0, 0,  //     IFLA_VXLAN_LINK 2
            6, 0, 15, 0, 0x21, 0x18, 0, 0,  //     IFLA_VXLAN_PORT 8472
            5, 0, 7, 0, 0, 0, 0, 0,  //     IFLA_VXLAN_LEARNING 0
        ]

    @Test func createCarriesTheIPv6LocalAddress() {
        #expect(LinkMessage.createVXLAN(Self.flannelV6, sequence: 3).finished() == Self.createBytes)
    }

    /// The kernel's reply for that device (IFLA_VXLAN_LOCAL6, no IFLA_VXLAN_LOCAL).
    static let replyPayload: [UInt8] =
        [
            0, 0, 1, 0, 9, 0, 0, 0, 0x43, 0x10, 1, 0, 0, 0, 0, 0,
            17, 0, 3, 0,
        ] + Array("flannel-v6.1".utf8) + [
            0, 0, 0, 0,
            8, 0, 4, 0, 0x96, 0x05, 0, 0,
            10, 0, 1, 0, 0x0e, 0, 0, 0, 0, 1, 0, 0,
            72, 0, 18, 0x80,
            10, 0, 1, 0,
        ] + Array("vxlan".utf8) + [
            0, 0, 0,
            56, 0, 2, 0x80,
            8, 0, 1, 0, 1, 0, 0, 0,
            8, 0, 3, 0, 2, 0, 0, 0,
            20, 0, 17, 0,
        ] + local6Bytes + [
            5, 0, 7, 0, 0, 0, 0, 0,
            6, 0, 15, 0, 0x21, 0x18, 0, 0,
        ]

    @Test func replyWithLocal6DecodesAsAnIPv6Device() throws {
        let state = try LinkMessage.decode(Self.replyPayload)
        #expect(state.name == "flannel-v6.1" && state.kind == "vxlan" && state.isUp)
        #expect(state.vxlan6 == Self.flannelV6)
        #expect(state.vxlan == nil, "an IPv6 device is not an IPv4 one")
        #expect(state.vxlan(IPv6Address.self) == Self.flannelV6)
        #expect(state.vxlan(IPv4Address.self) == nil)
        #expect(state.vxlan6?.incompatibility(with: Self.flannelV6) == nil)

        var moved = Self.flannelV6
        moved.local = IPv6Address("2001:db8::9")
        #expect(state.vxlan6?.incompatibility(with: moved) == "local address 2001:db8::1, wanted 2001:db8::9")
    }

    /// flannel.1's reply (IFLA_VXLAN_LOCAL) read for the IPv6 family gives nothing.
    @Test func anIPv4DeviceIsNoIPv6One() throws {
        let state = try LinkMessage.decode(VXLANLinkCodecTests.replyPayload)
        #expect(state.vxlan6 == nil && state.vxlan(IPv6Address.self) == nil)
        #expect(state.vxlan(IPv4Address.self) == VXLANLinkCodecTests.flannel1)
    }
}

@Suite struct IPv6NeighbourCodecTests {
    @Test func ndpEntryEncodesAsIPNeighReplaceWould() throws {
        let entry = IPv6NeighbourEntry(interfaceIndex: 5, address: IPv6Address("fc00:0:0:2::")!, mac: peerMAC)
        let bytes = NeighbourMessage.encode(entry, type: UInt16(RTM_NEWNEIGH), flags: 0x0505, sequence: 4).finished()
        #expect(
            bytes == [
                60, 0, 0, 0, 28, 0, 0x05, 0x05, 4, 0, 0, 0, 0, 0, 0, 0,
                10, 0, 0, 0, 5, 0, 0, 0, 0x80, 0, 0, 0,  // AF_INET6, index 5, NUD_PERMANENT
                20, 0, 1, 0, 0xfc, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0,  // NDA_DST
                10, 0, 2, 0, 0x0e, 0, 0, 0, 0, 2, 0, 0,  // NDA_LLADDR
            ]
        )
        let payload = Array(bytes[16...])
        #expect(try NeighbourMessage.neighbour(payload) == entry)
        #expect(try NeighbourMessage.neighbour(payload) as NeighbourEntry? == nil, "an NDP entry is no ARP entry")
    }

    @Test func fdbEntryWithAnIPv6RemoteBothWays() throws {
        let entry = IPv6FDBEntry(interfaceIndex: 5, mac: peerMAC, destination: IPv6Address("2001:db8::2")!)
        let bytes = NeighbourMessage.encode(entry, type: UInt16(RTM_NEWNEIGH), flags: 0x0505, sequence: 6).finished()
        #expect(
            bytes == [
                60, 0, 0, 0, 28, 0, 0x05, 0x05, 6, 0, 0, 0, 0, 0, 0, 0,
                7, 0, 0, 0, 5, 0, 0, 0, 0x80, 0, 2, 0,  // AF_BRIDGE, index 5, NUD_PERMANENT, NTF_SELF
                10, 0, 2, 0, 0x0e, 0, 0, 0, 0, 2, 0, 0,  // NDA_LLADDR
                20, 0, 1, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,  // NDA_DST
            ]
        )
        let payload = Array(bytes[16...])
        #expect(try NeighbourMessage.fdb(payload) == entry)
        #expect(try NeighbourMessage.fdb(payload) as FDBEntry? == nil, "an IPv6 remote is not an IPv4 entry's")

        // An entry without NDA_DST (a learned one) belongs to either family, with no destination.
        let bare = Array(payload.prefix(24))
        #expect(try NeighbourMessage.fdb(bare) == IPv6FDBEntry(interfaceIndex: 5, mac: peerMAC, destination: nil))
        #expect(try NeighbourMessage.fdb(bare) == FDBEntry(interfaceIndex: 5, mac: peerMAC, destination: nil))
    }
}
