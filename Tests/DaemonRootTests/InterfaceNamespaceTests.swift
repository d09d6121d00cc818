import Addressing
import Daemon
import Foundation
import Glibc
import Synchronization
import TestSupport
import TestThreads
import Testing

/// HostNetwork + InterfaceSelector against a real kernel: a throwaway network namespace with two
/// dummy interfaces on 198.18.0.0/15 and the default route through the second. HostNetwork runs
/// on a thread that entered the namespace with setns, which is why it reads
/// /proc/thread-self/net/route.
@Suite(.ownThread, .serialized) struct InterfaceNamespaceTests {
    static let missing: String? = {
        guard getuid() == 0 else { return "not root: creating a network namespace needs it" }
        guard FileManager.default.isExecutableFile(atPath: ip) else { return "iproute2's ip is not installed" }
        return nil
    }()
    static let ip =
        ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        } ?? "/usr/sbin/ip"

    @discardableResult
    static func run(_ arguments: [String]) throws -> String {
        let result = try runCommand([ip] + arguments, errors: .merged)
        guard result.status == 0 else {
            throw NamespaceError(description: "ip \(arguments.joined(separator: " ")): \(result.output)")
        }
        return result.output
    }

    struct NamespaceError: Error, CustomStringConvertible { let description: String }

    /// Creates the namespace (and a peer namespace for the veth pairs' other ends), runs `body`
    /// with its name, and deletes both on every way out.
    static func withNamespace(_ body: (String) throws -> Void) throws {
        let name = "weftd-it-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let peer = name + "-peer"
        try run(["netns", "add", name])
        defer { _ = try? run(["netns", "del", name]) }
        try run(["netns", "add", peer])
        defer { _ = try? run(["netns", "del", peer]) }
        for end in ["pa", "pb"] {
            try run([
                "-n", name, "link", "add", end == "pa" ? "wa" : "wb", "type", "veth", "peer", "name", end, "netns",
                peer,
            ])
            try run(["-n", peer, "link", "set", end, "up"])
        }
        for command in [
            ["link", "set", "lo", "up"],
            ["link", "set", "wa", "mtu", "1400", "up"],
            ["link", "set", "wb", "mtu", "9000", "up"],
            ["addr", "add", "198.18.0.2/24", "dev", "wa"],
            ["addr", "add", "198.19.0.2/24", "dev", "wb"],
            ["addr", "add", "198.19.7.7/24", "dev", "wb"],
            ["route", "add", "default", "via", "198.19.0.1", "dev", "wb"],
            ["addr", "add", "2001:db8:a::2/64", "dev", "wa", "nodad"],
            ["addr", "add", "2001:db8:b::2/64", "dev", "wb", "nodad"],
            ["-6", "route", "add", "2001:db8:77::/48", "via", "2001:db8:a::1", "dev", "wa"],
        ] {
            try run(["-n", name] + command)
        }
        try body(name)
    }

    /// The kernel's index for `interface`, read by `ip`, independently of HostNetwork.
    static func index(_ interface: String, in namespace: String) throws -> Int {
        let output = try run(["-n", namespace, "-o", "link", "show", interface])
        // "2: wa@if2: <...". Standard error shares the pipe: while other suites add and delete
        // namespaces, ip may also print "Error: Peer netns reference is invalid." and still succeed.
        for line in output.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2)
            guard fields.count == 3, let index = Int(fields[0]),
                fields[1].trimmingCharacters(in: .whitespaces).split(separator: "@").first == Substring(interface)
            else { continue }
            return index
        }
        throw NamespaceError(description: "no index in ip's line for \(interface): \(output)")
    }

    /// Runs `work` on a fresh thread that has joined `namespace`; the thread ends with it.
    static func inNamespace<T: Sendable>(_ namespace: String, _ work: @escaping @Sendable () throws -> T) throws -> T {
        try inNetworkNamespace(namespace, work)
    }

    static func select(_ request: InterfaceRequest, in namespace: String) throws -> ExternalInterface {
        try inNamespace(namespace) { try HostNetwork.selectInterface(request) }
    }

    @Test(.enabled(if: missing == nil, "\(missing ?? "")"), .timeLimit(.minutes(1)))
    func selectsByDefaultRouteNameAddressRegexReachAndPublicIP() throws {
        try Self.withNamespace { namespace in
            let wa = try Self.index("wa", in: namespace)
            let wb = try Self.index("wb", in: namespace)

            let interfaces = try Self.inNamespace(namespace) { try HostNetwork.interfaces() }
            #expect(interfaces.map(\.name) == ["lo", "wa", "wb"], "a new namespace holds only what the test made")
            #expect(
                interfaces.first { $0.name == "wb" }?.addresses == [
                    IPv4Address(198, 19, 0, 2), IPv4Address(198, 19, 7, 7),
                ]
            )
            let routes = try Self.inNamespace(namespace) { try HostNetwork.routes() }
            #expect(
                routes.first { $0.destination.length == 0 }
                    == HostRoute(
                        interface: "wb",
                        destination: IPv4Prefix("0.0.0.0/0")!,
                        gateway: IPv4Address(198, 19, 0, 1)
                    )
            )

            let cases: [(InterfaceRequest, String, Int, Int, String, String)] = [
                (InterfaceRequest(), "wb", wb, 9000, "198.19.0.2", "default route via 198.19.0.1"),
                (InterfaceRequest(interfaces: ["wa"]), "wa", wa, 1400, "198.18.0.2", "--iface=wa names it"),
                (
                    InterfaceRequest(interfaces: ["eth7", "198.19.7.7"]), "wb", wb, 9000, "198.19.7.7",
                    "--iface=198.19.7.7 is its address"
                ),
                (
                    InterfaceRequest(regexes: ["^198\\.18\\."]), "wa", wa, 1400, "198.18.0.2",
                    "matches its address 198.18.0.2"
                ),
                (InterfaceRequest(regexes: ["^w[a]$"]), "wa", wa, 1400, "198.18.0.2", "matches its name"),
                (
                    InterfaceRequest(canReach: IPv4Address(198, 18, 0, 77)), "wa", wa, 1400, "198.18.0.2",
                    "--iface-can-reach=198.18.0.77"
                ),
                (
                    InterfaceRequest(publicIP: IPv4Address(198, 19, 7, 7)), "wb", wb, 9000, "198.19.7.7",
                    "holds --public-ip=198.19.7.7"
                ),
            ]
            // An IPv6 target: the interface its route leaves through, and that source as the IPv6 address.
            let byIPv6 = try Self.select(InterfaceRequest(canReachIPv6: IPv6Address("2001:db8:77::1")!), in: namespace)
            #expect(byIPv6.name == "wa" && byIPv6.address == IPv4Address(198, 18, 0, 2), "\(byIPv6)")
            #expect(byIPv6.ipv6Address == IPv6Address("2001:db8:a::2"), "\(byIPv6)")
            #expect(byIPv6.reason.contains("--iface-can-reach=2001:db8:77::1 leaves through it from 2001:db8:a::2"))
            for (request, name, index, mtu, address, reason) in cases {
                let chosen = try Self.select(request, in: namespace)
                #expect(chosen.name == name, "\(request)")
                #expect(
                    chosen.index == index && chosen.mtu == mtu,
                    "\(request): \(chosen); ip says \(name) is \(index)"
                )
                #expect(chosen.address == IPv4Address(address), "\(request): \(chosen)")
                #expect(chosen.reason.contains(reason), "\(request): \(chosen.reason)")
                #expect(chosen.others.count == 1, "the other dummy interface is listed: \(chosen.summary)")
            }
        }
    }

    @Test(.enabled(if: missing == nil, "\(missing ?? "")"), .timeLimit(.minutes(1)))
    func failsClearlyWithoutADefaultRouteOrAMatch() throws {
        try Self.withNamespace { namespace in
            try Self.run(["-n", namespace, "route", "del", "default"])
            #expect(
                throws: InterfaceSelectionError(
                    "no IPv4 default route to take the interface from; add one or give --iface"
                )
            ) {
                try Self.select(InterfaceRequest(), in: namespace)
            }
            do {
                _ = try Self.select(InterfaceRequest(interfaces: ["eth0"]), in: namespace)
                Issue.record("eth0 does not exist in the namespace")
            } catch {
                #expect("\(error)".contains("this host has lo, wa, wb"), "\(error)")
            }
        }
    }
}
