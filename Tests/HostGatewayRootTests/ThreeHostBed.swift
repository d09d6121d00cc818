import Addressing
import CShims
import Foundation
import Glibc
import HostGateway
import Netlink
import Routes
import Synchronization
import TestThreads

/// Three hosts on one LAN, a container behind each:
///
/// ```
///  cN 10.244.N.2/24 ── ctr0 10.244.N.1/24  hostN  ul0 198.18.0.N/24 ── port N of bridge br0 (namespace "lan")
///     fc00:0:0:N::2/64      fc00:0:0:N::1/64        2001:db8::N/64
/// ```
/// for N = 1, 2, 3. Hosts forward; containers route by default through their host. Every namespace
/// is deleted when `with` returns or throws, including when building fails part-way.
final class ThreeHostBed: Sendable {
    static let network = IPv4Prefix(IPv4Address(10, 244, 0, 0), length: 16)
    static let hostNumbers = [1, 2, 3]

    let prefix: String

    static func publicIP(_ host: Int) -> IPv4Address { IPv4Address(198, 18, 0, UInt8(host)) }
    static func subnet(_ host: Int) -> IPv4Prefix { IPv4Prefix(IPv4Address(10, 244, UInt8(host), 0), length: 24) }
    static func containerAddress(_ host: Int) -> IPv4Address { IPv4Address(10, 244, UInt8(host), 2) }

    static let ipv6Network = IPv6Prefix("fc00::/48")!
    static func publicIPv6(_ host: Int) -> IPv6Address { IPv6Address("2001:db8::\(host)")! }
    static func ipv6Subnet(_ host: Int) -> IPv6Prefix { IPv6Prefix("fc00:0:0:\(host)::/64")! }
    static func containerIPv6(_ host: Int) -> IPv6Address { IPv6Address("fc00:0:0:\(host)::2")! }

    /// The IPv6 half of host `n`'s dual-stack lease, as a host-gw network's watcher hands it out.
    static func ipv6Route(_ host: Int) -> IPv6Peer {
        ipv6Peer(ipv6Subnet(host), publicIPv6: publicIPv6(host), backend: .hostGateway)
    }

    /// An IPv6 peer whose lease publishes `publicIPv6` (nil: none) for `backend`.
    static func ipv6Peer(_ subnet: IPv6Prefix, publicIPv6: IPv6Address?, backend: Backend) -> IPv6Peer {
        IPv6Peer(
            subnet: subnet,
            nextHop: NextHop(publicIP: IPv4Address(198, 18, 0, 99), port: 0, backend: backend),
            publicIPv6: publicIPv6,
            vtepMAC: nil
        )
    }

    /// The peer route host `n` publishes, as the PeerWatcher hands it out for a host-gw network.
    static func route(_ host: Int) -> Route {
        Route(subnet: subnet(host), nextHop: NextHop(publicIP: publicIP(host), port: 0, backend: .hostGateway))
    }

    func host(_ n: Int) -> String { "\(prefix)-h\(n)" }
    func container(_ n: Int) -> String { "\(prefix)-c\(n)" }
    var lan: String { "\(prefix)-lan" }
    private var all: [String] { [lan] + Self.hostNumbers.flatMap { [host($0), container($0)] } }

    private static let counter = Mutex(0)

    /// Why these tests cannot run here, or nil.
    static let missing: String? = {
        guard getuid() == 0 else { return "not root: network namespaces and kernel routes need it" }
        for tool in ["/usr/sbin/ip", "/usr/bin/ping"] where !FileManager.default.isExecutableFile(atPath: tool) {
            return "\(tool) is not installed (scripts/setup installs it)"
        }
        return nil
    }()

    private init(prefix: String) { self.prefix = prefix }

    static func with<T>(_ body: (ThreeHostBed) throws -> T) throws -> T {
        let serial = counter.withLock { value -> Int in
            value += 1
            return value
        }
        let bed = ThreeHostBed(prefix: "weft-hgw-\(getpid())-\(serial)")
        defer { for name in bed.all { _ = try? run(["netns", "del", name]) } }
        try bed.build()
        return try body(bed)
    }

    private func build() throws {
        for name in all {
            try must(["netns", "add", name])
            try must(["-n", name, "link", "set", "lo", "up"])
        }
        try must(["-n", lan, "link", "add", "br0", "type", "bridge"])
        try must(["-n", lan, "link", "set", "br0", "up"])
        for n in Self.hostNumbers {
            let h = host(n)
            let c = container(n)
            try must(["-n", lan, "link", "add", "port\(n)", "type", "veth", "peer", "name", "ul0", "netns", h])
            try must(["-n", lan, "link", "set", "port\(n)", "master", "br0"])
            try must(["-n", lan, "link", "set", "port\(n)", "up"])
            try must(["-n", h, "addr", "add", "\(Self.publicIP(n))/24", "dev", "ul0"])
            try must(["-n", h, "link", "set", "ul0", "up"])
            try must(["-n", h, "link", "add", "ctr0", "type", "veth", "peer", "name", "eth0", "netns", c])
            try must(["-n", h, "addr", "add", "10.244.\(n).1/24", "dev", "ctr0"])
            try must(["-n", h, "link", "set", "ctr0", "up"])
            try must(["-n", c, "addr", "add", "\(Self.containerAddress(n))/24", "dev", "eth0"])
            try must(["-n", c, "link", "set", "eth0", "up"])
            try must(["-n", c, "route", "add", "default", "via", "10.244.\(n).1"])
            // IPv6 beside it, without duplicate address detection so every address is usable at once.
            try must(["-n", h, "-6", "addr", "add", "\(Self.publicIPv6(n))/64", "dev", "ul0", "nodad"])
            try must(["-n", h, "-6", "addr", "add", "fc00:0:0:\(n)::1/64", "dev", "ctr0", "nodad"])
            try must(["-n", c, "-6", "addr", "add", "\(Self.containerIPv6(n))/64", "dev", "eth0", "nodad"])
            try must(["-n", c, "-6", "route", "add", "default", "via", "fc00:0:0:\(n)::1"])
            for setting in ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"] {
                let (status, output) = try Self.run(["netns", "exec", h, "sysctl", "-qw", setting])
                guard status == 0 else { throw TestFailure("sysctl \(setting) in \(h): \(output)") }
            }
        }
    }

    /// Creates host `n`'s HostGatewayRoutes inside its namespace (the netlink socket stays there).
    func hostGateway(_ n: Int) throws -> HostRoutes {
        let log = LogLines()
        return try enter(host(n)) {
            let index = try RouteNetlink.interfaceIndex("ul0")
            let routes = try HostGatewayRoutes(
                interfaceIndex: index,
                address: Self.publicIP(n),
                prefixLength: 24,
                network: Self.network,
                log: { log.append($0) }
            )
            return HostRoutes(routes, log: log)
        }
    }

    /// Host `n`'s IPv6HostGatewayRoutes, made as `hostGateway` makes the IPv4 one.
    func hostGatewayIPv6(_ n: Int) throws -> HostRoutesOf<IPv6Peer> {
        let log = LogLines()
        return try enter(host(n)) {
            let index = try RouteNetlink.interfaceIndex("ul0")
            let routes = try IPv6HostGatewayRoutes(
                interfaceIndex: index,
                address: Self.publicIPv6(n),
                prefixLength: try IPv6HostGatewayRoutes.connectedPrefixLength(
                    interfaceIndex: index,
                    address: Self.publicIPv6(n)
                ),
                network: Self.ipv6Network,
                log: { log.append($0) }
            )
            return HostRoutesOf(routes, log: log)
        }
    }

    /// `ip -n <host N> route show` lines (`ip -6` with `family` "-6"), trimmed.
    func routes(_ n: Int, family: String = "-4") throws -> [String] {
        let (_, output) = try Self.run(["-n", host(n), family, "route", "show"])
        return output.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
    }

    func ip(_ n: Int, _ arguments: String...) throws {
        try must(["-n", host(n)] + arguments)
    }

    /// One ping from container `from` to container `to`'s address (its IPv6 one with `ipv6`); true
    /// when it came back.
    func ping(from: Int, to: Int, ipv6: Bool = false) throws -> Bool {
        let address = ipv6 ? "\(Self.containerIPv6(to))" : "\(Self.containerAddress(to))"
        let (status, _) = try Self.run(["netns", "exec", container(from), "ping", "-n", "-c", "1", "-W", "3", address])
        return status == 0
    }

    /// Runs `body` on a new thread that has entered `namespace`, and waits for it.
    func enter<T: Sendable>(_ namespace: String, _ body: @escaping @Sendable () throws -> T) throws -> T {
        try inNetworkNamespace(namespace, body)
    }

    private func must(_ arguments: [String]) throws {
        let (status, output) = try Self.run(arguments)
        guard status == 0 else { throw TestFailure("ip \(arguments.joined(separator: " ")): \(output)") }
    }

    static func run(_ arguments: [String]) throws -> (Int32, String) { try runIP(arguments) }
}

/// One host's HostGatewayRoutes (of either family), shared between the test and the thread that made it.
final class HostRoutesOf<Peer: HostGatewayPeer>: Sendable {
    let state: Mutex<HostGatewayRoutesOf<Peer>>
    let log: LogLines

    init(_ routes: consuming HostGatewayRoutesOf<Peer>, log: LogLines) {
        state = Mutex(routes)
        self.log = log
    }

    @discardableResult
    func reconcile(_ routes: [Peer]) throws -> HostGatewayRoutesOf<Peer>.Reconciliation {
        try state.withLock { state throws(NetlinkError) in try state.reconcile(routes) }
    }

    @discardableResult
    func resync() throws -> HostGatewayRoutesOf<Peer>.Reconciliation {
        try state.withLock { state throws(NetlinkError) in try state.resync() }
    }

    @discardableResult
    func removeAll() throws -> [KernelRouteOf<Peer.Address>] {
        try state.withLock { state throws(NetlinkError) in try state.removeAll() }
    }

    var statistics: HostGatewayRoutesOf<Peer>.Statistics { state.withLock { $0.statistics } }
}

typealias HostRoutes = HostRoutesOf<Route>

final class LogLines: Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
}
