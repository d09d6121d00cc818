import Dispatch
import Foundation

/// Runs the delegate the way libcni's invoke package does: found by its type in CNI_PATH, given
/// the caller's environment unchanged (the same CNI_COMMAND, CNI_NETNS, ...) and its config on
/// stdin. Its stdout and exit status are ours to pass on; its stderr goes straight to ours.
struct DelegatePlugin {
    let executable: String

    /// The first regular file named `type` in the colon-separated `searchPath`.
    static func find(_ type: String, in searchPath: String) throws(CNIError) -> DelegatePlugin {
        let directories = searchPath.split(separator: ":").map(String.init)
        guard !type.isEmpty, !type.contains("/") else {
            throw CNIError(.invalidNetworkConfig, "invalid plugin name: \"\(type)\"", details: "a delegate type is a file name in CNI_PATH, e.g. \"bridge\"")
        }
        for directory in directories {
            let candidate = "\(directory)/\(type)"
            var status = stat()
            if stat(candidate, &status) == 0, status.st_mode & S_IFMT == S_IFREG { return DelegatePlugin(executable: candidate) }
        }
        throw CNIError(.internal, "failed to find plugin \"\(type)\" in path [\(directories.joined(separator: " "))]",
                       details: "install containernetworking-plugins, or add the directory holding \(type) to CNI_PATH")
    }

    /// Runs to completion with the saved config file `configPath` as stdin: a file cannot fill
    /// up like a pipe, and a delegate that exits without reading cannot raise SIGPIPE here. A
    /// delegate killed by a signal is our failure; any exit status is its answer.
    func invoke(configPath: String, environment: [String: String]) throws(CNIError) -> (status: Int32, output: [UInt8]) {
        guard let input = FileHandle(forReadingAtPath: configPath) else {
            throw CNIError(.ioFailure, "failed to open the saved delegate config \(configPath): \(String(cString: strerror(errno)))")
        }
        defer { try? input.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = []
        process.environment = environment
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        // A termination handler set before run(), not waitUntilExit, which can miss a fast exit
        // (swift-corelibs-foundation#4795 and kin; see NFTables in TrafficRules).
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        do {
            try process.run()
        } catch {
            throw CNIError(.internal, "failed to run the delegate \(executable): \(error)", details: "check that it is an executable CNI plugin")
        }
        let result = output.fileHandleForReading.readDataToEndOfFile()
        exited.wait()
        guard process.terminationReason == .exit else {
            throw CNIError(.internal, "the delegate \(executable) was killed by signal \(process.terminationStatus)")
        }
        return (process.terminationStatus, [UInt8](result))
    }
}
