import Glibc
import Timing

/// The worker's choice, each time it runs out of work, between sleeping in the kernel and looking
/// again (`--busy-poll`).
///
/// A sleeping worker is woken for the next packet, and on a round trip through the tunnel every
/// hop is such a wake-up: two per host per round trip (DESIGN.md §3). For `budget` after its last
/// batch a worker keeps looking instead, so a reply that comes back within the budget finds it
/// awake. Each look yields the CPU first: on a core it shares, the work it waits for (softirq, the
/// container, the other end of the tunnel) runs ahead of it, which a plain spin would hold off.
/// The cost is CPU: up to `budget` of polling after each burst of traffic.
struct BusyPoll {
    /// Nanoseconds; 0 turns polling off (no clock is read).
    private let budget: UInt64
    private var lastWork: UInt64 = 0

    init(_ budget: Duration) {
        self.budget = UInt64(clamping: budget.nanoseconds)
    }

    /// Marks the end of a batch that moved something.
    @inline(__always)
    mutating func worked() {
        if budget != 0 { lastWork = Self.now() }
    }

    /// True while the budget since the last batch lasts: the caller looks for work again instead of
    /// sleeping. Yields the CPU before answering true.
    @inline(__always)
    mutating func keepPolling() -> Bool {
        guard budget != 0, Self.now() &- lastWork < budget else { return false }
        sched_yield()
        return true
    }

    private static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }
}
