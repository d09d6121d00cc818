/// The time source of the lease manager and the peer watcher. Injected so tests can jump a
/// 24-hour lease to its renewal point without waiting (etcd's own TTLs still run in real time).
public protocol ControlPlaneClock: Sendable {
    /// Time since an arbitrary fixed origin; only differences are meaningful.
    var now: Duration { get }
    /// Returns after `duration` of this clock's time, or throws `CancellationError` when the task is cancelled.
    func sleep(for duration: Duration) async throws
}

/// The monotonic system clock (CLOCK_MONOTONIC via ContinuousClock).
public struct SystemClock: ControlPlaneClock {
    private let origin = ContinuousClock.now

    public init() {}

    public var now: Duration { ContinuousClock.now - origin }

    public func sleep(for duration: Duration) async throws {
        try await Task.sleep(for: duration)
    }
}

/// How much the control plane says, and where it goes: the daemon passes a closure that writes
/// to its log; the default drops everything.
public enum LogLevel: Sendable, Comparable {
    case debug
    case info
    /// Something an operator must notice (a lease lost or moved to another subnet).
    case warning
}

public typealias LogHandler = @Sendable (LogLevel, String) -> Void
