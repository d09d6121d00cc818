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
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent(
        "weft-command-\(getpid())-\(UUID().uuidString)"
    ).path
    try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: false)
    defer { try? FileManager.default.removeItem(atPath: scratch) }
    let outputPath = "\(scratch)/stdout"
    let errorPath = "\(scratch)/stderr"
    let inputPath = "\(scratch)/stdin"
    _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
    _ = FileManager.default.createFile(atPath: errorPath, contents: nil)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: arguments[0])
    process.arguments = Array(arguments.dropFirst())
    if let environment { process.environment = environment }
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let outputHandle = FileHandle(forWritingAtPath: outputPath)!
    let errorHandle = errors == .merged ? outputHandle : FileHandle(forWritingAtPath: errorPath)!
    defer {
        try? outputHandle.close()
        if errors == .separate { try? errorHandle.close() }
    }
    var inputHandle: FileHandle?
    if let input {
        _ = FileManager.default.createFile(atPath: inputPath, contents: Data(input.utf8))
        inputHandle = FileHandle(forReadingAtPath: inputPath)
    }
    defer { try? inputHandle?.close() }
    process.standardInput = inputHandle ?? FileHandle.nullDevice
    process.standardOutput = outputHandle
    process.standardError = errorHandle
    try process.run()
    process.waitUntilExit()
    let read = { (path: String) in String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
    }
    return CommandResult(
        status: process.terminationStatus,
        output: read(outputPath),
        error: errors == .merged ? "" : read(errorPath)
    )
}
