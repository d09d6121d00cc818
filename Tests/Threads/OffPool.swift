import Foundation
import Testing

/// Runs each test of a suite off the Swift concurrency pool: on a thread of its own (`.ownThread`),
/// or on the one thread computing tests share (`.computeLane`).
///
/// Swift Testing runs synchronous tests on the pool, which has one thread per core (two on this
/// machine and on CI). A test that blocks in `waitUntilExit`, a semaphore, `poll` or a sleep holds
/// one of them; two such tests at once stall every async test in the process for as long as they
/// block, so etcd leases expire and timeouts fire seconds late. Tests that compute for seconds in a
/// debug build (randomized comparisons against a reference, thousands of routes or nodes) did the
/// same at the start of the run: every async test waited 10-30 s to be resumed, long enough for
/// in-process fakes' deadlines to fire. Blocking tests get a thread each; computing tests take
/// turns on one, which leaves the pool free without adding a runnable thread per test.
public struct OffPool: SuiteTrait, TestTrait, TestScoping {
    enum Lane {
        case own
        case compute
    }

    static let computeExecutor = ThreadExecutor()

    let lane: Lane

    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test,
        testCase: Test.Case?,
        performing function: @Sendable () async throws -> Void
    ) async throws {
        // The suite itself only groups; each test case (one per argument) runs off the pool.
        guard testCase != nil else { return try await function() }
        let executor = lane == .own ? ThreadExecutor() : Self.computeExecutor
        defer { if lane == .own { executor.finish() } }
        // The test body and its structured children (async let, task groups) run on the executor.
        try await withTaskExecutorPreference(executor) { try await function() }
    }
}

extension Trait where Self == OffPool {
    /// Each test on a thread of its own: for tests that block (see `OffPool`).
    public static var ownThread: Self { OffPool(lane: .own) }

    /// Each test on the one thread shared by computing tests (see `OffPool`).
    public static var computeLane: Self { OffPool(lane: .compute) }
}

/// One thread running the jobs given to it in order, until `finish`.
final class ThreadExecutor: TaskExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var finished = false
    private var exited = false

    init() {
        let thread = Thread { [self] in run() }
        // Tests keep packets and captures on the stack of their thread; Foundation's default is smaller than the main thread's.
        thread.stackSize = 8 << 20
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        if exited {
            condition.unlock()
            // A late job after `finish` (not expected: the scope has returned) still runs, on the pool.
            DispatchQueue.global().async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
            return
        }
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Lets the thread exit once its queue is empty.
    func finish() {
        condition.lock()
        finished = true
        condition.signal()
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while jobs.isEmpty && !finished { condition.wait() }
            if jobs.isEmpty {
                exited = true
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
