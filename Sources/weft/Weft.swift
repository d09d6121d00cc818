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

    /// Not an async main: `weft dataplane` blocks SIGTERM/SIGINT on the main thread and sigwaits
    /// there, which works only while no other thread exists to take the signal first, and an async
    /// main starts the concurrency pool's. So synchronous commands run on this thread as they are,
    /// and asynchronous ones through `waitingForTask`.
    static func main() {
        do {
            var command = try parseAsRoot()
            guard let asyncCommand = command as? AsyncParsableCommand else {
                try command.run()
                return
            }
            try waitingForTask(RunningCommand(asyncCommand))
        } catch {
            exit(withError: error)
        }
    }

    /// Runs the command on the concurrency pool (not on the main actor, which this thread holds)
    /// and blocks this thread until it ends: the one place in Weft where a thread waits for a task.
    private static func waitingForTask(_ running: RunningCommand) throws {
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
