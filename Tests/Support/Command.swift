import Foundation

/// A tool run by a test to completion.
public struct CommandResult: Sendable {
    public let status: Int32
    /// Standard output; with `.merged`, standard error too, interleaved as written.
    public let output: String
    /// Standard error (empty with `.merged`).
    public let error: String

    public init(status: Int32, output: String, error: String = "") {
        self.status = status
        self.output = output
        self.error = error
    }
}

/// Where a command's standard error goes.
public enum ErrorStream: Sendable {
    case separate
    /// Into `output`, as a shell's `2>&1` would.
    case merged
}

/// Runs `arguments` (absolute path first) to completion: with `environment` (nil: this process's),
/// `input` on standard input (nil: /dev/null), in `directory`. The outputs go to files, not pipes,
/// so a chatty tool never blocks on a full pipe while the test waits; everything opened for the
/// run is closed before it returns. Blocking: call it from a test on its own thread.
@discardableResult
public func runCommand(
    _ arguments: [String],
    environment: [String: String]? = nil,
    input: String? = nil,
    directory: String? = nil,
    errors: ErrorStream = .separate
) throws -> CommandResult {
    let command = try PreparedCommand(arguments, environment, input, directory, errors)
    defer { command.close() }
    try command.process.run()
    command.process.waitUntilExit()
    return command.result()
}

/// `runCommand` for async tests: awaits the exit without blocking a thread of the concurrency
/// pool. A run longer than `timeout` is SIGKILLed (its pid only) and returns what it wrote by then.
@discardableResult
public func runCommandAsync(
    _ arguments: [String],
    environment: [String: String]? = nil,
    input: String? = nil,
    directory: String? = nil,
    errors: ErrorStream = .separate,
    timeout: Duration? = nil
) async throws -> CommandResult {
    let command = try PreparedCommand(arguments, environment, input, directory, errors)
    defer { command.close() }
    let process = command.process
    let watchdog = timeout.map { limit in
        Task {
            try await Task.sleep(for: limit)
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
    }
    defer { watchdog?.cancel() }
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
        process.terminationHandler = { _ in continuation.resume() }
        do {
            try process.run()
        } catch {
            process.terminationHandler = nil
            continuation.resume(throwing: error)
        }
    }
    return command.result()
}

/// A process set up for one run: its standard output and error in files of a scratch directory of
/// its own, its input from a file or /dev/null.
private final class PreparedCommand {
    let process = Process()
    private let scratch: String
    private let errors: ErrorStream
    private var handles: [FileHandle] = []

    init(
        _ arguments: [String],
        _ environment: [String: String]?,
        _ input: String?,
        _ directory: String?,
        _ errors: ErrorStream
    ) throws {
        scratch =
            FileManager.default.temporaryDirectory.appendingPathComponent(
                "weft-command-\(getpid())-\(UUID().uuidString)"
            ).path
        self.errors = errors
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: false)
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        if let environment { process.environment = environment }
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let output = try open(outputPath, writing: true)
        process.standardOutput = output
        process.standardError = errors == .merged ? output : try open(errorPath, writing: true)
        if let input {
            _ = FileManager.default.createFile(atPath: "\(scratch)/stdin", contents: Data(input.utf8))
            process.standardInput = try open("\(scratch)/stdin", writing: false)
        } else {
            process.standardInput = FileHandle.nullDevice
        }
    }

    private var outputPath: String { "\(scratch)/stdout" }
    private var errorPath: String { "\(scratch)/stderr" }

    private func open(_ path: String, writing: Bool) throws -> FileHandle {
        if writing { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        let handle = writing ? FileHandle(forWritingAtPath: path) : FileHandle(forReadingAtPath: path)
        guard let handle else { throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: path]) }
        handles.append(handle)
        return handle
    }

    /// What the finished process wrote, and its status.
    func result() -> CommandResult {
        let read = { (path: String) in
            String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
        }
        return CommandResult(
            status: process.terminationStatus,
            output: read(outputPath),
            error: errors == .merged ? "" : read(errorPath)
        )
    }

    /// Closes what the run opened and removes the scratch directory.
    func close() {
        for handle in handles { try? handle.close() }
        try? FileManager.default.removeItem(atPath: scratch)
    }
}
