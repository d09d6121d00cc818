import Addressing
import Foundation
import Netlink
import TestThreads
import Testing

/// `TUNLink` against the kernel: a TUN made with `ip tuntap` in a namespace of its own, set up,
/// then read back with `ip -j` and from /proc, and set up again as a restart onto it would.
@Suite(
    .ownThread,
    .enabled(if: TestNamespace.missing == nil, "\(TestNamespace.missing ?? "")"),
    .timeLimit(.minutes(1))
)
struct TUNLinkTests {
    private static let ipv4Only = TUNLink(
        name: "flannel0",
        mtu: 1450,
        network: IPv4Prefix("10.244.0.0/16")!,
        subnet: IPv4Prefix("10.244.1.0/24")!
    )

    @Test func ipv4OnlyGetsItsAddressAndRouteAndNoIPv6() throws {
        try withTUN { namespace in
            for _ in 0..<2 {
                var warnings: [String] = []
                try Self.ipv4Only.configure { warnings.append($0) }
                #expect(warnings.isEmpty, "\(warnings)")
            }
            let link = try Self.link(namespace)
            #expect(link.mtu == 1450)
            #expect(link.flags.contains("UP"), "\(link.flags)")
            #expect(link.addresses == ["inet 10.244.1.0/32"], "\(link.addresses)")
            #expect(try Self.routes(namespace, "-4") == ["10.244.0.0/16"])
            #expect(try Self.routes(namespace, "-6").isEmpty)
            #expect(try Self.setting("ipv6/conf/flannel0/disable_ipv6") == "1")
            #expect(try Self.setting("ipv4/conf/flannel0/accept_local") == "1")
        }
    }

    /// The namespace's default turns IPv6 off, as TwoHostBed's and some hosts' do: the link turns
    /// it on for its own device, or the /128 could not go on.
    @Test func ipv6GetsItsAddressAndRouteAndStaysOn() throws {
        let dualStack = {
            var link = Self.ipv4Only
            link.ipv6 = (IPv6Prefix("fc00::/48")!, IPv6Prefix("fc00:0:0:1::/64")!)
            return link
        }()
        try withTUN(defaultDisablesIPv6: true) { namespace in
            #expect(try Self.setting("ipv6/conf/flannel0/disable_ipv6") == "1")
            for _ in 0..<2 {
                var warnings: [String] = []
                try dualStack.configure { warnings.append($0) }
                #expect(warnings.isEmpty, "\(warnings)")
            }
            let addresses = try Self.link(namespace).addresses
            #expect(addresses.contains("inet 10.244.1.0/32"), "\(addresses)")
            #expect(addresses.contains("inet6 fc00:0:0:1::/128"), "\(addresses)")
            #expect(try Self.routes(namespace, "-4") == ["10.244.0.0/16"])
            #expect(try Self.routes(namespace, "-6").contains("fc00::/48"))
            #expect(try Self.setting("ipv6/conf/flannel0/disable_ipv6") == "0")
            // As flanneld's flannel-v6.<VNI>: no router advertisements taken, no solicitations sent.
            #expect(try Self.setting("ipv6/conf/flannel0/accept_ra") == "0")
            #expect(try Self.setting("ipv6/conf/flannel0/router_solicitations") == "0")
            #expect(try Self.setting("ipv4/conf/flannel0/accept_local") == "1")
        }
    }

    @Test func aMissingDeviceThrows() throws {
        _ = try TestNamespace.with { namespace in
            try namespace.enter {
                #expect(throws: NetlinkError.self) { try Self.ipv4Only.configure { _ in } }
            }
        }
    }

    /// A namespace holding a persistent TUN `flannel0` (down, unaddressed); `body` runs inside it.
    private func withTUN(
        defaultDisablesIPv6: Bool = false,
        _ body: @escaping @Sendable (TestNamespace) throws -> Void
    ) throws {
        try TestNamespace.with { namespace in
            if defaultDisablesIPv6 {
                try Self.must([
                    "netns", "exec", namespace.name, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1",
                ])
            }
            try Self.must(["-n", namespace.name, "tuntap", "add", "dev", "flannel0", "mode", "tun"])
            try namespace.enter { try body(namespace) }
        }
    }

    private static func must(_ arguments: [String]) throws {
        let (status, output) = try TestNamespace.run(arguments)
        guard status == 0 else { throw TestFailure("ip \(arguments.joined(separator: " ")): \(output)") }
    }

    /// `ip -j <arguments>` in `namespace`, parsed: a list of objects.
    private static func json(_ namespace: TestNamespace, _ arguments: [String]) throws -> [[String: Any]] {
        let (status, output) = try TestNamespace.run(["-n", namespace.name, "-j"] + arguments)
        guard status == 0, let objects = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [[String: Any]]
        else { throw TestFailure("ip -j \(arguments.joined(separator: " ")): \(output)") }
        return objects
    }

    /// flannel0's MTU, flags and addresses ("inet 10.244.1.0/32"), from `ip -j addr show`.
    private static func link(_ namespace: TestNamespace) throws -> (mtu: Int, flags: [String], addresses: [String]) {
        let links = try json(namespace, ["addr", "show", "dev", "flannel0"])
        guard let link = links.first, let mtu = link["mtu"] as? Int, let flags = link["flags"] as? [String],
            let info = link["addr_info"] as? [[String: Any]]
        else { throw TestFailure("ip -j addr show dev flannel0: \(links)") }
        let addresses = info.compactMap { address -> String? in
            guard let family = address["family"] as? String, let local = address["local"] as? String,
                let length = address["prefixlen"] as? Int
            else { return nil }
            return "\(family) \(local)/\(length)"
        }
        return (mtu, flags, addresses)
    }

    /// The destinations of flannel0's main-table routes of one family ("-4", "-6"), from `ip -j route show`.
    private static func routes(_ namespace: TestNamespace, _ family: String) throws -> [String] {
        try json(namespace, [family, "route", "show", "dev", "flannel0"]).compactMap { $0["dst"] as? String }
    }

    /// A sysctl under /proc/sys/net, read from the calling thread's namespace.
    private static func setting(_ path: String) throws -> String {
        try String(contentsOfFile: "/proc/sys/net/\(path)", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
