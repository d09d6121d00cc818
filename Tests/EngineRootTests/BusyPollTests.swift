import Engine
import Foundation
import TestSupport
import TestThreads
import Testing

/// --busy-poll on the two-host bed, both I/O loops. Host A's workers poll for the longest budget,
/// host B's sleep as soon as they run out of work. Pings 10 ms apart cross both; B sleeps about
/// once per ping, while A, whose budget outlasts the gap, sleeps only while nothing has come yet:
/// one idle wait per `WorkerSetup.idleWait` (the wait's timeout) until the first packet, none after.
@Suite(
    .ownThread,
    .enabled(if: TestNamespace.missing == nil, "\(TestNamespace.missing ?? "")"),
    .serialized,
    .timeLimit(.minutes(1))
)
struct BusyPollTests {
    @Test func mmsgWorkersPollInsteadOfSleeping() throws {
        try exercise(.mmsg)
    }

    @Test(
        .enabled(if: Engine.uringUnavailable == nil, "io_uring engine: \(Engine.uringUnavailable?.description ?? "")")
    )
    func uringWorkersPollInsteadOfSleeping() throws {
        try exercise(.uring)
    }

    private func exercise(_ kind: EngineKind) throws {
        try TwoHostBed.with { bed in
            let polling = try bed.startEngine(in: bed.hostA, kind: kind, busyPoll: EngineConfiguration.maximumBusyPoll)
            defer { polling.stop() }
            let sleeping = try bed.startEngine(in: bed.hostB, kind: kind)
            defer { sleeping.stop() }
            let warmUp = try ping(from: bed.containerA, TwoHostBed.containerAddressB, count: 1)
            try #require(warmUp.received == 1, "\(warmUp.output)")

            let count = 20
            let before = (polling.counters.snapshot()[.idleWaits], sleeping.counters.snapshot()[.idleWaits])
            let started = ContinuousClock.now
            let result = try ping(from: bed.containerA, TwoHostBed.containerAddressB, count: count, interval: "0.01")
            let elapsed = ContinuousClock.now - started
            let pollingSlept = polling.counters.snapshot()[.idleWaits] - before.0
            let sleepingSlept = sleeping.counters.snapshot()[.idleWaits] - before.1

            #expect(result.received == count, "\(result.output)")
            // Once per ping, unless a loaded machine makes ping send some back to back (its catch-up).
            #expect(sleepingSlept >= UInt64(count / 2), "B slept \(sleepingSlept) times for \(count) pings")
            let idleBound = UInt64((elapsed / WorkerSetup.idleWait).rounded(.up)) + 1
            #expect(
                pollingSlept <= idleBound,
                "A slept \(pollingSlept) times in \(elapsed) (at most \(idleBound) before the first ping)"
            )

            let stopping = ContinuousClock.now
            polling.stop()
            #expect(
                ContinuousClock.now - stopping < WorkerSetup.idleWait * 50,
                "stop() while polling took \(ContinuousClock.now - stopping)"
            )
            #expect(polling.workerFailures.isEmpty, "\(polling.workerFailures)")
        }
    }
}
