import Foundation
import Synchronization

/// This executable again as `serve`: its stdin takes commands, its stdout lines are collected by a
/// thread of their own, so waiting for them never blocks the concurrency pool the watcher runs on.
final class Child: Sendable {
    private let process: Process
    private let input: FileHandle
    private let collected = Mutex<(lines: [String], partial: String)>(([], ""))

    init(arguments: [String]) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        process.arguments = arguments
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        input = stdin.fileHandleForWriting
        try process.run()
        let output = stdout.fileHandleForReading
        Thread.detachNewThread { [self] in
            while true {
                let data = output.availableData
                if data.isEmpty { break }
                self.collected.withLock { state in
                    state.partial += String(decoding: data, as: UTF8.self)
                    while let newline = state.partial.firstIndex(of: "\n") {
                        state.lines.append(String(state.partial[..<newline]))
                        state.partial = String(state.partial[state.partial.index(after: newline)...])
                    }
                }
            }
        }
    }

    var lines: [String] { collected.withLock { $0.lines } }

    func send(_ command: String) {
        input.write(Data((command + "\n").utf8))
    }

    func waitForLine(seconds: Double, where condition: (String) -> Bool) async throws -> String? {
        let deadline = monotonicNanoseconds() + UInt64(seconds * 1e9)
        while monotonicNanoseconds() < deadline {
            if let line = collected.withLock({ $0.lines.last(where: condition) }) { return line }
            guard process.isRunning else {
                throw BenchmarkFailure("the stand-in exited with status \(process.terminationStatus)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
}
