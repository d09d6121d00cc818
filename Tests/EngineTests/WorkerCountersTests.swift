import Addressing
import Engine
import Foundation
import Packets
import Testing

/// Counters need no kernel: these run unprivileged.
struct WorkerCountersTests {
    @Test func dropsTrafficAndPeersSumAcrossWorkers() {
        let counters = EngineCounters(workerCount: 2)
        let first = counters.workers[0]
        let second = counters.workers[1]
        first.countDrop(.unknownSender)
        second.countDrop(.unknownSender, by: 4)
        second.countDrop(.ttlExpired)
        first.count(.wireSentPackets, by: 3)
        second.count(.wireSentPackets)
        let peer = IPv4Address(198, 18, 0, 2)
        first.countSent(to: peer, bytes: 100)
        second.countSent(to: peer, bytes: 50)
        second.countReceived(from: peer, bytes: 7)

        let statistics = counters.snapshot()
        #expect(statistics.drops[.unknownSender] == 5)
        #expect(statistics.drops[.ttlExpired] == 1)
        #expect(statistics.drops.total == 6)
        #expect(statistics[.wireSentPackets] == 4)
        #expect(statistics[.tunReadPackets] == 0)
        #expect(
            statistics.peers == [
                peer: PeerTraffic(sentPackets: 2, sentBytes: 150, receivedPackets: 1, receivedBytes: 7)
            ]
        )
    }

    @Test func everyTrafficCounterHasItsOwnWord() {
        let counters = EngineCounters(workerCount: 1)
        for counter in WorkerCounters.Traffic.allCases {
            counters.workers[0].count(counter, by: UInt64(counter.rawValue + 1))
        }
        let statistics = counters.snapshot()
        for counter in WorkerCounters.Traffic.allCases {
            #expect(statistics[counter] == UInt64(counter.rawValue + 1), "\(counter)")
        }
        #expect(statistics.unattributed == PeerTraffic(), "a traffic counter ran into the overflow slot")
        #expect(statistics.peers.isEmpty && statistics.drops.total == 0)
        #expect(Set(WorkerCounters.Traffic.allCases.map(\.description)).count == WorkerCounters.Traffic.allCases.count)
    }

    @Test func peersBeyondCapacityAreCountedAsUnattributedNotLost() {
        let counters = EngineCounters(workerCount: 1)
        let worker = counters.workers[0]
        let extra = 10
        for host in 0..<(WorkerCounters.peerCapacity + extra) {
            worker.countSent(to: IPv4Address(198, 18, UInt8(host >> 8), UInt8(host & 0xFF)), bytes: 1)
        }
        let statistics = counters.snapshot()
        #expect(statistics.peers.count == WorkerCounters.peerCapacity)
        #expect(statistics.peers.values.allSatisfy { $0.sentPackets == 1 })
        #expect(statistics.unattributed.sentPackets == UInt64(extra))
        // The address 0.0.0.0 must not collide with the empty-slot marker.
        worker.countReceived(from: IPv4Address(0), bytes: 1)
        #expect(counters.snapshot().unattributed.receivedPackets == 1)
    }

    @Test func readersSeeMonotonicCountsWhileTheWorkerWrites() async {
        let counters = EngineCounters(workerCount: 1)
        let total = 200_000
        let writer = Thread {
            let worker = counters.workers[0]
            for _ in 0..<total { worker.count(.tunReadPackets) }
        }
        writer.start()
        var last: UInt64 = 0
        var regressions = 0
        while last < UInt64(total) {
            let now = counters.snapshot()[.tunReadPackets]
            if now < last { regressions += 1 }
            last = now
            await Task.yield()
        }
        #expect(regressions == 0)
        #expect(last == UInt64(total))
    }
}
