import Addressing
import Engine
import Foundation
import TestThreads
import Testing

/// `weft dataplane` as the benchmark harness runs it: the ready line, SIGTERM, the JSON counters,
/// the TUN gone afterwards. Batch size 1 on both hosts: one packet per syscall still forwards.
@Suite(
    .ownThread,
    .weftDataplaneRuns,
    .serialized,
    .timeLimit(.minutes(1))
)
struct DataplaneCommandTests {
    @Test func batchOfOneForwardsAndReportsCountersOnSIGTERM() throws {
        try TwoHostBed.with { bed in
            func dataplane(
                _ host: TestNamespace,
                subnet: String,
                publicIP: IPv4Address,
                peer: String
            ) throws -> NamespaceProcess {
                try NamespaceProcess(
                    host,
                    [
                        weftExecutable!, "dataplane", "--tun", "flannel0", "--network", "10.244.0.0/16", "--subnet",
                        subnet,
                        "--public-ip", "\(publicIP)", "--port", "8285", "--engine", "mmsg", "--batch", "1", "--workers",
                        "1",
                        "--peer", peer, "--underlay-mtu", "1500",
                    ]
                )
            }
            let processA = try dataplane(
                bed.hostA,
                subnet: "10.244.1.0/24",
                publicIP: TwoHostBed.publicA,
                peer: "10.244.2.0/24=198.18.0.2"
            )
            defer { processA.stop() }
            let processB = try dataplane(
                bed.hostB,
                subnet: "10.244.2.0/24",
                publicIP: TwoHostBed.publicB,
                peer: "10.244.1.0/24=198.18.0.1"
            )
            defer { processB.stop() }
            #expect(processA.readLine(milliseconds: 20_000) == "ready engine=mmsg workers=1")
            #expect(processB.readLine(milliseconds: 20_000) == "ready engine=mmsg workers=1")

            let (_, link) = try TwoHostBed.execute(bed.hostA, ["ip", "-d", "link", "show", "flannel0"])
            #expect(link.contains("mtu 1472") && link.contains("multi_queue"), "\(link)")
            let (_, address) = try TwoHostBed.execute(bed.hostA, ["ip", "-4", "addr", "show", "flannel0"])
            #expect(address.contains("inet 10.244.1.0/32"), "\(address)")

            let there = try ping(from: bed.containerA, TwoHostBed.containerAddressB, count: 5)
            #expect(there.received == 5, "\(there.output)")
            let back = try ping(from: bed.containerB, TwoHostBed.containerAddressA, count: 5)
            #expect(back.received == 5, "\(back.output)")
            let unrouted = try ping(from: bed.containerA, IPv4Address(10, 244, 99, 1), count: 1)
            #expect(unrouted.output.contains("Destination Net Unreachable"), "\(unrouted.output)")
            print(
                "weft dataplane --batch 1: ping RTT avg A→B \(there.averageRTT ?? -1) ms, B→A \(back.averageRTT ?? -1) ms"
            )

            let report = try processA.stopAndReport()
            #expect(report["engine"] as? String == "mmsg")
            #expect(report["workers"] as? Int == 1)
            let drops = try #require(report["drops"] as? [String: Int])
            #expect(drops["no_route"] == 1)
            #expect(drops["unknown_sender"] == 0)
            #expect(drops.count >= 17, "every reason is present: \(drops.keys.sorted())")
            let traffic = try #require(report["traffic"] as? [String: Int])
            #expect(traffic["icmp_replies"] == 1)
            // A sent 5 requests and 5 replies to B, and received as many.
            let peer = try #require((report["peers"] as? [String: [String: Int]])?["198.18.0.2"], "\(report)")
            #expect(peer["sent_packets"] == 10 && peer["received_packets"] == 10, "\(peer)")
            #expect(peer["sent_bytes"] == 10 * 84 && peer["received_bytes"] == 10 * 84, "\(peer)")
            #expect(traffic["wire_sent_packets"] == 10 && traffic["wire_received_packets"] == 10)

            let (linkStatus, _) = try TwoHostBed.execute(bed.hostA, ["ip", "link", "show", "flannel0"])
            #expect(linkStatus != 0, "flannel0 outlived weft dataplane")
        }
    }

    /// A per-packet leak in either engine shows in the RSS of a `weft dataplane` of its own (the
    /// test process's RSS also holds every suite running beside this one). The first flood warms
    /// up (buffers touched, malloc's arenas at their working size); an identical second one must
    /// leave the RSS where it was: 100 bytes kept per datagram would be 10 MB, the limit is 1 MB.
    @Test(arguments: Engine.uringUnavailable == nil ? ["mmsg", "uring"] : ["mmsg"])
    func aFloodLeavesTheDataplanesMemoryWhereItWas(engine: String) throws {
        try TwoHostBed.with { bed in
            let dataplane = try NamespaceProcess(
                bed.hostA,
                [
                    weftExecutable!, "dataplane", "--tun", "flannel0", "--network", "10.244.0.0/16", "--subnet",
                    "10.244.1.0/24",
                    "--public-ip", "\(TwoHostBed.publicA)", "--port", "8285", "--engine", engine, "--workers", "1",
                    "--peer", "10.244.2.0/24=198.18.0.2", "--underlay-mtu", "1500",
                ]
            )
            defer { dataplane.stop() }
            try #require(dataplane.readLine(milliseconds: 20_000) == "ready engine=\(engine) workers=1")
            // `ip netns exec` execs the command: the pid is weft's own.
            let pid = dataplane.process.processIdentifier
            #expect((try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) == "weft\n")
            let datagrams = 100_000
            let overflowBefore = try TwoHostBed.receiveBufferErrors(bed.hostA)

            let expected = try sendGarbageFlood(bed, datagrams: datagrams)
            try waitUntilDrained(bed.hostA)
            let warm = try #require(residentBytes(of: pid))
            _ = try sendGarbageFlood(bed, datagrams: datagrams)
            try waitUntilDrained(bed.hostA)
            let flooded = try #require(residentBytes(of: pid))
            let overflow = try TwoHostBed.receiveBufferErrors(bed.hostA) - overflowBefore

            // The floods did reach the engine: every datagram the socket took was dropped by reason.
            let report = try dataplane.stopAndReport()
            let drops = try #require(report["drops"] as? [String: Int])
            #expect(
                UInt64(drops.values.reduce(0, +)) == UInt64(2 * datagrams) - overflow,
                "\(drops), overflowed \(overflow)"
            )
            if overflow == 0 {
                for (reason, count) in expected { #expect(drops[reason.description] == 2 * Int(count), "\(reason)") }
            }
            let growth = flooded - warm
            print(
                "weft dataplane --engine \(engine): RSS \(warm) bytes after a \(datagrams)-datagram flood, "
                    + "\(growth >= 0 ? "+" : "")\(growth) after a second, \(overflow) socket-buffer overflows"
            )
            #expect(growth < 1 << 20, "RSS grew \(growth) bytes over the second flood of \(datagrams) datagrams")
        }
    }

    @Test func badArgumentsFailWithOneLine() throws {
        let (status, output) = try runWeft([
            "dataplane", "--network", "10.244.0.0/16", "--subnet", "10.245.1.0/24", "--public-ip", "127.0.0.1",
            "--engine", "mmsg", "--tun", "weft-bad-args",
        ])
        #expect(status == 1)
        #expect(
            output
                == "weft: engine configuration subnet 10.245.1.0/24 lies outside the network 10.244.0.0/16: Invalid argument (errno 22)\n"
        )
    }
}

/// Waits until the udp backend's socket in `host` has nothing left to read (/proc/net/udp's
/// rx_queue for port 8285 is 0), so what follows sees every datagram processed.
func waitUntilDrained(_ host: TestNamespace) throws {
    let port = String(format: ":%04X", TwoHostBed.port)
    // Expected within milliseconds of the last send; the bound only ends a hang.
    let deadline = Date().addingTimeInterval(60)
    while Date() < deadline {
        let (_, table) = try TwoHostBed.execute(host, ["cat", "/proc/net/udp"])
        let queued = table.split(separator: "\n").dropFirst().compactMap { line -> Int? in
            let fields = line.split(separator: " ")
            guard fields.count > 4, fields[1].hasSuffix(port) else { return nil }
            return Int(fields[4].split(separator: ":")[1], radix: 16)
        }
        guard !queued.isEmpty else {
            throw TestFailure("no socket on port \(TwoHostBed.port) in /proc/net/udp: \(table)")
        }
        if queued.allSatisfy({ $0 == 0 }) { return }
        Thread.sleep(forTimeInterval: 0.05)
    }
    throw TestFailure("the socket on port \(TwoHostBed.port) still held datagrams after 60 s")
}
