import Addressing
import CShims
import Engine
import Foundation
import Glibc
import Packets
import Routes
import TestSupport
import TestThreads
import Testing

/// Both I/O loops on the two-host bed: pings cross, unrouted traffic gets ICMP net unreachable,
/// strangers and spoofers are counted and never delivered, a garbage flood is fully accounted for.
@Suite(
    .ownThread,
    .enabled(if: TestNamespace.missing == nil, "\(TestNamespace.missing ?? "")"),
    .serialized,
    .timeLimit(.minutes(1))
)
struct EngineForwardingTests {
    @Test func mmsgEngineForwardsAndDrops() throws {
        try exercise(.mmsg)
    }

    @Test(
        .enabled(if: Engine.uringUnavailable == nil, "io_uring engine: \(Engine.uringUnavailable?.description ?? "")")
    )
    func uringEngineForwardsAndDrops() throws {
        try exercise(.uring)
    }

    private func exercise(_ kind: EngineKind) throws {
        try TwoHostBed.with { bed in
            // Two workers on A: two TUN queues, two sockets sharing the port, counters summed.
            let engineA = try bed.startEngine(in: bed.hostA, kind: kind, workers: 2)
            defer { engineA.stop() }
            let engineB = try bed.startEngine(in: bed.hostB, kind: kind)
            defer { engineB.stop() }
            #expect(engineA.kind == kind)
            #expect(engineB.kind == kind)

            try pingsCrossBothWays(bed, kind: kind)
            // IPv4 only: the engine turns IPv6 off on its TUN, so the kernel sends it no RS/MLD.
            let (v6Status, v6) = try TwoHostBed.execute(
                bed.hostA,
                ["cat", "/proc/sys/net/ipv6/conf/flannel0/disable_ipv6"]
            )
            #expect(
                v6Status == 0 && v6.trimmingCharacters(in: .whitespacesAndNewlines) == "1",
                "disable_ipv6 on flannel0: \(v6)"
            )
            try unroutedDestinationIsNetUnreachable(bed, engineA)
            try ttlIsDecrementedOnBothSides(bed, engineA, engineB)
            try strangersAndSpoofersAreCountedNotDelivered(bed, engineA)
            try garbageFloodIsAccountedForWhilePingLosesNothing(bed, engineA)
            try publishedTablesTakeEffectAndOldOnesAreFreed(bed, engineA)

            let stopping = ContinuousClock.now
            engineA.stop()
            // Workers look at the stop flag every idle wait (100 ms); fifty of them tolerate a
            // loaded machine and still catch a worker blocked without a timeout.
            #expect(
                ContinuousClock.now - stopping < WorkerSetup.idleWait * 50,
                "stop() took \(ContinuousClock.now - stopping)"
            )
            #expect(engineA.workerFailures.isEmpty, "\(engineA.workerFailures)")
            let (status, _) = try TwoHostBed.execute(bed.hostA, ["ip", "link", "show", "flannel0"])
            #expect(status != 0, "flannel0 outlived stop()")
        }
    }

    /// The control plane's path: a table without B's subnet makes A answer net unreachable; the
    /// table with it back restores the path. Replaced tables are freed once the workers passed a
    /// quiescent point (they do at least every idle wait).
    private func publishedTablesTakeEffectAndOldOnesAreFreed(_ bed: TwoHostBed, _ engine: Engine) throws {
        let configuration = engine.configuration
        func publish(_ routes: [Route], generation: UInt64) {
            engine.publisher.publish(
                RouteSnapshot(
                    routes: routes,
                    network: configuration.network,
                    subnetLength: configuration.subnetLength,
                    localSubnet: configuration.localSubnet,
                    generation: generation
                )
            )
        }
        let routeToB = Route(
            subnet: TwoHostBed.subnetB,
            nextHop: NextHop(publicIP: TwoHostBed.publicB, port: TwoHostBed.port, backend: .udp)
        )
        publish([], generation: 1)
        let cutOff = try ping(from: bed.containerA, TwoHostBed.containerAddressB, count: 1)
        #expect(cutOff.output.contains("Destination Net Unreachable"), "\(cutOff.output)")
        publish([routeToB], generation: 2)
        let restored = try ping(from: bed.containerA, TwoHostBed.containerAddressB, count: 2)
        #expect(restored.received == 2, "\(restored.output)")

        Thread.sleep(forTimeInterval: 0.25)  // over two idle waits: every worker passed a quiescent point
        engine.publisher.reclaim()
        let statistics = engine.publisher.statistics
        #expect(statistics.published == 2)
        #expect(statistics.readers == configuration.workers)
        #expect(statistics.awaitingReclamation == 0, "\(statistics)")
        #expect(engine.publisher.withCurrent { $0.generation } == 2)
    }

    private func pingsCrossBothWays(_ bed: TwoHostBed, kind: EngineKind) throws {
        let there = try ping(from: bed.containerA, TwoHostBed.containerAddressB, count: 5)
        #expect(there.transmitted == 5 && there.received == 5, "\(there.output)")
        let back = try ping(from: bed.containerB, TwoHostBed.containerAddressA, count: 5)
        #expect(back.transmitted == 5 && back.received == 5, "\(back.output)")
        print("engine \(kind.rawValue): ping RTT avg A→B \(there.averageRTT ?? -1) ms, B→A \(back.averageRTT ?? -1) ms")
    }

    private func unroutedDestinationIsNetUnreachable(_ bed: TwoHostBed, _ engine: Engine) throws {
        let before = engine.counters.snapshot()
        let result = try ping(from: bed.containerA, IPv4Address(10, 244, 99, 1), count: 1)
        #expect(result.received == 0)
        // The reply comes from the TUN's address, as flannel's proxy sends it.
        #expect(result.output.contains("From 10.244.1.0 icmp_seq=1 Destination Net Unreachable"), "\(result.output)")
        // The worker counts the reply after writing it, so ping may have it first.
        _ = waitUntil { engine.counters.snapshot()[.icmpReplies] > before[.icmpReplies] }
        let after = engine.counters.snapshot()
        #expect(after[.icmpReplies] - before[.icmpReplies] == 1)
        #expect(after.drops[.noRoute] - before.drops[.noRoute] == 1)
        #expect(after[.wireSentPackets] == before[.wireSentPackets])
    }

    /// flannel's udp backend decrements the TTL on each side. A ping leaving container A with
    /// TTL 2 reaches A's TUN with 1 (hostA forwarded it) and dies in A's engine; with TTL 3 it
    /// leaves A with 1 and dies in B's; with TTL 5 it arrives (B's engine leaves 2 for hostB).
    private func ttlIsDecrementedOnBothSides(_ bed: TwoHostBed, _ engineA: Engine, _ engineB: Engine) throws {
        func ttlDrops() -> (UInt64, UInt64) {
            (engineA.counters.snapshot().drops[.ttlExpired], engineB.counters.snapshot().drops[.ttlExpired])
        }
        func pingWithTTL(_ ttl: Int) throws -> PingResult {
            let (_, output) = try TwoHostBed.execute(
                bed.containerA,
                ["ping", "-n", "-c", "1", "-W", "1", "-t", "\(ttl)", "\(TwoHostBed.containerAddressB)"]
            )
            return PingResult(output: output)
        }
        let start = ttlDrops()
        #expect(try pingWithTTL(2).received == 0)
        #expect(ttlDrops() == (start.0 + 1, start.1))
        #expect(try pingWithTTL(3).received == 0)
        #expect(ttlDrops() == (start.0 + 1, start.1 + 1))
        let arrives = try pingWithTTL(5)
        #expect(arrives.received == 1, "\(arrives.output)")
        #expect(ttlDrops() == (start.0 + 1, start.1 + 1))
    }

    /// Four datagrams at A for container A's UDP port 9999, each carrying a well-formed inner
    /// packet: from the stranger (no lease), from B with an inner source outside B's subnet, from B
    /// but longer than the TUN MTU, and from B legitimately. Only the last arrives; the others are
    /// counted by reason.
    private func strangersAndSpoofersAreCountedNotDelivered(_ bed: TwoHostBed, _ engine: Engine) throws {
        let listener = try bed.containerA.enter { try openUDP(TwoHostBed.containerAddressA, port: 9999) }
        defer { close(listener) }
        // The previous step's last ping reply may not be counted yet (a TUN write is counted after
        // the ping has its reply): start once the count has held still for 100 ms.
        var before = engine.counters.snapshot()
        _ = waitUntil(timeout: .milliseconds(2000)) {
            usleep(100_000)
            let now = engine.counters.snapshot()
            defer { before = now }
            return now[.tunWrittenPackets] == before[.tunWrittenPackets]
        }

        let fromStranger = ipv4UDPPacket(
            source: TwoHostBed.containerAddressB,
            destination: TwoHostBed.containerAddressA,
            port: 9999,
            payload: Array("stranger".utf8)
        )
        try bed.stranger.enter {
            let fd = try openUDP(TwoHostBed.publicStranger)
            defer { close(fd) }
            try sendUDP(fd, fromStranger, to: TwoHostBed.publicA, port: TwoHostBed.port)
        }
        let spoofed = ipv4UDPPacket(
            source: IPv4Address(10, 244, 7, 7),
            destination: TwoHostBed.containerAddressA,
            port: 9999,
            payload: Array("spoofed".utf8)
        )
        let oversize = ipv4UDPPacket(
            source: TwoHostBed.containerAddressB,
            destination: TwoHostBed.containerAddressA,
            port: 9999,
            payload: Array(repeating: 0x0F, count: 1472)
        )
        let legitimate = ipv4UDPPacket(
            source: TwoHostBed.containerAddressB,
            destination: TwoHostBed.containerAddressA,
            port: 9999,
            payload: Array("legitimate".utf8)
        )
        try bed.hostB.enter {
            let fd = try openUDP(TwoHostBed.publicB)
            defer { close(fd) }
            try sendUDP(fd, spoofed, to: TwoHostBed.publicA, port: TwoHostBed.port)
            // Longer than the TUN MTU (1472): no peer with the same MTU sends it; it arrives truncated.
            try sendUDP(fd, oversize, to: TwoHostBed.publicA, port: TwoHostBed.port)
            try sendUDP(fd, legitimate, to: TwoHostBed.publicA, port: TwoHostBed.port)
        }

        // The legitimate one proves the path works; the others, sent first, would have arrived first.
        let first = receiveUDP(listener, milliseconds: 20_000)
        #expect(first.map { String(decoding: $0.payload, as: UTF8.self) } == "legitimate")
        #expect(first?.sender == TwoHostBed.containerAddressB)
        #expect(receiveUDP(listener, milliseconds: 300) == nil, "a stranger's or spoofed packet was delivered")

        // The worker counts a TUN write after making it, so the listener may have the packet first.
        _ = waitUntil { engine.counters.snapshot()[.tunWrittenPackets] > before[.tunWrittenPackets] }
        let after = engine.counters.snapshot()
        #expect(after.drops[.unknownSender] - before.drops[.unknownSender] == 1)
        #expect(after.drops[.spoofedSource] - before.drops[.spoofedSource] == 1)
        #expect(after.drops[.oversize] - before.drops[.oversize] == 1)
        #expect(after.drops.total - before.drops.total == 3)
        #expect(after[.tunWrittenPackets] - before[.tunWrittenPackets] == 1)
        let fromB =
            (after.peers[TwoHostBed.publicB]?.receivedPackets ?? 0)
            - (before.peers[TwoHostBed.publicB]?.receivedPackets ?? 0)
        #expect(fromB == 1)
        #expect(after.peers[TwoHostBed.publicStranger] == nil)
    }

    /// 100,000 datagrams from the stranger, in four kinds: well-formed inner packets, random bytes,
    /// random bytes behind an IPv4 version nibble, and random bytes behind a 0x45 with a total
    /// length near the datagram's. `expectedDrop` says independently what each must be dropped
    /// for; every one that reached the socket is counted under that reason, the rest are the
    /// kernel's RcvbufErrors. A ping between the containers meanwhile loses nothing.
    private func garbageFloodIsAccountedForWhilePingLosesNothing(_ bed: TwoHostBed, _ engine: Engine) throws {
        let datagrams = 100_000
        let before = engine.counters.snapshot()
        let overflowBefore = try TwoHostBed.receiveBufferErrors(bed.hostA)

        let pinger = try NamespaceProcess(
            bed.containerA,
            ["ping", "-n", "-c", "40", "-i", "0.05", "-W", "1", "\(TwoHostBed.containerAddressB)"]
        )
        defer { pinger.stop() }
        let expected = try sendGarbageFlood(bed, datagrams: datagrams)
        let (_, pingOutput) = pinger.finish()
        let pingResult = PingResult(output: pingOutput)
        #expect(pingResult.transmitted == 40 && pingResult.received == 40, "\(pingOutput)")

        // Let the workers drain the socket, then account.
        var after = engine.counters.snapshot()
        var overflow: UInt64 = 0
        // Drained within milliseconds normally; the bound only ends a hang, so it is generous.
        let deadline = Date().addingTimeInterval(60)
        repeat {
            Thread.sleep(forTimeInterval: 0.05)
            after = engine.counters.snapshot()
            overflow = try TwoHostBed.receiveBufferErrors(bed.hostA) - overflowBefore
        } while after.drops.total - before.drops.total < UInt64(datagrams) - overflow && Date() < deadline

        let dropped = after.drops.total - before.drops.total
        #expect(dropped == UInt64(datagrams) - overflow, "dropped \(dropped), overflowed \(overflow) of \(datagrams)")
        #expect(expected.count >= 5, "the flood exercises most reasons: \(expected)")
        for reason in DropReason.allCases {
            let counted = after.drops[reason] - before.drops[reason]
            let sent = expected[reason] ?? 0
            // Without overflow each reason is exact; with it, no reason may exceed what was sent.
            if overflow == 0 {
                #expect(counted == sent, "\(reason): counted \(counted), sent \(sent)")
            } else {
                #expect(counted <= sent && counted + overflow >= sent, "\(reason): counted \(counted), sent \(sent)")
            }
        }
        let accepted =
            (after.peers[TwoHostBed.publicB]?.receivedPackets ?? 0)
            - (before.peers[TwoHostBed.publicB]?.receivedPackets ?? 0)
        #expect(after[.wireReceivedPackets] - before[.wireReceivedPackets] == dropped + accepted)
        #expect(accepted >= 40, "the pings' replies crossed")
        // Memory over a flood is checked on a `weft dataplane` process of its own
        // (DataplaneCommandTests): this process's RSS also holds every suite running beside this one.
        print(
            "flood: \(datagrams) datagrams, \(dropped) dropped by reason \(expected.map { "\($0.key)=\($0.value)" }.sorted()), "
                + "\(overflow) socket-buffer overflows"
        )
    }
}

/// Sends `datagrams` of TestSupport's GarbageFlood from the stranger to host A's port and returns
/// how many each reason must drop. The same seed every call: two floods are the same datagrams.
func sendGarbageFlood(_ bed: TwoHostBed, datagrams: Int) throws -> [DropReason: UInt64] {
    try bed.stranger.enter { () throws -> [DropReason: UInt64] in
        let fd = try openUDP(TwoHostBed.publicStranger)
        defer { close(fd) }
        var flood = GarbageFlood(
            seed: 0x5EED_F100D,
            valid: ipv4UDPPacket(
                source: IPv4Address(10, 244, 2, 9),
                destination: TwoHostBed.containerAddressA,
                port: 9999,
                payload: Array(repeating: 0xAB, count: 32)
            )
        )
        var expected: [DropReason: UInt64] = [:]
        for _ in 0..<datagrams {
            let bytes = Array(flood.next())
            expected[expectedDrop(bytes), default: 0] += 1
            try sendUDP(fd, bytes, to: TwoHostBed.publicA, port: TwoHostBed.port)
        }
        return expected
    }
}

/// GarbageFlood's reason for `bytes`, as this target's counters key it.
func expectedDrop(_ bytes: [UInt8]) -> DropReason {
    let name = GarbageFlood.expectedDrop(bytes[...])
    return DropReason.allCases.first { "\($0)" == name }!
}
