import Testing
import Timing

struct BackoffTests {
    @Test func ceilingsDoubleUpToTheMaximumWithoutOverflow() {
        let backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(2))
        #expect(
            (0..<7).map { backoff.ceiling(attempt: $0) } == [
                .milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .milliseconds(1600),
                .seconds(2), .seconds(2),
            ]
        )
        #expect(backoff.ceiling(attempt: 10_000) == .seconds(2))
        #expect(backoff.ceiling(attempt: -3) == .milliseconds(100))
    }

    @Test func upperHalfJitterNeverWaitsLessThanHalfTheCeilingAndFullJitterReachesZero() {
        var generator = SystemRandomNumberGenerator()
        let half = Backoff(initial: .milliseconds(100), maximum: .seconds(5))
        let halfDelays = (0..<2_000).map { _ in half.delay(attempt: 2, using: &generator) }
        #expect(halfDelays.allSatisfy { $0 >= .milliseconds(200) && $0 <= .milliseconds(400) })
        let full = Backoff(initial: .milliseconds(100), maximum: .seconds(2), jitter: .full)
        let fullDelays = (0..<2_000).map { _ in full.delay(attempt: 2, using: &generator) }
        #expect(fullDelays.allSatisfy { $0 >= .zero && $0 <= .milliseconds(400) })
        #expect(fullDelays.contains { $0 < .milliseconds(200) }, "full jitter draws below half the ceiling too")
    }
}

struct DurationUnitsTests {
    @Test func wholeUnitsRoundDown() {
        let duration = Duration.seconds(3) + .nanoseconds(1_999_999)
        #expect(duration.nanoseconds == 3_001_999_999)
        #expect(duration.microseconds == 3_001_999)
        #expect(duration.milliseconds == 3_001)
        #expect(Duration.zero.nanoseconds == 0)
    }
}
