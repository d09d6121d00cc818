import Addressing
import Engine
import Foundation
import Routes
import Synchronization
import TestSupport
import TestThreads

/// Two hosts and a stranger on one underlay, a container behind each host (DESIGN.md §4):
///
/// ```
///  containerA 10.244.1.2/24 ── ctr0 10.244.1.1/24  hostA  198.18.0.1/24 (bridge ul0) ── ul0 198.18.0.2/24  hostB  ctr0 10.244.2.1/24 ── containerB 10.244.2.2/24
///                                                                      └────────────── ul0 198.18.0.3/24  stranger (no lease)
/// ```
/// The underlay is a bridge in hostA so the stranger reaches 198.18.0.1 as a neighbour, like any
/// machine on the hosts' LAN. IPv6 is off in the hosts so the TUN carries only what the tests
/// send (no router solicitations), which keeps the drop counters exact. Every namespace is
/// deleted when `with` returns or throws.
final class TwoHostBed: Sendable {
    let hostA: TestNamespace
    let hostB: TestNamespace
    let containerA: TestNamespace
    let containerB: TestNamespace
    let stranger: TestNamespace

    static let network = IPv4Prefix(IPv4Address(10, 244, 0, 0), length: 16)
    static let subnetA = IPv4Prefix(IPv4Address(10, 244, 1, 0), length: 24)
    static let subnetB = IPv4Prefix(IPv4Address(10, 244, 2, 0), length: 24)
    static let publicA = IPv4Address(198, 18, 0, 1)
    static let publicB = IPv4Address(198, 18, 0, 2)
    static let publicStranger = IPv4Address(198, 18, 0, 3)
    static let containerAddressA = IPv4Address(10, 244, 1, 2)
    static let containerAddressB = IPv4Address(10, 244, 2, 2)
    static let port: UInt16 = 8285

    private static let counter = Mutex(0)

    private init(prefix: String) {
        hostA = TestNamespace(name: "\(prefix)-hostA")
        hostB = TestNamespace(name: "\(prefix)-hostB")
        containerA = TestNamespace(name: "\(prefix)-ctrA")
        containerB = TestNamespace(name: "\(prefix)-ctrB")
        stranger = TestNamespace(name: "\(prefix)-stranger")
    }

    private var all: [TestNamespace] { [hostA, hostB, containerA, containerB, stranger] }

    static func with<T>(_ body: (TwoHostBed) throws -> T) throws -> T {
        let serial = counter.withLock { value -> Int in
            value += 1
            return value
        }
        let bed = TwoHostBed(prefix: "weft-bed-\(getpid())-\(serial)")
        defer { for namespace in bed.all { _ = try? TestNamespace.run(["netns", "del", namespace.name]) } }
        try bed.build()
        return try body(bed)
    }

    private func build() throws {
        for namespace in all {
            try Self.must(["netns", "add", namespace.name])
            try Self.must(["-n", namespace.name, "link", "set", "lo", "up"])
        }
        let a = hostA.name
        let b = hostB.name
        // Underlay: bridge ul0 in hostA, one veth port to hostB and one to the stranger.
        try Self.must(["-n", a, "link", "add", "name", "ul0", "type", "bridge"])
        try Self.must(["-n", a, "link", "add", "name", "to-b", "type", "veth", "peer", "name", "ul0", "netns", b])
        try Self.must([
            "-n", a, "link", "add", "name", "to-x", "type", "veth", "peer", "name", "ul0", "netns", stranger.name,
        ])
        for port in ["to-b", "to-x"] {
            try Self.must(["-n", a, "link", "set", port, "master", "ul0"])
            try Self.must(["-n", a, "link", "set", port, "up"])
        }
        try Self.address(a, "ul0", "\(Self.publicA)/24")
        try Self.address(b, "ul0", "\(Self.publicB)/24")
        try Self.address(stranger.name, "ul0", "\(Self.publicStranger)/24")
        // Containers.
        for (host, container, gateway, address) in [
            (hostA, containerA, "10.244.1.1", Self.containerAddressA),
            (hostB, containerB, "10.244.2.1", Self.containerAddressB),
        ] {
            try Self.must([
                "-n", host.name, "link", "add", "name", "ctr0", "type", "veth", "peer", "name", "eth0", "netns",
                container.name,
            ])
            try Self.address(host.name, "ctr0", "\(gateway)/24")
            try Self.address(container.name, "eth0", "\(address)/24")
            try Self.must(["-n", container.name, "route", "add", "default", "via", gateway])
            try Self.sysctl(
                host,
                "net.ipv4.ip_forward=1",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1"
            )
        }
    }

    /// Builds and starts an engine inside `host`; its workers stay in that namespace.
    func startEngine(
        in host: TestNamespace,
        kind: EngineKind,
        workers: Int = 1,
        batchSize: Int = 64,
        offloads: Bool = false,
        busyPoll: Duration = .zero,
        log: @escaping Engine.Log = { _ in }
    ) throws -> Engine {
        let isA = host.name == hostA.name
        let configuration = EngineConfiguration(
            network: Self.network,
            localSubnet: isA ? Self.subnetA : Self.subnetB,
            publicIP: isA ? Self.publicA : Self.publicB,
            port: Self.port,
            engine: kind == .uring ? .uring : .mmsg,
            workers: workers,
            batchSize: batchSize,
            offloads: offloads,
            busyPoll: busyPoll
        )
        let peer = Route(
            subnet: isA ? Self.subnetB : Self.subnetA,
            nextHop: NextHop(publicIP: isA ? Self.publicB : Self.publicA, port: Self.port, backend: .udp)
        )
        return try host.startEngine(configuration, routes: [peer], log: log)
    }

    /// Runs `command` in `namespace` to completion; its status and combined output.
    static func execute(_ namespace: TestNamespace, _ command: [String]) throws -> (Int32, String) {
        try TestNamespace.run(["netns", "exec", namespace.name] + command)
    }

    static func sysctl(_ namespace: TestNamespace, _ settings: String...) throws {
        let (status, output) = try execute(namespace, ["sysctl", "-qw"] + settings)
        guard status == 0 else { throw TestFailure("sysctl \(settings) in \(namespace.name): \(output)") }
    }

    private static func address(_ namespace: String, _ device: String, _ cidr: String) throws {
        try must(["-n", namespace, "addr", "add", cidr, "dev", device])
        try must(["-n", namespace, "link", "set", device, "up"])
    }

    private static func must(_ arguments: [String]) throws {
        let (status, output) = try TestNamespace.run(arguments)
        guard status == 0 else { throw TestFailure("ip \(arguments.joined(separator: " ")): \(output)") }
    }

    /// UDP RcvbufErrors of `namespace` (/proc/net/snmp is per network namespace).
    static func receiveBufferErrors(_ namespace: TestNamespace) throws -> UInt64 {
        let (_, snmp) = try execute(namespace, ["cat", "/proc/net/snmp"])
        guard let value = udpReceiveBufferErrors(snmp: snmp) else {
            throw TestFailure("no Udp RcvbufErrors in /proc/net/snmp: \(snmp)")
        }
        return value
    }
}

/// Resident set size of process `pid` in bytes (VmRSS), or nil once it is gone.
func residentBytes(of pid: Int32) -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
        let kilobytes = Int(line.split(separator: " ")[1])
    else { return nil }
    return kilobytes * 1024
}

/// TestSupport's IPv4/UDP packet builder, for addresses as this target holds them.
func ipv4UDPPacket(
    source: IPv4Address,
    destination: IPv4Address,
    port: UInt16,
    payload: [UInt8],
    ttl: UInt8 = 64
) -> [UInt8] {
    func octets(_ address: IPv4Address) -> [UInt8] {
        [
            UInt8(address.value >> 24), UInt8(address.value >> 16 & 0xFF), UInt8(address.value >> 8 & 0xFF),
            UInt8(address.value & 0xFF),
        ]
    }
    return ipv4UDPPacket(
        source: octets(source),
        destination: octets(destination),
        port: port,
        payload: payload,
        ttl: ttl
    )
}
