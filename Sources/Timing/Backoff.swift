/// Capped exponential backoff with jitter, the one kind every retry loop in Weft uses: the wait
/// before attempt n (0-based) is drawn below ceiling = min(maximum, initial·2ⁿ), so clients
/// restarted together do not retry in step.
public struct Backoff: Sendable, Equatable {
    public enum Jitter: Sendable, Equatable {
        /// [ceiling/2, ceiling]: never near zero, so a server that fails at once cannot turn a
        /// reconnect loop hot (watches, lease retries, dataplane rebuilds).
        case upperHalf
        /// [0, ceiling]: passes over a list of endpoints, where the next endpoint may answer at once.
        case full
    }

    public var initial: Duration
    public var maximum: Duration
    public var jitter: Jitter

    /// flannel's watch reconnect by default: 100 ms doubling to 5 s.
    public init(initial: Duration = .milliseconds(100), maximum: Duration = .seconds(5), jitter: Jitter = .upperHalf) {
        precondition(initial > .zero && maximum >= initial, "backoff needs 0 < initial <= maximum")
        self.initial = initial
        self.maximum = maximum
        self.jitter = jitter
    }

    public func ceiling(attempt: Int) -> Duration {
        // 2^20 × any sensible initial exceeds any sensible maximum; the clamp avoids overflow.
        min(initial * (1 << min(max(attempt, 0), 20)), maximum)
    }

    public func delay(attempt: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        let ceiling = ceiling(attempt: attempt).nanoseconds
        let floor = jitter == .upperHalf ? ceiling / 2 : 0
        return .nanoseconds(Int64.random(in: floor...ceiling, using: &generator))
    }

    public func delay(attempt: Int) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return delay(attempt: attempt, using: &generator)
    }
}
