import Foundation
import Testing

@testable import Daemon

struct ReadinessTests {
    /// An unconfirmed route table turns a ready daemon not ready only after the grace, says why,
    /// and is forgotten once confirmed; a daemon not ready for its own reason keeps that reason.
    @Test func anUnconfirmedTableCostsReadinessOnlyAfterTheGrace() async throws {
        let readiness = Readiness(unconfirmedGrace: .milliseconds(300))
        readiness.markReady("lease 10.244.1.0/24")
        readiness.routesUnconfirmed("etcd watch: no events and no progress for 10.0 s")
        #expect(readiness.current == Readiness.State(isReady: true, reason: "lease 10.244.1.0/24"))
        try await Task.sleep(for: .milliseconds(600))
        let late = readiness.current
        #expect(!late.isReady)
        #expect(late.reason.hasPrefix("route table not confirmed current for "))
        #expect(late.reason.contains("etcd watch: no events and no progress"))
        // A later failure does not restart the clock: the episode began with the first.
        readiness.routesUnconfirmed("another failure")
        #expect(!readiness.current.isReady)
        readiness.routesConfirmed()
        #expect(readiness.current == Readiness.State(isReady: true, reason: "lease 10.244.1.0/24"))

        readiness.markNotReady("lease lost")
        readiness.routesUnconfirmed("etcd unreachable")
        try await Task.sleep(for: .milliseconds(600))
        #expect(readiness.current == Readiness.State(isReady: false, reason: "lease lost"))
    }
}
