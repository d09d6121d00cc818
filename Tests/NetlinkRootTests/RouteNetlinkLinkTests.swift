import CShims
import Glibc
import TestThreads
import Testing

@testable import Netlink

/// Link kinds read back from the kernel's own devices, and their deletion.
@Suite(
    .ownThread,
    .enabled(if: TestNamespace.missing == nil, "\(TestNamespace.missing ?? "")"),
    .timeLimit(.minutes(1))
)
struct RouteNetlinkLinkTests {
    @Test func kindsOfRealLinksAndDeletion() throws {
        try TestNamespace.with { namespace in
            for arguments in [
                ["link", "add", "d0", "type", "veth", "peer", "name", "d1"],
                ["addr", "add", "198.18.0.1/24", "dev", "d0"],
                [
                    "link", "add", "flannel.1", "type", "vxlan", "id", "1", "local", "198.18.0.1", "dev", "d0",
                    "dstport", "8472", "nolearning",
                ],
                ["tuntap", "add", "dev", "flannel0", "mode", "tun"],
            ] {
                let (status, output) = try TestNamespace.run(["-n", namespace.name] + arguments)
                guard status == 0 else { throw TestFailure("ip \(arguments): \(output)") }
            }
            try namespace.enter {
                var netlink = try RouteNetlink()
                #expect(try netlink.linkKind(index: RouteNetlink.interfaceIndex("flannel.1")) == "vxlan")
                #expect(try netlink.linkKind(index: RouteNetlink.interfaceIndex("d0")) == "veth")
                #expect(try netlink.linkKind(index: RouteNetlink.interfaceIndex("flannel0")) == "tun")
                #expect(try netlink.linkKind(index: RouteNetlink.interfaceIndex("lo")) == nil)

                try netlink.deleteLink(index: RouteNetlink.interfaceIndex("flannel.1"))
                #expect(throws: NetlinkError.self) { try RouteNetlink.interfaceIndex("flannel.1") }
                #expect { try netlink.deleteLink(index: 9999) } throws: { ($0 as? NetlinkError)?.code == ENODEV }
            }
        }
    }
}
