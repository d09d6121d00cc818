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

    /// Runs to completion; a delegate killed by a signal is our failure, any exit status is its answer.
    func invoke(config: [UInt8], environment: [String: String]) throws(CNIError) -> (status: Int32, output: [UInt8]) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = []
        process.environment = environment
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        do {
            // Written before the delegate starts: a config is a few hundred bytes, far below a
            // pipe's buffer, and a delegate that exits without reading cannot raise SIGPIPE here.
            try input.fileHandleForWriting.write(contentsOf: config)
            try process.run()
            try input.fileHandleForWriting.close()
        } catch {
            throw CNIError(.internal, "failed to run the delegate \(executable): \(error)", details: "check that it is an executable CNI plugin")
        }
        let result = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationReason == .exit else {
            throw CNIError(.internal, "the delegate \(executable) was killed by signal \(process.terminationStatus)")
        }
        return (process.terminationStatus, [UInt8](result))
    }
}
