import CShims
import Glibc
import Testing

@testable import Netlink

/// Link kinds from RTM_NEWLINK payloads written out by hand (struct ifinfomsg, then rtattrs; IFLA_IFNAME
/// 3, IFLA_LINKINFO 18 nesting IFLA_INFO_KIND 1).
@Suite struct LinkKindCodecTests {
    // AF_UNSPEC, type, index 5, flags
    private let header: [UInt8] = [0, 0, 0xFF, 0xFF, 5, 0, 0, 0, 0x43, 0x10, 0, 0, 0, 0, 0, 0]

    @Test func kindIsReadFromTheNestedLinkInfo() throws {
        let payload =
            header
            + [14, 0, 3, 0] + Array("flannel.1".utf8) + [0, 0, 0]  // IFLA_IFNAME "flannel.1\0", padded to 16
            + [20, 0, 18, 0x80]  // IFLA_LINKINFO (nested flag set), 20 bytes
            + [10, 0, 1, 0] + Array("vxlan".utf8) + [0, 0, 0]  //   IFLA_INFO_KIND "vxlan\0", padded to 12
            + [4, 0, 2, 0]  //   IFLA_INFO_DATA, empty
        #expect(try RouteNetlink.linkKind(newLink: payload) == "vxlan")
    }

    @Test func aLinkWithoutLinkInfoHasNoKind() throws {
        #expect(try RouteNetlink.linkKind(newLink: header + [8, 0, 4, 0, 0xDC, 5, 0, 0]) == nil)  // IFLA_MTU 1500 only
    }

    @Test func truncatedInputIsRefused() {
        #expect(throws: NetlinkError.self) { try RouteNetlink.linkKind(newLink: Array(header.prefix(12))) }
        // IFLA_LINKINFO claims 24 bytes; 8 follow.
        #expect(throws: NetlinkError.self) {
            try RouteNetlink.linkKind(newLink: header + [24, 0, 18, 0x80, 8, 0, 1, 0])
        }
        // The nested kind claims to run past its parent.
        #expect(throws: NetlinkError.self) {
            try RouteNetlink.linkKind(newLink: header + [12, 0, 18, 0x80, 12, 0, 1, 0, 0x76, 0x65, 0, 0])
        }
    }
}
