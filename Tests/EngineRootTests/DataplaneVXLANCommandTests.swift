import Addressing
import Engine
import Foundation
import TestThreads
import Testing

/// `weft dataplane --backend vxlan` as the benchmark harness runs it, and its argument refusals.
@Suite(
    .ownThread,
    .weftDataplaneRuns,
    .serialized,
    .timeLimit(.minutes(1))
)
struct DataplaneVXLANCommandTests {
    /// Packet by packet on mmsg, and with offloads on io_uring as weftd runs vxlan by default.
    static let engines: [(engine: String, offloads: Bool)] =
        [("mmsg", false)]
        + (Engine.uringUnavailable == nil ? [("uring", true)] : [])

    @Test(arguments: engines)
    func vxlanDataplanesForwardAndReportCounters(engine: String, offloads: Bool) throws {
        try TwoHostBed.with { bed in
            try bed.useVXLANMTU()
            func dataplane(
                _ host: TestNamespace,
                subnet: String,
                publicIP: IPv4Address,
                mac: MACAddress,
                peer: String
            )
                throws -> NamespaceProcess
            {
                try NamespaceProcess(
                    host,
                    [
                        weftExecutable!, "dataplane", "--backend", "vxlan", "--vni", "1", "--vtep-mac", "\(mac)",
                        "--network", "10.244.0.0/16", "--subnet", subnet, "--public-ip", "\(publicIP)", "--engine",
                        engine,
                        "--peer", peer,
                    ] + (offloads ? ["--offloads"] : [])
                )
            }
            let processA = try dataplane(
                bed.hostA,
                subnet: "10.244.1.0/24",
                publicIP: TwoHostBed.publicA,
                mac: TwoHostBed.macA,
                peer: "10.244.2.0/24=198.18.0.2,\(TwoHostBed.macB)"
            )
            defer { processA.stop() }
            let processB = try dataplane(
                bed.hostB,
                subnet: "10.244.2.0/24",
                publicIP: TwoHostBed.publicB,
                mac: TwoHostBed.macB,
                peer: "10.244.1.0/24=198.18.0.1,\(TwoHostBed.macA)"
            )
            defer { processB.stop() }
            #expect(processA.readLine(milliseconds: 5000) == "ready engine=\(engine) workers=1")
            #expect(processB.readLine(milliseconds: 5000) == "ready engine=\(engine) workers=1")
            // Named as weftd names it for vxlan: flannel.<VNI>.
            let (_, link) = try TwoHostBed.execute(bed.hostA, ["ip", "link", "show", "flannel.1"])
            #expect(link.contains("mtu 1450"), "\(link)")
            // The port defaults to 8472 for vxlan.
            let (_, sockets) = try TwoHostBed.execute(bed.hostA, ["cat", "/proc/net/udp"])
            #expect(sockets.contains(":2118 "), "nothing bound to 8472 (0x2118): \(sockets)")

            let there = try ping(from: bed.containerA, TwoHostBed.containerAddressB, count: 3)
            #expect(there.received == 3, "\(there.output)")
            let back = try ping(from: bed.containerB, TwoHostBed.containerAddressA, count: 3)
            #expect(back.received == 3, "\(back.output)")

            let report = try processA.stopAndReport()
            let drops = try #require(report["drops"] as? [String: Int])
            #expect(drops.values.allSatisfy { $0 == 0 }, "\(drops)")
            // 3 requests and 3 replies each way, each an 84-byte ping plus 22 bytes of VXLAN and inner Ethernet.
            let peer = try #require((report["peers"] as? [String: [String: Int]])?["198.18.0.2"], "\(report)")
            #expect(peer["sent_packets"] == 6 && peer["received_packets"] == 6, "\(peer)")
            #expect(peer["sent_bytes"] == 6 * 106 && peer["received_bytes"] == 6 * 106, "\(peer)")
        }
    }

    static let refusals: [([String], String)] = [
        ([], "weft: --backend vxlan needs --vtep-mac: the MAC this host's lease publishes as VtepMAC\n"),
        (
            ["--vtep-mac", "02:00:c6:12:00:01", "--peer", "10.244.2.0/24=198.18.0.2"],
            "weft: --peer 10.244.2.0/24=198.18.0.2: --backend vxlan needs the peer's VtepMAC (--peer 10.244.2.0/24=198.18.0.2,aa:bb:cc:dd:ee:ff)\n"
        ),
        (
            ["--vtep-mac", "01:00:5e:00:00:01"],
            "weft: engine configuration VTEP MAC 01:00:5e:00:00:01: give the VTEP a unicast MAC (flannel picks a random locally administered one): Invalid argument (errno 22)\n"
        ),
    ]

    @Test(arguments: refusals)
    func vxlanArgumentsAreRefusedWithOneLine(_ extra: [String], _ expected: String) throws {
        let (status, output) = try runWeft(
            [
                "dataplane", "--backend", "vxlan", "--network", "10.244.0.0/16", "--subnet", "10.244.1.0/24",
                "--public-ip", "127.0.0.1", "--engine", "mmsg", "--tun", "weft-bad-vxlan",
            ] + extra
        )
        #expect(status == 1)
        #expect(output == expected)
    }

    @Test func udpPeersTakeNoVtepMAC() throws {
        let (status, output) = try runWeft([
            "dataplane", "--network", "10.244.0.0/16", "--subnet", "10.244.1.0/24",
            "--public-ip", "127.0.0.1", "--engine", "mmsg", "--tun", "weft-bad-udp",
            "--peer", "10.244.2.0/24=198.18.0.2,02:00:c6:12:00:02",
        ])
        #expect(status == 1)
        #expect(
            output == "weft: --peer 10.244.2.0/24=198.18.0.2,02:00:c6:12:00:02: a VtepMAC is for --backend vxlan only\n"
        )
    }
}
