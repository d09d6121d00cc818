import Foundation
import Spawn

/// Runs the delegate the way libcni's invoke package does: found by its type in CNI_PATH, given
/// the caller's environment unchanged (the same CNI_COMMAND, CNI_NETNS, ...) and its config on
/// stdin. Its stdout and exit status are ours to pass on; its stderr goes straight to ours.
struct DelegatePlugin {
    let executable: String

    /// Past this the delegate is killed: a runtime gives a whole ADD a few minutes (containerd's
    /// default is 4), and a delegate that hangs must not hold the pod's setup for all of them.
    static let timeout = Duration.seconds(120)

    /// The first regular file named `type` in the colon-separated `searchPath`.
    static func find(_ type: String, in searchPath: String) throws(CNIError) -> DelegatePlugin {
        let directories = searchPath.split(separator: ":").map(String.init)
        guard !type.isEmpty, !type.contains("/") else {
            throw CNIError(
                .invalidNetworkConfig,
                "invalid plugin name: \"\(type)\"",
                details: "a delegate type is a file name in CNI_PATH, e.g. \"bridge\""
            )
        }
        for directory in directories {
            let candidate = "\(directory)/\(type)"
            var status = stat()
            if stat(candidate, &status) == 0, status.st_mode & S_IFMT == S_IFREG {
                return DelegatePlugin(executable: candidate)
            }
        }
        throw CNIError(
            .internal,
            "failed to find plugin \"\(type)\" in path [\(directories.joined(separator: " "))]",
            details: "install containernetworking-plugins, or add the directory holding \(type) to CNI_PATH"
        )
    }

    /// Runs to completion with the saved config file `configPath` as stdin: a file cannot fill
    /// up like a pipe, and a delegate that exits without reading cannot raise SIGPIPE here. A
    /// delegate killed by a signal is our failure; any exit status is its answer. What it wrote to
    /// stderr is passed on to ours once it exits.
    func invoke(
        configPath: String,
        environment: [String: String]
    ) async throws(CNIError) -> (status: Int32, output: [UInt8]) {
        guard access(configPath, R_OK) == 0 else {
            throw CNIError(
                .ioFailure,
                "failed to open the saved delegate config \(configPath): \(String(cString: strerror(errno)))"
            )
        }
        let outcome: ChildProcess.Outcome
        do {
            outcome = try await ChildProcess.run(
                executable,
                arguments: [],
                environment: environment,
                inputPath: configPath,
                timeout: Self.timeout
            )
        } catch {
            throw CNIError(
                .internal,
                "failed to run the delegate \(executable): \(error)",
                details: "check that it is an executable CNI plugin"
            )
        }
        if !outcome.errors.isEmpty { FileHandle.standardError.write(Data(outcome.errors)) }
        switch outcome.termination {
        case .exited(let status):
            return (status, outcome.output)
        case .signalled(let signal):
            throw CNIError(.internal, "the delegate \(executable) was killed by signal \(signal)")
        }
    }
}
