import ArgumentParser
import Dispatch

@main
struct Weft: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weft",
        abstract: "Weft: flannel's overlay network with a user-space dataplane.",
        subcommands: [
            Replay.self, Dataplane.self, ConfigCommand.self, LeasesCommand.self, RoutesCommand.self, StatsCommand.self,
            DoctorCommand.self, InstallCNI.self, InstallConf.self,
        ]
    )

    /// Synchronous commands run on the main thread before any other thread exists, as before the
    /// etcd commands came: `weft dataplane` blocks SIGTERM/SIGINT there and sigwaits, which only
    /// works if no other thread (an async main's would) can take the signal first. Asynchronous
    /// commands run in a detached task (not on the main actor, which this thread holds) while the
    /// main thread waits.
    static func main() {
        do {
            var command = try parseAsRoot()
            guard let asyncCommand = command as? AsyncParsableCommand else {
                try command.run()
                return
            }
            let running = RunningCommand(asyncCommand)
            let done = DispatchSemaphore(value: 0)
            Task.detached {
                do {
                    try await running.command.run()
                } catch {
                    running.error = error
                }
                done.signal()
            }
            done.wait()
            if let error = running.error { throw error }
        } catch {
            exit(withError: error)
        }
    }
}

/// The parsed command and its outcome, handed to the task and read back once it signalled.
private final class RunningCommand: @unchecked Sendable {
    var command: AsyncParsableCommand
    var error: Error?

    init(_ command: AsyncParsableCommand) { self.command = command }
}

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run captured packets through the engine's per-packet pipeline, file to file.",
        discussion: """
            encap reads inner IPv4 packets (what the TUN would hand Weft) and writes the outer \
            IPv4/UDP datagrams Weft would send. decap reads captured underlay frames and writes the \
            inner IPv4 packets Weft would write to the TUN. Both print packet counts and every drop \
            by reason.
            """,
        subcommands: [ReplayEncap.self, ReplayDecap.self]
    )
}
