import CShims
import Glibc
import SystemCalls

/// A tool run to completion (nft, a CNI delegate): spawned with its standard output and error
/// read to their end and the child reaped, every descriptor opened for it closed on every path.
///
/// Not Foundation's `Process`: with a `Pipe` per stream it leaves two descriptors open per run on
/// Linux (measured: 20 runs of /bin/true, 6 → 54 open descriptors), which was weftd's idle leak of
/// about 24 descriptors a minute through the nft resync. Blocking; control-plane code only.
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

    /// Why the child could not be started (its own failures are in `Outcome`).
    public struct LaunchError: Error, CustomStringConvertible, Sendable {
        public let path: String
        public let errno: Int32
        public var description: String { "cannot run \(path): \(String(cString: strerror(errno)))" }
    }

    /// Runs `path` with `arguments` (not counting argv[0]) and exactly `environment`. Standard input
    /// is the file at `inputPath`, or /dev/null. Outputs are read concurrently, so a child that
    /// fills one pipe while weftd waits on the other cannot deadlock.
    public static func run(
        _ path: String,
        arguments: [String],
        environment: [String: String],
        inputPath: String? = nil
    ) throws(LaunchError) -> Outcome {
        let argv = [path] + arguments
        let envp = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        var outputFD: Int32 = -1
        var errorsFD: Int32 = -1
        var pid: Int32 = 0
        // ETXTBSY: the file is open for writing somewhere, because it is being installed, or
        // because a child forked by another thread inherited its writer's descriptor for a moment.
        // libcni retries a plugin's exec for this; so does weftd, for a second at most.
        for attempt in 0..<Self.busyRetries {
            pid = withCStrings(argv) { argvPointer in
                withCStrings(envp) { envpPointer in
                    weft_spawn(path, argvPointer, envpPointer, inputPath, &outputFD, &errorsFD)
                }
            }
            guard pid == -ETXTBSY, attempt + 1 < Self.busyRetries else { break }
            usleep(Self.busyPauseMicroseconds)
        }
        guard pid > 0 else { throw LaunchError(path: path, errno: -pid) }
        let (output, errors) = drain(outputFD, errorsFD)
        close(outputFD)
        close(errorsFD)
        return Outcome(termination: reap(pid), output: output, errors: errors)
    }

    static let busyRetries = 10
    static let busyPauseMicroseconds: UInt32 = 100_000

    /// Reads both pipes until each reports end of file.
    private static func drain(_ first: Int32, _ second: Int32) -> ([UInt8], [UInt8]) {
        var collected: [[UInt8]] = [[], []]
        var open = [true, true]
        var chunk = [UInt8](repeating: 0, count: 16 << 10)
        while open[0] || open[1] {
            var fds = [
                pollfd(fd: open[0] ? first : -1, events: Int16(POLLIN), revents: 0),
                pollfd(fd: open[1] ? second : -1, events: Int16(POLLIN), revents: 0),
            ]
            do {
                _ = try SystemCall.retrying("poll") { poll(&fds, 2, -1) }
            } catch {
                break
            }
            for index in 0..<2 where open[index] && fds[index].revents != 0 {
                do {
                    let count = try SystemCall.read(fds[index].fd, into: &chunk)
                    if count > 0 {
                        collected[index] += chunk[0..<count]
                    } else {
                        open[index] = false
                    }
                } catch  where error.code == EAGAIN {
                    continue
                } catch {
                    open[index] = false
                }
            }
        }
        return (collected[0], collected[1])
    }

    private static func reap(_ pid: pid_t) -> Termination {
        var status: Int32 = 0
        do {
            _ = try SystemCall.retrying("waitpid") { waitpid(pid, &status, 0) }
        } catch {
            // ECHILD: someone else reaped it (nothing in weftd does); report it as a failure.
            return .exited(-1)
        }
        // WIFEXITED/WTERMSIG are macros Swift cannot see: the low 7 bits are the signal, 0 if it exited.
        let signal = status & 0x7F
        return signal == 0 ? .exited((status >> 8) & 0xFF) : .signalled(signal)
    }

    /// A NULL-terminated array of C strings for `body`, freed after it.
    private static func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
        let pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) } + [nil]
        defer { for pointer in pointers { free(pointer) } }
        return body(pointers)
    }
}
