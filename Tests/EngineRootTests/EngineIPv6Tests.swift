import Addressing
import Engine
import Foundation
import Routes
import TestSupport
import TestThreads
import Testing

/// Inner IPv6 across real TUN devices over the IPv4 underlay of `TwoHostBed`: the containers get
/// fc00:0:0:N::2/64 beside their IPv4 addresses, each host's engine carries both families, and
/// the containers ping6 each other through the udp and the vxlan backend.
@Suite(
    .ownThread,
    .enabled(if: TestNamespace.missing == nil, "\(TestNamespace.missing ?? "")"),
    .serialized,
    .timeLimit(.minutes(2))
)
struct EngineIPv6Tests {
    static let ipv6Network = IPv6Prefix("fc00::/48")!
    static let ipv6SubnetA = IPv6Prefix("fc00:0:0:1::/64")!
    static let ipv6SubnetB = IPv6Prefix("fc00:0:0:2::/64")!
    static let containerA = IPv6Address("fc00:0:0:1::2")!
    static let containerB = IPv6Address("fc00:0:0:2::2")!

    static let kinds: [EngineKind] = Engine.uringUnavailable == nil ? [.mmsg, .uring] : [.mmsg]

    @Test(arguments: kinds, [Backend.udp, .vxlan])
    func containersPing6AcrossTheIPv4Underlay(kind: EngineKind, backend: Backend) throws {
        try TwoHostBed.with { bed in
            try enableIPv6(bed)
            let engineA = try startEngine(bed, in: bed.hostA, kind: kind, backend: backend)
            defer { engineA.stop() }
            let engineB = try startEngine(bed, in: bed.hostB, kind: kind, backend: backend)
            defer { engineB.stop() }
            for (from, to) in [(bed.containerA, Self.containerB), (bed.containerB, Self.containerA)] {
                let (_, output) = try TwoHostBed.execute(
                    from,
                    ["ping", "-6", "-n", "-c", "5", "-i", "0.2", "-W", "2", "\(to)"]
                )
                let result = PingResult(output: output)
                #expect(result.received >= 4, "\(kind) \(backend) ping6 \(to): \(output)")
            }
            // IPv4 crosses the same engines.
            let ipv4 = try ping(from: bed.containerA, TwoHostBed.containerAddressB, count: 3)
            #expect(ipv4.received >= 2, "\(kind) \(backend) ping: \(ipv4.output)")
            let a = engineA.counters.snapshot()
            let b = engineB.counters.snapshot()
            #expect(a.drops[.spoofedSource] == 0 && b.drops[.spoofedSource] == 0)
            #expect(a.drops[.notOurSubnet] == 0 && b.drops[.notOurSubnet] == 0)
            #expect(engineA.workerFailures.isEmpty && engineB.workerFailures.isEmpty)
        }
    }

    /// `TwoHostBed` turns IPv6 off in the hosts; here it is on, with forwarding, and each container
    /// gets its IPv6 address behind its host's ctr0 (no duplicate address detection: no waiting).
    private func enableIPv6(_ bed: TwoHostBed) throws {
        for (host, container, subnet, address) in [
            (bed.hostA, bed.containerA, Self.ipv6SubnetA, Self.containerA),
            (bed.hostB, bed.containerB, Self.ipv6SubnetB, Self.containerB),
        ] {
            try TwoHostBed.sysctl(
                host,
                "net.ipv6.conf.all.disable_ipv6=0",
                "net.ipv6.conf.default.disable_ipv6=0",
                "net.ipv6.conf.ctr0.disable_ipv6=0",
                "net.ipv6.conf.all.forwarding=1"
            )
            let gateway = IPv6Address(subnet.network.value | 1)
            try TwoHostBed.mustRun(host, ["ip", "-6", "addr", "add", "\(gateway)/64", "dev", "ctr0", "nodad"])
            try TwoHostBed.mustRun(container, ["ip", "-6", "addr", "add", "\(address)/64", "dev", "eth0", "nodad"])
            try TwoHostBed.mustRun(container, ["ip", "-6", "route", "add", "default", "via", "\(gateway)"])
        }
    }

    private func startEngine(
        _ bed: TwoHostBed,
        in host: TestNamespace,
        kind: EngineKind,
        backend: Backend
    ) throws -> Engine {
        let isA = host.name == bed.hostA.name
        let port = backend == .vxlan ? TwoHostBed.vxlanPort : TwoHostBed.port
        let configuration = EngineConfiguration(
            network: TwoHostBed.network,
            localSubnet: isA ? TwoHostBed.subnetA : TwoHostBed.subnetB,
            publicIP: isA ? TwoHostBed.publicA : TwoHostBed.publicB,
            port: port,
            backend: backend,
            vni: 1,
            vtepMAC: isA ? TwoHostBed.macA : TwoHostBed.macB,
            engine: kind == .uring ? .uring : .mmsg,
            ipv6Network: Self.ipv6Network,
            ipv6Subnet: isA ? Self.ipv6SubnetA : Self.ipv6SubnetB
        )
        let hop = NextHop(
            publicIP: isA ? TwoHostBed.publicB : TwoHostBed.publicA,
            port: port,
            vtepMAC: backend == .vxlan ? (isA ? TwoHostBed.macB : TwoHostBed.macA) : MACAddress(0),
            backend: backend
        )
        let route = Route(subnet: isA ? TwoHostBed.subnetB : TwoHostBed.subnetA, nextHop: hop)
        let ipv6Route = IPv6Route(subnet: isA ? Self.ipv6SubnetB : Self.ipv6SubnetA, nextHop: hop)
        return try host.startEngine(configuration, routes: [route], ipv6Routes: [ipv6Route])
    }
}
