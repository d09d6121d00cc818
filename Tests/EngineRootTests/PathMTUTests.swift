import Addressing
import Engine
import Foundation
import Packets
import Synchronization
import Testing

/// A router with a smaller MTU between the hosts (RouterBed, path MTU 1400, interfaces and TUNs
/// at 1500 − 28): once the kernel has learned the path MTU, TCP keeps flowing whole with the
/// engine's sends no longer refused, a DF packet too large for the path is answered with ICMP
/// fragmentation needed naming 1400 − 28, the path MTU is logged once per peer and counted. With
/// offloads (UDP_SEGMENT sends, refused with EMSGSIZE before this was handled: TCP stalled), packet
/// by packet, and on the recvmmsg/sendmmsg engine.
extension EngineForwardingTests {
    static let pathCases: [(EngineKind, Bool)] = [(.uring, true), (.uring, false), (.mmsg, false)]

    @Test(
        .enabled(if: Engine.uringUnavailable == nil, "io_uring engine: \(Engine.uringUnavailable?.description ?? "")"),
        arguments: pathCases
    )
    func smallerPathMTUIsLearnedAnsweredAndCut(kind: EngineKind, offloads: Bool) throws {
        let linesA = LogLines()
        let linesB = LogLines()
        try RouterBed.with { bed in
            let engineA = try bed.startEngine(in: bed.hostA, kind: kind, offloads: offloads) { linesA.append($0) }
            defer { engineA.stop() }
            let engineB = try bed.startEngine(in: bed.hostB, kind: kind, offloads: offloads) { linesB.append($0) }
            defer { engineB.stop() }
            let name = "\(kind.rawValue)\(offloads ? " with offloads" : "")"
            let innerMTU = RouterBed.pathMTU - 28

            for (from, to) in [
                (bed.containerA, TwoHostBed.containerAddressB), (bed.containerB, TwoHostBed.containerAddressA),
            ] {
                let small = try ping(from: from, to, count: 3)
                #expect(small.received == 3, "\(name): \(small.output)")
            }

            // A → B first, while neither container knows the path: full-sized segments (super-
            // packets with offloads) meet the path MTU the kernel learns from the router.
            let forward = try TCPTransfer.run(
                from: bed.containerA,
                to: bed.containerB,
                address: TwoHostBed.containerAddressB,
                byteCount: 20 << 20,
                timeout: 60
            )
            #expect(forward.isComplete, "\(name) A → B: \(forward)")

            // B has sent nothing large yet. 1400 bytes of ICMP payload: a 1428-byte packet, within
            // the container's 1472, beyond the path's 1372. The first leaves before B's kernel
            // knows and the router answers the host; the next meets the learned path MTU and is
            // answered into the container (the one after fails in the container's own kernel).
            let (_, tooBig) = try TwoHostBed.execute(
                bed.containerB,
                [
                    "ping", "-n", "-M", "do", "-s", "1400", "-c", "3", "-i", "0.3",
                    "-W", "1", "\(TwoHostBed.containerAddressA)",
                ]
            )
            #expect(tooBig.contains("Frag needed and DF set (mtu = \(innerMTU))"), "\(name): \(tooBig)")
            let fits = try TwoHostBed.execute(
                bed.containerB,
                [
                    "ping", "-n", "-M", "do", "-s", "\(innerMTU - 28)", "-c", "2", "-i", "0.3",
                    "-W", "1", "\(TwoHostBed.containerAddressA)",
                ]
            )
            #expect(
                PingResult(output: fits.1).received == 2,
                "\(name): a DF packet of exactly \(innerMTU) bytes: \(fits.1)"
            )
            let reverse = try TCPTransfer.run(
                from: bed.containerB,
                to: bed.containerA,
                address: TwoHostBed.containerAddressA,
                byteCount: 20 << 20,
                timeout: 60
            )
            #expect(reverse.isComplete, "\(name) B → A: \(reverse)")

            let learned = (engineA.counters.snapshot(), engineB.counters.snapshot())
            #expect(learned.0.peers[RouterBed.publicB]?.pathMTU == RouterBed.pathMTU, "\(name): A's path MTU to B")
            #expect(learned.1.peers[RouterBed.publicA]?.pathMTU == RouterBed.pathMTU, "\(name): B's path MTU to A")
            for (statistics, host) in [(learned.0, "A"), (learned.1, "B")] {
                // A answered its container's full-sized segments, B the ping.
                #expect(
                    statistics[.fragmentationNeededSent] >= 1 && statistics[.pathMTUUpdates] >= 1,
                    "\(name) \(host)"
                )
            }
            #expect(learned.1.drops[.exceedsPathMTU] >= 1, "\(name)")

            // Learned: another 20 MB meets no refused send.
            let started = ContinuousClock.now
            let again = try TCPTransfer.run(
                from: bed.containerA,
                to: bed.containerB,
                address: TwoHostBed.containerAddressB,
                byteCount: 20 << 20,
                timeout: 60
            )
            let elapsed = ContinuousClock.now - started
            #expect(again.isComplete, "\(name): \(again)")
            print("path MTU \(RouterBed.pathMTU), \(name): 20 MB A → B in \(elapsed)")
            let after = (engineA.counters.snapshot(), engineB.counters.snapshot())
            #expect(
                after.0[.sendErrors] == learned.0[.sendErrors] && after.1[.sendErrors] == learned.1[.sendErrors],
                "\(name): send errors grew after learning: A \(learned.0[.sendErrors]) → \(after.0[.sendErrors]), B \(learned.1[.sendErrors]) → \(after.1[.sendErrors])"
            )

            let statistics = after.0
            if offloads {
                // Super-packets cut to the path's MSS rather than the containers' 1432.
                #expect(statistics[.pathMTULimitedSends] >= 1, "\(name)")
            }
            for (statistics, host) in [(after.0, "A"), (after.1, "B")] {
                let otherDrops = statistics.drops.nonZero.filter { $0.0 != .exceedsPathMTU }
                #expect(otherDrops.isEmpty, "\(name) \(host): \(otherDrops)")
            }
            #expect(engineA.workerFailures.isEmpty && engineB.workerFailures.isEmpty)

            for (lines, peer) in [(linesA, RouterBed.publicB), (linesB, RouterBed.publicA)] {
                let logged = lines.matching("path MTU to \(peer) ")
                #expect(logged.count == 1, "\(name): \(logged)")
                #expect(
                    logged.first?.contains("is \(RouterBed.pathMTU)") == true
                        && logged.first?.contains("FLANNEL_MTU / the pod MTU to \(innerMTU)") == true,
                    "\(name): \(logged)"
                )
            }
        }
    }
}

/// An engine's log lines, kept for the test to read.
final class LogLines: Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    func matching(_ text: String) -> [String] { lines.withLock { $0.filter { $0.contains(text) } } }
}
