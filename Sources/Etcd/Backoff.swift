/// Capped exponential backoff with full jitter between passes over the endpoint list: pass n waits a
/// random time in [0, min(maximum, initial·2ⁿ)], so clients restarted together do not retry in step.
public struct Backoff: Sendable, Equatable {
    public var initial: Duration
    public var maximum: Duration

    public init(initial: Duration = .milliseconds(100), maximum: Duration = .seconds(2)) {
        self.initial = initial
        self.maximum = maximum
    }

    /// The upper bound of the wait before pass `pass` (0-based); the wait itself is drawn below it.
    func ceiling(beforePass pass: Int) -> Duration {
        // 2^20 × any sensible initial already exceeds any sensible maximum; the clamp avoids overflow.
        let doubled = initial * (1 << min(max(pass, 0), 20))
        return min(doubled, maximum)
    }

    func delay(beforePass pass: Int, using generator: inout some RandomNumberGenerator) -> Duration {
        let ceiling = ceiling(beforePass: pass)
        let nanoseconds = ceiling.components.seconds * 1_000_000_000 + ceiling.components.attoseconds / 1_000_000_000
        guard nanoseconds > 0 else { return .zero }
        return .nanoseconds(Int64.random(in: 0...nanoseconds, using: &generator))
    }
}
