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
    static let kinds: [EngineKind] = Engine.uringUnavailable == nil ? [.mmsg, .uring] : [.mmsg]

    @Test(arguments: kinds, [Backend.udp, .vxlan])
    func containersPing6AcrossTheIPv4Underlay(kind: EngineKind, backend: Backend) throws {
        try TwoHostBed.with { bed in
            try bed.enableIPv6()
            let engineA = try startEngine(bed, in: bed.hostA, kind: kind, backend: backend)
            defer { engineA.stop() }
            let engineB = try startEngine(bed, in: bed.hostB, kind: kind, backend: backend)
            defer { engineB.stop() }
            for (from, to) in [
                (bed.containerA, TwoHostBed.ipv6ContainerB), (bed.containerB, TwoHostBed.ipv6ContainerA),
            ] {
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
            ipv6Network: TwoHostBed.ipv6Network,
            ipv6Subnet: isA ? TwoHostBed.ipv6SubnetA : TwoHostBed.ipv6SubnetB
        )
        let hop = NextHop(
            publicIP: isA ? TwoHostBed.publicB : TwoHostBed.publicA,
            port: port,
            vtepMAC: backend == .vxlan ? (isA ? TwoHostBed.macB : TwoHostBed.macA) : MACAddress(0),
            backend: backend
        )
        let route = Route(subnet: isA ? TwoHostBed.subnetB : TwoHostBed.subnetA, nextHop: hop)
        let ipv6Route = IPv6Route(subnet: isA ? TwoHostBed.ipv6SubnetB : TwoHostBed.ipv6SubnetA, nextHop: hop)
        return try host.startEngine(configuration, routes: [route], ipv6Routes: [ipv6Route])
    }
}
