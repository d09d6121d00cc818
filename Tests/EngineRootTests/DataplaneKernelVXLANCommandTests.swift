import Addressing
import Foundation
import TestThreads
import Testing

/// `weft dataplane --backend vxlan --vxlan-dataplane kernel`, the benchmark harness's
/// weft-kernel-vxlan row: the kernel's flannel.1 made and given its peer's entries by Weft's code,
/// traffic through it both ways (to a second kernel device, and to Weft's engine), the device gone
/// after SIGTERM, and the refusals that come before anything in the kernel is touched.
@Suite(
    .ownThread,
    .weftDataplaneRuns,
    .serialized,
    .timeLimit(.minutes(1))
)
struct DataplaneKernelVXLANCommandTests {
    /// Host B's dataplane: the kernel device as well, or Weft's engine (mmsg) speaking to it.
    @Test(arguments: ["kernel", "mmsg"])
    func kernelDeviceIsProgrammedAndCarriesTraffic(peerDataplane: String) throws {
        try TwoHostBed.with { bed in
            try bed.useVXLANMTU()
            func dataplane(
                _ host: TestNamespace,
                subnet: String,
                publicIP: IPv4Address,
                mac: MACAddress,
                peer: String,
                kernel: Bool
            ) throws -> NamespaceProcess {
                try NamespaceProcess(
                    host,
                    [
                        weftExecutable!, "dataplane", "--backend", "vxlan", "--vni", "1", "--vtep-mac", "\(mac)",
                        "--network", "10.244.0.0/16", "--subnet", subnet, "--public-ip", "\(publicIP)", "--peer", peer,
                    ] + (kernel ? ["--vxlan-dataplane", "kernel"] : ["--engine", peerDataplane])
                )
            }
            let processA = try dataplane(
                bed.hostA,
                subnet: "10.244.1.0/24",
                publicIP: TwoHostBed.publicA,
                mac: TwoHostBed.macA,
                peer: "10.244.2.0/24=198.18.0.2,\(TwoHostBed.macB)",
                kernel: true
            )
            defer { processA.stop() }
            let processB = try dataplane(
                bed.hostB,
                subnet: "10.244.2.0/24",
                publicIP: TwoHostBed.publicB,
                mac: TwoHostBed.macB,
                peer: "10.244.1.0/24=198.18.0.1,\(TwoHostBed.macA)",
                kernel: peerDataplane == "kernel"
            )
            defer { processB.stop() }
            #expect(processA.readLine(milliseconds: 5000) == "ready engine=kernel workers=0")
            let readyB =
                peerDataplane == "kernel" ? "ready engine=kernel workers=0" : "ready engine=\(peerDataplane) workers=1"
            #expect(processB.readLine(milliseconds: 5000) == readyB)

            // flanneld's device and entries (DESIGN.md §4), as `ip` shows them.
            let (_, link) = try TwoHostBed.execute(bed.hostA, ["ip", "-d", "link", "show", "flannel.1"])
            #expect(link.contains("mtu 1450") && link.contains("link/ether \(TwoHostBed.macA)"), "\(link)")
            #expect(
                link.contains("vxlan id 1 local 198.18.0.1 dev ul0") && link.contains("dstport 8472 nolearning"),
                "\(link)"
            )
            let (_, address) = try TwoHostBed.execute(
                bed.hostA,
                ["ip", "-4", "-o", "addr", "show", "dev", "flannel.1"]
            )
            #expect(address.contains("inet 10.244.1.0/32"), "\(address)")
            let (_, neighbours) = try TwoHostBed.execute(
                bed.hostA,
                ["ip", "neigh", "show", "dev", "flannel.1", "nud", "permanent"]
            )
            #expect(
                neighbours.trimmingCharacters(in: .whitespacesAndNewlines)
                    == "10.244.2.0 lladdr \(TwoHostBed.macB) PERMANENT",
                "\(neighbours)"
            )
            let (_, fdb) = try TwoHostBed.execute(bed.hostA, ["bridge", "fdb", "show", "dev", "flannel.1"])
            #expect(fdb.contains("\(TwoHostBed.macB) dst 198.18.0.2 self permanent"), "\(fdb)")
            let (_, routes) = try TwoHostBed.execute(bed.hostA, ["ip", "route", "show", "dev", "flannel.1"])
            #expect(
                routes.trimmingCharacters(in: .whitespacesAndNewlines)
                    == "10.244.2.0/24 via 10.244.2.0 proto 87 onlink",
                "\(routes)"
            )

            let there = try ping(from: bed.containerA, TwoHostBed.containerAddressB, count: 3)
            #expect(there.received == 3, "\(there.output)")
            let back = try ping(from: bed.containerB, TwoHostBed.containerAddressA, count: 3)
            #expect(back.received == 3, "\(back.output)")

            let report = try processA.stopAndReport()
            #expect(report["engine"] as? String == "kernel" && report["device"] as? String == "flannel.1", "\(report)")
            #expect(report["peers"] as? Int == 1 && report["entries_written"] as? Int == 3, "\(report)")
            let entries = try #require(report["entries"] as? [String: [String]], "\(report)")
            #expect(
                entries["neighbours"]?.count == 1 && entries["fdb"]?.count == 1 && entries["routes"]?.count == 1,
                "\(entries)"
            )
            // 3 requests and 3 replies each way crossed the device.
            let traffic = try #require(report["device_traffic"] as? [String: Int], "\(report)")
            #expect((traffic["tx_packets"] ?? 0) >= 6 && (traffic["rx_packets"] ?? 0) >= 6, "\(traffic)")
            // The command deletes the device it made, with its entries.
            let (gone, _) = try TwoHostBed.execute(bed.hostA, ["ip", "link", "show", "flannel.1"])
            #expect(gone != 0)
        }
    }

    static let refusals: [([String], String)] = [
        (["--vtep-mac", "02:00:c6:12:00:01"], "weft: --vxlan-dataplane kernel is for --backend vxlan only\n"),
        (
            ["--backend", "vxlan", "--vtep-mac", "02:00:c6:12:00:01", "--offloads"],
            "weft: --offloads is for Weft's engine; the kernel's vxlan device uses the kernel's own offloads\n"
        ),
        (
            ["--backend", "vxlan"],
            "weft: --backend vxlan needs --vtep-mac: the MAC this host's lease publishes as VtepMAC\n"
        ),
        (
            ["--backend", "vxlan", "--vtep-mac", "01:00:5e:00:00:01"],
            "weft: --vtep-mac 01:00:5e:00:00:01: give the VTEP a unicast MAC (flannel picks a random locally administered one)\n"
        ),
        (
            ["--backend", "vxlan", "--vtep-mac", "02:00:c6:12:00:01", "--peer", "10.244.2.0/24=198.18.0.2"],
            "weft: --peer 10.244.2.0/24=198.18.0.2: --backend vxlan needs the peer's VtepMAC (--peer 10.244.2.0/24=198.18.0.2,aa:bb:cc:dd:ee:ff)\n"
        ),
        (
            ["--backend", "vxlan", "--vtep-mac", "02:00:c6:12:00:01", "--public-ip", "192.0.2.77"],
            "weft: --public-ip 192.0.2.77 is not an address of any interface here; the kernel device takes its local address and underlay from the interface holding it\n"
        ),
    ]

    /// Each refused with one line before a device exists: none named weft-bad-kernel is left behind.
    @Test(arguments: refusals)
    func kernelArgumentsAreRefusedWithOneLine(_ extra: [String], _ expected: String) throws {
        let publicIP = extra.contains("--public-ip") ? [] : ["--public-ip", "127.0.0.1"]
        let (status, output) = try runWeft(
            [
                "dataplane", "--vxlan-dataplane", "kernel", "--network", "10.244.0.0/16", "--subnet", "10.244.1.0/24",
                "--tun", "weft-bad-kernel",
            ] + publicIP + extra
        )
        #expect(status == 1)
        #expect(output == expected)
        #expect(!FileManager.default.fileExists(atPath: "/sys/class/net/weft-bad-kernel"))
    }
}
