import Addressing
import Benchmark
import Forwarding
import Packets
import Routes

/// The whole per-packet pipeline for an inner IPv4 packet: host A's `fromTUN` (validate, look up,
/// encapsulate) and then host B's `fromWire` (decapsulate, admit) on the same buffer, which leaves
/// it as it was (udp: the TTL is restored), so every iteration starts from the same state.
func registerForwarderBenchmarks() {
    let publicA = IPv4Address(198, 18, 0, 1)
    let publicB = IPv4Address(198, 18, 0, 2)
    for backend in [Backend.vxlan, .udp] {
        let port: UInt16 = backend == .vxlan ? 8472 : 8285
        let macA = MACAddress(0x02_00_00_00_00_01)
        let macB = MACAddress(0x02_00_00_00_00_02)
        let owner = SnapshotOwner(
            RouteSnapshot(
                routes: [
                    Route(
                        subnet: IPv4Prefix("10.244.1.0/24")!,
                        nextHop: NextHop(publicIP: publicA, port: port, vtepMAC: macA, backend: backend)
                    ),
                    Route(
                        subnet: IPv4Prefix("10.244.2.0/24")!,
                        nextHop: NextHop(publicIP: publicB, port: port, vtepMAC: macB, backend: backend)
                    ),
                ],
                network: IPv4Prefix("10.244.0.0/16")!,
                subnetLength: 24
            )
        )
        let hostA = Forwarder(backend: backend, vni: 1, vtepMAC: macA, localSubnet: IPv4Prefix("10.244.1.0/24")!)
        let hostB = Forwarder(backend: backend, vni: 1, vtepMAC: macB, localSubnet: IPv4Prefix("10.244.2.0/24")!)
        Benchmark("forwarder \(backend.rawValue) IPv4 fromTUN+fromWire 1400 B") { benchmark in
            let sample = SamplePacket(payload: 1400 - 28)
            defer { sample.release() }
            let table = owner.snapshot.table
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                var packet = sample.packet
                blackHole(hostA.fromTUN(&packet, table: table))
                blackHole(hostB.fromWire(&packet, sender: publicA, table: table))
                if backend == .udp {
                    IPv4Header(packet).ttl = 64
                    IPv4Header(packet).storeChecksum()
                }
            }
        }
    }
}
