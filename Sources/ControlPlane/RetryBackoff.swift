/// Capped exponential backoff with jitter for reconnect loops. The wait before attempt n is drawn
/// from [ceiling/2, ceiling] with ceiling = min(maximum, initial·2ⁿ): never zero, so a server that
/// fails at once cannot turn a reconnect loop hot, and daemons restarted together spread out.
public struct RetryBackoff: Sendable, Equatable {
    public var initial: Duration
    public var maximum: Duration

    /// flannel's watch reconnect: 100 ms doubling to 5 s.
    public init(initial: Duration = .milliseconds(100), maximum: Duration = .seconds(5)) {
        precondition(initial > .zero && maximum >= initial, "backoff needs 0 < initial <= maximum")
        self.initial = initial
        self.maximum = maximum
    }

    public func ceiling(attempt: Int) -> Duration {
        // 2^20 × any sensible initial exceeds any sensible maximum; the clamp avoids overflow.
        min(initial * (1 << min(max(attempt, 0), 20)), maximum)
    }

    public func delay(attempt: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        let ceiling = nanoseconds(ceiling(attempt: attempt))
        return .nanoseconds(Int64.random(in: (ceiling / 2)...ceiling, using: &generator))
    }

    public func delay(attempt: Int) -> Duration {
        var generator = SystemRandomNumberGenerator()
        return delay(attempt: attempt, using: &generator)
    }

    private func nanoseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
    }
}
