import Foundation
import Glibc
import Synchronization
import SystemCalls
import Testing

/// EINTR retried in one place: a real signal interrupts a real blocking read.
struct SystemCallTests {
    @Test func aFailureKeepsTheCallTheSubjectAndTheErrno() {
        #expect(throws: SystemCallError("read", "fd -1", code: EBADF)) {
            var buffer = [UInt8](repeating: 0, count: 8)
            _ = try SystemCall.read(-1, into: &buffer, "fd -1")
        }
        #expect(
            SystemCallError("open", "/nowhere", code: ENOENT).description
                == "open /nowhere: No such file or directory (errno 2)"
        )
    }

    @Test func writeAllAndReadMoveEveryByteThroughAPipe() throws {
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        let (readEnd, writeEnd) = (ends[0], ends[1])
        defer { close(readEnd) }
        let bytes = (0..<100_000).map { UInt8(truncatingIfNeeded: $0) }
        let reader = JoinableThread.detached {
            var all: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while let count = try? SystemCall.read(readEnd, into: &buffer), count > 0 { all += buffer[0..<count] }
            return all
        }
        // More than a pipe holds (64 KiB): writeAll must loop over short writes.
        try SystemCall.writeAll(writeEnd, bytes)
        close(writeEnd)
        #expect(reader.join() == bytes)
    }

    @Test func aReadInterruptedBySignalsIsRetriedUntilDataArrives() throws {
        // SIGUSR2 with a handler and without SA_RESTART: a blocked read returns EINTR each time.
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        action.sa_flags = 0
        sigemptyset(&action.sa_mask)
        var previous = sigaction()
        #expect(sigaction(SIGUSR2, &action, &previous) == 0)
        defer { sigaction(SIGUSR2, &previous, nil) }

        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        let (readEnd, writeEnd) = (ends[0], ends[1])
        defer {
            close(readEnd)
            close(writeEnd)
        }
        let interrupts = Counter()
        let reader = JoinableThread.detached {
            // The test runner's threads may block it; this one must take it.
            var unblock = sigset_t()
            sigemptyset(&unblock)
            sigaddset(&unblock, SIGUSR2)
            pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
            interrupts.thread.store(pthread_self(), ordering: .releasing)
            var buffer = [UInt8](repeating: 0, count: 4)
            return
                (try? SystemCall.retrying("read", "pipe") { () -> Int in
                    let count = read(readEnd, &buffer, buffer.count)
                    if count < 0 && errno == EINTR { interrupts.count.add(1, ordering: .relaxed) }
                    return count
                }).map { Array(buffer[0..<$0]) }
        }
        while interrupts.thread.load(ordering: .acquiring) == 0 { usleep(1000) }
        for _ in 0..<20 where interrupts.count.load(ordering: .relaxed) < 3 {
            usleep(20_000)
            pthread_kill(interrupts.thread.load(ordering: .acquiring), SIGUSR2)
        }
        usleep(20_000)
        #expect(write(writeEnd, "weft", 4) == 4)
        #expect(reader.join() == Array("weft".utf8))
        #expect(
            interrupts.count.load(ordering: .relaxed) >= 1,
            "no read was interrupted, so the retry was not exercised"
        )
    }

    @Test func aNegatedErrnoWrapperIsRetriedOnlyForEINTR() {
        var calls = 0
        let result = SystemCall.retryingNegatedErrno { () -> Int in
            calls += 1
            return calls < 3 ? -Int(EINTR) : -Int(EAGAIN)
        }
        #expect(result == -Int(EAGAIN))
        #expect(calls == 3)
    }

    final class Counter: Sendable {
        let count = Atomic(0)
        let thread = Atomic<UInt>(0)
    }
}

/// A thread returning a value (the tests block in system calls, off the Swift pool).
final class JoinableThread<Value: Sendable>: @unchecked Sendable {
    // @unchecked: `value` is written once on the thread before `done` is signalled, read after.
    private var value: Value?
    private let done = DispatchSemaphore(value: 0)

    static func detached(_ body: @escaping @Sendable () -> Value) -> JoinableThread {
        let thread = JoinableThread()
        Foundation.Thread {
            thread.value = body()
            thread.done.signal()
        }.start()
        return thread
    }

    func join() -> Value {
        done.wait()
        return value!
    }
}
