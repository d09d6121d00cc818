import Foundation
import Synchronization
import Testing

@testable import KubeModel

/// A clock the test moves by hand.
final class ManualClock: Sendable {
    private let offset = Mutex<Duration>(.zero)
    let start = ContinuousClock.now

    func advance(_ by: Duration) { offset.withLock { $0 += by } }
    var now: @Sendable () -> ContinuousClock.Instant { { self.start + self.offset.withLock { $0 } } }
}

@Suite struct TokenRotation {
    @Test func fileTokenIsReReadOncePeriodHasPassed() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write("token", "first\n")
        let clock = ManualClock()
        let source = TokenSource(
            origin: .file(path: "\(dir.path)/token", initial: "first"),
            period: .seconds(50),
            now: clock.now
        )
        try dir.write("token", "second\n")
        clock.advance(.seconds(49))
        #expect(source.token().token == "first")
        clock.advance(.seconds(1))
        #expect(source.token().token == "second")
        try dir.write("token", "third")
        clock.advance(.seconds(10))
        #expect(source.token().token == "second")
        #expect(source.age() == .seconds(10))
    }

    @Test func invalidateForcesAReadAfterA401() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write("token", "old")
        let clock = ManualClock()
        let source = TokenSource(origin: .file(path: "\(dir.path)/token", initial: "old"), now: clock.now)
        try dir.write("token", "rotated")
        #expect(source.token().token == "old")
        source.invalidate()
        #expect(source.summary().contains("re-reading it on the next request"))
        #expect(source.token().token == "rotated")
    }

    @Test func failedReReadKeepsThePreviousTokenAndSaysWhy() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write("token", "kept")
        let clock = ManualClock()
        let source = TokenSource(origin: .file(path: "\(dir.path)/token", initial: "kept"), now: clock.now)
        try FileManager.default.removeItem(atPath: "\(dir.path)/token")
        clock.advance(.seconds(60))
        let reading = source.token()
        #expect(reading.token == "kept")
        #expect(
            reading.rotationFailure?.problem
                == "Unable to rotate token: open \(dir.path)/token: no such file or directory"
        )
    }

    @Test func literalTokenNeverTouchesTheFileSystem() {
        let source = TokenSource(origin: .literal("abc", source: "kubeconfig user \"u\""))
        #expect(source.token() == TokenSource.Reading(token: "abc", rotationFailure: nil))
        #expect(source.age() == nil)
        #expect(source.summary() == "the bearer token from kubeconfig user \"u\"")
    }

    @Test func summaryNamesTheFileAndItsAge() throws {
        let clock = ManualClock()
        let source = TokenSource(
            origin: .file(path: "/var/run/secrets/kubernetes.io/serviceaccount/token", initial: "t"),
            now: clock.now
        )
        clock.advance(.seconds(12))
        #expect(
            source.summary()
                == "the bearer token in /var/run/secrets/kubernetes.io/serviceaccount/token (read 12 s ago)"
        )
    }
}
