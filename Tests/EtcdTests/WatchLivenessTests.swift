import Etcd
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
import EtcdTestSupport
#endif

/// A watch proves it is alive: it asks for progress on its own request stream and ends with
/// `.watchSilent` when neither events nor progress come within the silence limit.
@Suite(.enabled(if: TestEtcd.isAvailable, TestEtcd.skipMessage))
struct WatchLivenessTests {
    static func fast(_ configuration: inout EtcdClient.Configuration) {
        configuration.watchProgressInterval = .milliseconds(300)
        configuration.watchSilenceLimit = .seconds(2)
    }

    /// A quiet prefix is not a dead watch: etcd answers the progress requests, with the store's
    /// revision, and the watch still delivers the change that comes after several silence limits.
    @Test func aQuietWatchStaysOpenOnProgressAlone() async throws {
        try await TestEtcd.with { etcd in
            let client = try etcd.client(configure: Self.fast)
            defer { Task { try? await client.shutdown() } }
            let outside = try await client.put("/elsewhere", "moves the store's revision")
            let watch = try await client.watch(prefix: "/quiet/", fromRevision: 0)
            #expect(watch.createdRevision == outside)
            let consumer = Task { () async throws -> (progress: [Int64], events: [WatchEvent]) in
                var progress: [Int64] = []
                for try await batch in watch {
                    if batch.isProgress { progress.append(batch.revision) } else { return (progress, batch.events) }
                }
                return (progress, [])
            }
            try await Task.sleep(for: .seconds(5))
            let put = try await client.put("/quiet/a", "1")
            let (progress, events) = try await within(seconds: 20, consumer)
            // One every 300 ms for 5 s; a loaded machine delays some, none may be missing for 2 s.
            #expect(progress.count >= 5, "\(progress)")
            #expect(progress.allSatisfy { $0 == outside }, "\(progress)")
            #expect(events.map(\.revision) == [put])
        }
    }

    /// A paused etcd keeps the TCP connection open and answers nothing (what a black-holed one
    /// looks like to the client): the watch ends as silent within the limit plus one interval,
    /// instead of waiting forever.
    @Test func aPausedEtcdEndsTheWatchAsSilent() async throws {
        try await TestEtcd.with { etcd in
            let client = try etcd.client(configure: Self.fast)
            defer { Task { try? await client.shutdown() } }
            let watch = try await client.watch(prefix: "/paused/", fromRevision: 0)
            let consumer = Task { await ending(of: watch) }
            try await Task.sleep(for: .seconds(1))
            etcd.freeze()
            let halted = ContinuousClock.now
            let outcome = try await within(seconds: 30, consumer)
            let waited = ContinuousClock.now - halted
            etcd.thaw()
            #expect(outcome.error?.reason == .watchSilent(seconds: 2), "\(String(describing: outcome.error))")
            #expect(outcome.error?.description.contains("no events and no progress for 2.0 s") == true)
            // It cannot end before the limit; the upper bound only catches a hang on a loaded machine.
            #expect(waited >= .seconds(1.5) && waited < .seconds(20), "\(waited)")
        }
    }
}

extension WatchProtocolTests {
    /// A server that confirms the watch and then says nothing, ever (a connection to a peer that
    /// is gone, without RST): silent after the limit.
    @Test func aConfirmedStreamThatFallsSilentEndsAsSilent() async throws {
        let started = ContinuousClock.now
        let error = try await Self.failure(of: Self.streamHead + Self.chunk(Self.created)) {
            $0.watchProgressInterval = .milliseconds(200)
            $0.watchSilenceLimit = .seconds(1)
        }
        #expect(error?.reason == .watchSilent(seconds: 1))
        #expect(ContinuousClock.now - started >= .seconds(1))
    }
}
