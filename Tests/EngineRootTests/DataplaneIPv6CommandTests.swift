import Addressing
import Engine
import Foundation
import TestThreads
import Testing

/// `weft dataplane` carrying inner IPv6 over the IPv4 underlay, as the harness's IPv6 rows run it:
/// --ipv6-network, --ipv6-subnet and --ipv6-peer beside the IPv4 flags, ping -6 between two
/// containers, and the one-line refusals of IPv6 flags that do not fit together.
@Suite(
    .ownThread,
    .weftDataplaneRuns,
    .serialized,
    .timeLimit(.minutes(1))
)
struct DataplaneIPv6CommandTests {
    @Test(arguments: ["udp", "vxlan"])
    func containersPing6ThroughWeftDataplane(backend: String) throws {
        try TwoHostBed.with { bed in
            try bed.enableIPv6()
            if backend == "vxlan" { try bed.useVXLANMTU() }
            func dataplane(_ host: TestNamespace, isA: Bool) throws -> NamespaceProcess {
                let (n, other, otherMAC) = isA ? (1, 2, TwoHostBed.macB) : (2, 1, TwoHostBed.macA)
                let vxlan = backend == "vxlan"
                let mac = vxlan ? ",\(otherMAC)" : ""
                return try NamespaceProcess(
                    host,
                    [
                        weftExecutable!, "dataplane", "--engine", "mmsg", "--network", "10.244.0.0/16",
                        "--subnet", "10.244.\(n).0/24", "--public-ip", "198.18.0.\(n)",
                        "--peer", "10.244.\(other).0/24=198.18.0.\(other)\(mac)",
                        "--ipv6-network", "fc00::/48", "--ipv6-subnet", "fc00:0:0:\(n)::/64",
                        "--ipv6-peer", "fc00:0:0:\(other)::/64=198.18.0.\(other)\(mac)",
                    ]
                        + (vxlan
                            ? ["--backend", "vxlan", "--vtep-mac", "\(isA ? TwoHostBed.macA : TwoHostBed.macB)"]
                            : [])
                )
            }
            let processA = try dataplane(bed.hostA, isA: true)
            defer { processA.stop() }
            let processB = try dataplane(bed.hostB, isA: false)
            defer { processB.stop() }
            #expect(processA.readLine(milliseconds: 20_000) == "ready engine=mmsg workers=1")
            #expect(processB.readLine(milliseconds: 20_000) == "ready engine=mmsg workers=1")

            let device = backend == "vxlan" ? "flannel.1" : "flannel0"
            let (_, address) = try TwoHostBed.execute(bed.hostA, ["ip", "-6", "addr", "show", device])
            #expect(address.contains("inet6 fc00:0:0:1::/128"), "\(address)")
            let (_, route) = try TwoHostBed.execute(bed.hostA, ["ip", "-6", "route", "show", "dev", device])
            #expect(route.contains("fc00::/48"), "\(route)")

            let there = try ping(from: bed.containerA, TwoHostBed.ipv6ContainerB, count: 5)
            #expect(there.received == 5, "\(there.output)")
            let back = try ping(from: bed.containerB, TwoHostBed.ipv6ContainerA, count: 5)
            #expect(back.received == 5, "\(back.output)")
            // IPv4 crosses the same dataplane.
            let ipv4 = try ping(from: bed.containerA, TwoHostBed.containerAddressB, count: 2)
            #expect(ipv4.received == 2, "\(ipv4.output)")

            let report = try processA.stopAndReport()
            // A sent 5 echo requests and 5 replies over IPv6 (104 bytes: 40 + 8 + 56) and 2 IPv4
            // requests (84 bytes) to B, and received as many; vxlan adds 22 bytes of VXLAN and inner
            // Ethernet to each.
            let framing = backend == "vxlan" ? 22 : 0
            let bytes = 10 * (104 + framing) + 2 * (84 + framing)
            let peer = try #require((report["peers"] as? [String: [String: Int]])?["198.18.0.2"], "\(report)")
            #expect(peer["sent_packets"] == 12 && peer["received_packets"] == 12, "\(peer)")
            #expect(peer["sent_bytes"] == bytes && peer["received_bytes"] == bytes, "\(peer)")
            let drops = try #require(report["drops"] as? [String: Int])
            #expect(drops["spoofed_source"] == 0 && drops["not_our_subnet"] == 0, "\(drops)")
        }
    }

    static let refusals: [([String], String)] = [
        (
            ["--ipv6-network", "fc00::/48"],
            "weft: --ipv6-network needs --ipv6-subnet: this host's IPv6 lease, as fc00:0:0:1::/64\n"
        ),
        (
            ["--ipv6-subnet", "fc00:0:0:1::/64"],
            "weft: --ipv6-subnet needs --ipv6-network: flannel's IPv6Network, as fc00::/48\n"
        ),
        (
            ["--ipv6-peer", "fc00:0:0:2::/64=198.18.0.2"],
            "weft: --ipv6-peer needs --ipv6-network and --ipv6-subnet: this host's IPv6 half\n"
        ),
        (
            [
                "--ipv6-network", "fc00::/48", "--ipv6-subnet", "fc00:0:0:1::/64", "--ipv6-peer",
                "fc00:0:0:2::/64=198.18.0.2,02:00:c6:12:00:02",
            ],
            "weft: --ipv6-peer fc00:0:0:2::/64=198.18.0.2,02:00:c6:12:00:02: a VtepMAC is for --backend vxlan only\n"
        ),
        (
            [
                "--backend", "vxlan", "--vtep-mac", "02:00:c6:12:00:01", "--ipv6-network", "fc00::/48",
                "--ipv6-subnet", "fc00:0:0:1::/64", "--ipv6-peer", "fc00:0:0:2::/64=198.18.0.2",
            ],
            "weft: --ipv6-peer fc00:0:0:2::/64=198.18.0.2: --backend vxlan needs the peer's VtepMAC (--ipv6-peer fc00:0:0:2::/64=198.18.0.2,aa:bb:cc:dd:ee:ff)\n"
        ),
        (
            ["--ipv6-network", "fc00::/48", "--ipv6-subnet", "fc00:1::/64"],
            "weft: engine configuration IPv6 subnet fc00:1::/64 lies outside the IPv6 network fc00::/48: Invalid argument (errno 22)\n"
        ),
        (
            [
                "--backend", "vxlan", "--vxlan-dataplane", "kernel", "--vtep-mac", "02:00:c6:12:00:01",
                "--ipv6-network", "fc00::/48", "--ipv6-subnet", "fc00:0:0:1::/64",
            ],
            "weft: --ipv6-network, --ipv6-subnet and --ipv6-peer are for Weft's engine (--vxlan-dataplane weft); this kernel device carries IPv4\n"
        ),
        (
            ["--peer", "10.244.2.0/24=198.18.0.2,[2001:db8::2]"],
            "weft: --peer 10.244.2.0/24: an IPv6 underlay address ([2001:db8::2]) is for --ipv6-peer\n"
        ),
        (
            [
                "--ipv6-network", "fc00::/48", "--ipv6-subnet", "fc00:0:0:1::/64", "--ipv6-peer",
                "fc00:0:0:2::/64=198.18.0.2,[2001:db8::2]",
            ],
            "weft: --ipv6-peer fc00:0:0:2::/64: an IPv6 underlay ([2001:db8::2]) is for --backend vxlan only\n"
        ),
        (
            ["--ipv6-network", "fc00::/48", "--ipv6-subnet", "fc00:0:0:1::/64", "--public-ipv6", "2001:db8::1"],
            "weft: engine configuration public IPv6 2001:db8::1 with backend udp: flannel's udp is IPv4-only; drop the IPv6 underlay: Invalid argument (errno 22)\n"
        ),
        (
            ["--backend", "vxlan", "--vtep-mac", "02:00:c6:12:00:01", "--public-ipv6", "2001:db8::1"],
            "weft: engine configuration public IPv6 2001:db8::1 without an IPv6 subnet: give the IPv6 network and subnet too: Invalid argument (errno 22)\n"
        ),
    ]

    /// Each refused with one line before a device exists: none named weft-bad-ipv6 is left behind.
    @Test(arguments: refusals)
    func ipv6ArgumentsAreRefusedWithOneLine(_ extra: [String], _ expected: String) throws {
        let (status, output) = try runWeft(
            [
                "dataplane", "--network", "10.244.0.0/16", "--subnet", "10.244.1.0/24", "--public-ip", "127.0.0.1",
                "--engine", "mmsg", "--tun", "weft-bad-ipv6",
            ] + extra
        )
        #expect(status == 1)
        #expect(output == expected)
        #expect(!FileManager.default.fileExists(atPath: "/sys/class/net/weft-bad-ipv6"))
    }
}
