import CShims
import Foundation
import Glibc
import Synchronization

/// A long-lived child of the test runner (etcd, a server) that dies with the runner, even when the
/// runner is SIGKILLed and no cleanup runs: the child is spawned with PR_SET_PDEATHSIG.
///
/// That signal fires when the *thread* that spawned the child ends, not the process; Swift
/// Testing's pool threads come and go, and an `.ownThread` test's thread ends with the test. So
/// each child is spawned by a thread of its own that then waits for it and ends only after it:
/// the child outlives every test thread, and nothing outlives the runner.
public final class TiedProcess: Sendable {
    public let pid: pid_t
    /// waitpid's status once the child has ended; nil while it runs.
    private let status = Mutex<Int32?>(nil)

    private init(pid: pid_t) { self.pid = pid }

    /// Starts `path` with `arguments` (not counting argv[0]) and this process's environment, stdin
    /// /dev/null, stdout and stderr appended to `output`. Blocks only for the fork and exec, as
    /// Foundation's `Process.run` does.
    public static func launch(_ path: String, _ arguments: [String], output: FileHandle) throws -> TiedProcess {
        let started = LaunchOutcome()
        let outputFD = output.fileDescriptor
        let keeper = Thread {
            let argv = ([path] + arguments).map { strdup($0) } + [nil]
            let pid = weft_spawn_tied(path, argv, nil, outputFD, SIGKILL)
            for pointer in argv { free(pointer) }
            guard pid > 0 else { return started.finish(.failure(TiedProcessFailure(path: path, code: -pid))) }
            let process = TiedProcess(pid: pid)
            started.finish(.success(process))
            process.keep()
        }
        keeper.start()
        return try started.wait().get()
    }

    /// Waits for the child on its keeper thread, which ends here, after the child. It is reaped
    /// under the lock `signal` takes, so a pid the kernel may reuse is never signalled.
    private func keep() {
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR {}
        status.withLock { status in
            var waited: Int32 = 0
            while waitpid(pid, &waited, 0) < 0 && errno == EINTR {}
            status = waited
        }
    }

    public var isRunning: Bool { status.withLock { $0 == nil } }

    /// The exit status, or 128 + the signal that ended it; nil while it runs.
    public var terminationStatus: Int32? {
        status.withLock { waited in
            // WIFEXITED/WTERMSIG are macros Swift cannot see: the low 7 bits are the signal, 0 if it exited.
            waited.map { $0 & 0x7F == 0 ? ($0 >> 8) & 0xFF : 128 + ($0 & 0x7F) }
        }
    }

    /// Sends `signal` while the child runs (once reaped, its pid may be someone else's).
    public func signal(_ signal: Int32) {
        status.withLock { waited in
            if waited == nil { _ = kill(pid, signal) }
        }
    }

    public func terminate() { signal(SIGTERM) }
}

public struct TiedProcessFailure: Error, CustomStringConvertible {
    public let path: String
    public let code: Int32
    public var description: String { "cannot run \(path): \(String(cString: strerror(code)))" }
}

/// The keeper thread's answer to `launch`: the process, or why it did not start.
private final class LaunchOutcome: Sendable {
    private let outcome = Mutex<Result<TiedProcess, TiedProcessFailure>?>(nil)
    private let done = DispatchSemaphore(value: 0)

    func finish(_ result: Result<TiedProcess, TiedProcessFailure>) {
        outcome.withLock { $0 = result }
        done.signal()
    }

    func wait() -> Result<TiedProcess, TiedProcessFailure> {
        done.wait()
        return outcome.withLock { $0! }
    }
}
