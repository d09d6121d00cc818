import Foundation
import Testing

/// Runs each test of a suite on a thread of its own instead of the Swift concurrency pool.
///
/// Swift Testing runs synchronous tests on the pool, which has one thread per core (two on this
/// machine and on CI). A test that blocks in `waitUntilExit`, a semaphore, `poll` or a sleep holds
/// one of them; two such tests at once stall every async test in the process for as long as they
/// block, so etcd leases expire and timeouts fire seconds late. With this trait the blocking
/// happens on the test's own thread and the pool stays free.
public struct OwnThread: SuiteTrait, TestTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test,
        testCase: Test.Case?,
        performing function: @Sendable () async throws -> Void
    ) async throws {
        // The suite itself only groups; each test case (one per argument) gets its thread.
        guard testCase != nil else { return try await function() }
        let executor = ThreadExecutor()
        defer { executor.finish() }
        // The test body and its structured children (async let, task groups) run on the executor.
        try await withTaskExecutorPreference(executor) { try await function() }
    }
}

extension Trait where Self == OwnThread {
    /// Each test on a thread of its own: for tests that block (see `OwnThread`).
    public static var ownThread: Self { OwnThread() }
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

/// Runs each test of a suite on one thread shared by every suite so marked, one job at a time.
///
/// For tests that compute for seconds in a debug build (randomized comparisons against a
/// reference, thousands of routes or nodes). On the pool they held both threads at the start of
/// the run, and every async test in the process waited 15-30 s to be resumed, long enough for
/// in-process fakes' deadlines to fire. Taking turns on one thread of their own, they leave the
/// pool free without adding a runnable thread per test.
public struct ComputeLane: SuiteTrait, TestTrait, TestScoping {
    static let executor = ThreadExecutor()

    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test,
        testCase: Test.Case?,
        performing function: @Sendable () async throws -> Void
    ) async throws {
        guard testCase != nil else { return try await function() }
        try await withTaskExecutorPreference(Self.executor) { try await function() }
    }
}

extension Trait where Self == ComputeLane {
    /// Each test on the one thread shared by computing tests (see `ComputeLane`).
    public static var computeLane: Self { ComputeLane() }
}
