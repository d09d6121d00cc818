import CShims
import Dispatch
import Foundation
import Glibc
import Synchronization
import SystemCalls

/// The write end of the self-pipe the signal handler writes to. Set once before the handler is
/// installed and never changed, so the handler's read of it is a plain load.
nonisolated(unsafe) private var stopPipeWriteEnd: Int32 = -1

/// SIGTERM and SIGINT as an awaitable event. The handler only write()s the signal number to a
/// pipe (async-signal-safe); a thread reads it and wakes the waiters. A handler, not a blocked
/// mask with sigwait, because threads the runtime started earlier would still take the default
/// action (exit) if the signal landed on them.
public final class StopSignals: Sendable {
    public static let shared = StopSignals(installingHandlers: true)

    private let readEnd: Int32
    private struct State {
        var received: Int32?
        var nextWaiter = 0
        var waiters: [Int: CheckedContinuation<Int32?, Never>] = [:]
    }

    private let state = Mutex(State())

    /// Without handlers (tests), only `deliver` stops it: the test runner keeps its own Ctrl-C.
    init(installingHandlers: Bool) {
        var ends: [Int32] = [-1, -1]
        precondition(weft_pipe(&ends) == 0, "pipe2 for the stop signals failed")
        readEnd = ends[0]
        guard installingHandlers else {
            close(ends[1])
            return
        }
        stopPipeWriteEnd = ends[1]
        let handler: @convention(c) (Int32) -> Void = { number in
            let saved = errno
            var byte = UInt8(truncatingIfNeeded: number)
            _ = write(stopPipeWriteEnd, &byte, 1)
            errno = saved
        }
        for number in [SIGTERM, SIGINT] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = handler
            action.sa_flags = SA_RESTART
            sigemptyset(&action.sa_mask)
            sigaction(number, &action, nil)
        }
        let thread = Thread { [self] in
            var byte: [UInt8] = [0]
            while (try? SystemCall.read(readEnd, into: &byte)) == 1 {
                deliver(Int32(byte[0]))
            }
        }
        thread.name = "weftd-signals"
        thread.start()
    }

    /// SIGTERM, SIGINT or "signal N", for the log.
    static func name(_ number: Int32) -> String {
        number == SIGINT ? "SIGINT" : number == SIGTERM ? "SIGTERM" : "signal \(number)"
    }

    /// For tests: behave as if `number` had arrived.
    public func deliver(_ number: Int32) {
        let waiters = state.withLock { state in
            if state.received == nil { state.received = number }
            defer { state.waiters = [:] }
            return state.waiters.values
        }
        for waiter in waiters { waiter.resume(returning: number) }
    }

    /// The first stop signal received (at once if one already was), or nil when the calling task
    /// is cancelled first.
    public func wait() async -> Int32? {
        let id = state.withLock { state in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let immediate = state.withLock { state -> Int32?? in
                    if let received = state.received { return .some(received) }
                    if Task.isCancelled { return .some(nil) }
                    state.waiters[id] = continuation
                    return .none
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume(returning: nil)
        }
    }
}
