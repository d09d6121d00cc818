#if canImport(Glibc)
import Glibc
#endif

/// Waiting for an event a test cannot be told about directly (a counter, a file, a log line):
/// the condition is polled until it holds or the time is up. Written once for every test target.

/// Polls `condition` every `interval` until it holds or `timeout` has passed; true when it held.
/// Blocks the calling thread: for tests on a thread of their own (`.ownThread`) or in a namespace.
/// Named apart from the async `eventually` so an async test never picks it by overload and holds
/// a thread of the concurrency pool while it polls.
public func waitUntil(
    timeout: Duration = .seconds(20),
    interval: Duration = .milliseconds(20),
    _ condition: () throws -> Bool
) rethrows -> Bool {
    try waitFor(timeout, interval: interval, condition) != nil
}

/// Polls `condition` every `interval` until it holds or `timeout` has passed; true when it held.
/// Sleeps between polls without holding a thread of the concurrency pool.
public func eventually(
    timeout: Duration = .seconds(20),
    interval: Duration = .milliseconds(20),
    _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: interval)
    }
    return try await condition()
}

/// Like the blocking `eventually`, returning how long the condition took to hold (nil: it did not
/// within `timeout`), for tests that report latencies.
@discardableResult
public func waitFor(
    _ timeout: Duration,
    interval: Duration = .milliseconds(20),
    _ condition: () throws -> Bool
) rethrows -> Duration? {
    let start = ContinuousClock.now
    while true {
        if try condition() { return ContinuousClock.now - start }
        if ContinuousClock.now - start >= timeout { return nil }
        let (seconds, attoseconds) = interval.components
        usleep(UInt32(seconds * 1_000_000 + attoseconds / 1_000_000_000_000))
    }
}
