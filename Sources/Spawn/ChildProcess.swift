import Glibc
import Subprocess
import SystemPackage

/// A tool run to completion (nft, a CNI delegate) through swift-subprocess: its standard output
/// and error collected up to a bound, its exit status or signal, and a deadline after which it is
/// killed. swift-subprocess gives the child an empty signal mask and default dispositions (weftd
/// blocks the signals it waits for), closes every descriptor but 0, 1 and 2 in it, and reads both
/// pipes at once, so a child filling one while the other is read cannot deadlock.
///
/// Not Foundation's `Process`: with a `Pipe` per stream it leaves two descriptors open per run on
/// Linux, which was weftd's idle leak of about 24 descriptors a minute through the nft resync.
public enum ChildProcess {
    public enum Termination: Equatable, Sendable {
        case exited(Int32)
        case signalled(Int32)
    }

    public struct Outcome: Sendable {
        public let termination: Termination
        public let output: [UInt8]
        public let errors: [UInt8]

        public var succeeded: Bool { termination == .exited(0) }
    }

    /// Why a run gave no outcome; a child that ran and failed is an `Outcome`, not this.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public enum Reason: Equatable, Sendable {
            /// exec failed (ENOENT: no such tool; EACCES: not executable).
            case cannotStart(errno: Int32)
            /// The file meant for standard input could not be opened.
            case inputUnreadable(path: String, errno: Int32)
            /// Still running at the deadline; it was killed.
            case timedOut(Duration)
            /// Wrote more than `limit` bytes to standard output or error; it was killed.
            case outputTooLarge(limit: Int)
            /// swift-subprocess could not watch or read the child.
            case lost(String)
        }

        public let path: String
        public let reason: Reason

        public var description: String {
            switch reason {
            case .cannotStart(let errno): "cannot run \(path): \(String(cString: strerror(errno)))"
            case .inputUnreadable(let input, let errno):
                "cannot run \(path): its input \(input): \(String(cString: strerror(errno)))"
            case .timedOut(let limit): "\(path) did not exit within \(limit); killed it"
            case .outputTooLarge(let limit): "\(path) wrote more than \(limit) bytes of output; killed it"
            case .lost(let problem): "running \(path) failed: \(problem)"
            }
        }
    }

    /// Runs `path` with `arguments` (not counting argv[0]) and exactly `environment`. Standard input
    /// is the file at `inputPath`, or /dev/null: a file cannot fill up like a pipe, and a child that
    /// exits without reading it cannot raise SIGPIPE here. Each stream keeps at most `outputLimit`
    /// bytes; a child past that or past `timeout` is killed and the run throws. Cancelling the
    /// caller does not stop the child: `timeout` does.
    public static func run(
        _ path: String,
        arguments: [String],
        environment: [String: String],
        inputPath: String? = nil,
        outputLimit: Int = 16 << 20,
        timeout: Duration = .seconds(60)
    ) async throws(Failure) -> Outcome {
        var input: FileDescriptor?
        if let inputPath {
            let fd = open(inputPath, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw Failure(path: path, reason: .inputUnreadable(path: inputPath, errno: errno)) }
            input = FileDescriptor(rawValue: fd)
        }
        // Closed here rather than by swift-subprocess, which would not on a failed spawn.
        defer { _ = try? input?.close() }
        // Sorted, so the child sees its environment in one order every time.
        let entries = environment.sorted { $0.key < $1.key }.map { Array("\($0.key)=\($0.value)\0".utf8) }
        let run = Attempt(path: path, arguments: arguments, environment: entries, input: input, limit: outputLimit)
        // Not cancelled with the caller: weftd removes its rules from a cancelled task on SIGTERM,
        // and a transaction cut short would leave the keeper unsure of what is in place.
        return try await Task { () async -> Result<Outcome, Failure> in
            // ETXTBSY: the file is open for writing somewhere, because it is being installed, or
            // because a child forked by another thread inherited its writer's descriptor for a
            // moment. libcni retries a plugin's exec for this; so does weftd, for a second at most.
            var attempt = 1
            while true {
                do throws(Failure) {
                    return .success(try await run.within(timeout))
                } catch  where error.reason == .cannotStart(errno: ETXTBSY) && attempt < busyRetries {
                    attempt += 1
                    try? await Task.sleep(for: busyPause)
                } catch {
                    return .failure(error)
                }
            }
        }.value.get()
    }

    static let busyRetries = 10
    static let busyPause = Duration.milliseconds(100)

    /// One spawn of the tool, with what it needs carried across the tasks of the deadline.
    private struct Attempt: Sendable {
        let path: String
        let arguments: [String]
        let environment: [[UInt8]]
        let input: FileDescriptor?
        let limit: Int

        /// The run, or `timedOut` once `timeout` passes first: cancelling the run makes
        /// swift-subprocess kill the child (SIGKILL) and reap it before the run returns.
        func within(_ timeout: Duration) async throws(Failure) -> Outcome {
            let first: Result<Outcome, Failure>?
            first = await withTaskGroup(of: Result<Outcome, Failure>?.self) { group in
                group.addTask {
                    do throws(Failure) { return .success(try await once()) } catch { return .failure(error) }
                }
                group.addTask {
                    try? await Task.sleep(for: timeout)
                    return nil
                }
                let first = await group.next() ?? nil
                group.cancelAll()
                return first
            }
            guard let first else { throw Failure(path: path, reason: .timedOut(timeout)) }
            return try first.get()
        }

        private func once() async throws(Failure) -> Outcome {
            do {
                let configuration = Configuration(
                    executable: .path(FilePath(path)),
                    arguments: Arguments(arguments),
                    environment: .custom(environment)
                )
                let result =
                    if let input {
                        try await Subprocess.run(
                            configuration,
                            input: .fileDescriptor(input, closeAfterSpawningProcess: false),
                            output: .bytes(limit: limit),
                            error: .bytes(limit: limit)
                        )
                    } else {
                        try await Subprocess.run(
                            configuration,
                            output: .bytes(limit: limit),
                            error: .bytes(limit: limit)
                        )
                    }
                let termination: Termination =
                    switch result.terminationStatus {
                    case .exited(let code): .exited(code)
                    case .signaled(let signal): .signalled(signal)
                    }
                return Outcome(termination: termination, output: result.standardOutput, errors: result.standardError)
            } catch let error as SubprocessError {
                throw Failure(path: path, reason: reason(error))
            } catch {
                throw Failure(path: path, reason: .lost("\(error)"))
            }
        }

        private func reason(_ error: SubprocessError) -> Failure.Reason {
            let errno = error.underlyingError?.rawValue
            switch error.code {
            case .executableNotFound: return .cannotStart(errno: errno ?? ENOENT)
            case .spawnFailed: return errno.map { .cannotStart(errno: $0) } ?? .lost("\(error)")
            case .outputLimitExceeded: return .outputTooLarge(limit: limit)
            default: return .lost("\(error)")
            }
        }
    }
}
