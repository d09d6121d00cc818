import Addressing
import Engine
import Foundation
import Routes
import Synchronization
import TestThreads

/// Two hosts whose interfaces are at 1500 in two /24s joined by a router whose routes to both
/// carry a smaller MTU, a container behind each host (issue 15, item 4):
///
/// ```
///  containerA 10.244.1.2 ── hostA 198.18.0.1/24 ── a0 198.18.0.254  router  b0 198.18.1.254 ── 198.18.1.2/24 hostB ── containerB 10.244.2.2
///                                                   (routes to both /24s at mtu `pathMTU`)
/// ```
/// The router's veths stay at 1500 (a veth drops, without ICMP, a frame longer than its peer's
/// MTU), and its routes carry `pathMTU`, which forwarding honours: a larger datagram with DF is
/// answered with ICMP fragmentation needed, as by a router in front of a smaller link. Every
/// namespace is deleted when `with` returns or throws.
final class RouterBed: Sendable {
    let hostA: TestNamespace
    let hostB: TestNamespace
    let router: TestNamespace
    let containerA: TestNamespace
    let containerB: TestNamespace

    static let publicA = IPv4Address(198, 18, 0, 1)
    static let publicB = IPv4Address(198, 18, 1, 2)
    static let pathMTU = 1400
    /// Container interfaces and TUNs at the interfaces' 1500 − 28, as flannel sets them.
    static let containerMTU = 1472

    private static let counter = Mutex(0)

    private init(prefix: String) {
        hostA = TestNamespace(name: "\(prefix)-hostA")
        hostB = TestNamespace(name: "\(prefix)-hostB")
        router = TestNamespace(name: "\(prefix)-router")
        containerA = TestNamespace(name: "\(prefix)-ctrA")
        containerB = TestNamespace(name: "\(prefix)-ctrB")
    }

    private var all: [TestNamespace] { [hostA, hostB, router, containerA, containerB] }

    static func with<T>(_ body: (RouterBed) throws -> T) throws -> T {
        let serial = counter.withLock { value -> Int in
            value += 1
            return value
        }
        let bed = RouterBed(prefix: "weft-pmtu-\(getpid())-\(serial)")
        defer { for namespace in bed.all { _ = try? TestNamespace.run(["netns", "del", namespace.name]) } }
        try bed.build()
        return try body(bed)
    }

    private func build() throws {
        for namespace in all {
            try must(["netns", "add", namespace.name])
            try must(["-n", namespace.name, "link", "set", "lo", "up"])
        }
        let r = router.name
        try must(["-n", hostA.name, "link", "add", "ul0", "type", "veth", "peer", "name", "a0", "netns", r])
        try must(["-n", hostB.name, "link", "add", "ul0", "type", "veth", "peer", "name", "b0", "netns", r])
        try address(hostA.name, "ul0", "198.18.0.1/24")
        try address(hostB.name, "ul0", "198.18.1.2/24")
        try address(r, "a0", "198.18.0.254/24")
        try address(r, "b0", "198.18.1.254/24")
        for (device, prefix, source) in [
            ("a0", "198.18.0.0/24", "198.18.0.254"), ("b0", "198.18.1.0/24", "198.18.1.254"),
        ] {
            try must([
                "-n", r, "route", "replace", prefix, "dev", device, "proto", "kernel", "scope", "link", "src", source,
                "mtu", "\(Self.pathMTU)",
            ])
        }
        try TwoHostBed.sysctl(router, "net.ipv4.ip_forward=1")
        try must(["-n", hostA.name, "route", "add", "198.18.1.0/24", "via", "198.18.0.254"])
        try must(["-n", hostB.name, "route", "add", "198.18.0.0/24", "via", "198.18.1.254"])
        for (host, container, gateway, address) in [
            (hostA, containerA, "10.244.1.1", TwoHostBed.containerAddressA),
            (hostB, containerB, "10.244.2.1", TwoHostBed.containerAddressB),
        ] {
            try must([
                "-n", host.name, "link", "add", "ctr0", "type", "veth", "peer", "name", "eth0", "netns", container.name,
            ])
            try must(["-n", host.name, "link", "set", "ctr0", "mtu", "\(Self.containerMTU)"])
            try must(["-n", container.name, "link", "set", "eth0", "mtu", "\(Self.containerMTU)"])
            try self.address(host.name, "ctr0", "\(gateway)/24")
            try self.address(container.name, "eth0", "\(address)/24")
            try must(["-n", container.name, "route", "add", "default", "via", gateway])
            try TwoHostBed.sysctl(
                host,
                "net.ipv4.ip_forward=1",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1"
            )
        }
    }

    /// An engine with the udp backend inside `host`, its peer the other host.
    func startEngine(
        in host: TestNamespace,
        kind: EngineKind,
        offloads: Bool,
        log: @escaping Engine.Log = { _ in }
    ) throws -> Engine {
        let isA = host.name == hostA.name
        let configuration = EngineConfiguration(
            network: TwoHostBed.network,
            localSubnet: isA ? TwoHostBed.subnetA : TwoHostBed.subnetB,
            publicIP: isA ? Self.publicA : Self.publicB,
            port: TwoHostBed.port,
            engine: kind == .uring ? .uring : .mmsg,
            workers: 1,
            batchSize: 64,
            offloads: offloads
        )
        let peer = Route(
            subnet: isA ? TwoHostBed.subnetB : TwoHostBed.subnetA,
            nextHop: NextHop(publicIP: isA ? Self.publicB : Self.publicA, port: TwoHostBed.port, backend: .udp)
        )
        return try host.startEngine(configuration, routes: [peer], log: log)
    }

    private func address(_ namespace: String, _ device: String, _ cidr: String) throws {
        try must(["-n", namespace, "addr", "add", cidr, "dev", device])
        try must(["-n", namespace, "link", "set", device, "up"])
    }

    private func must(_ arguments: [String]) throws {
        let (status, output) = try TestNamespace.run(arguments)
        guard status == 0 else { throw TestFailure("ip \(arguments.joined(separator: " ")): \(output)") }
    }
}
