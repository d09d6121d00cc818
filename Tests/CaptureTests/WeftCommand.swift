import Foundation
import TestSupport

/// Runs the `weft` executable built beside the tests. `swift build --build-tests` (and so
/// `swift test`) builds every product into one directory, which also holds this target's
/// resource bundle.
struct WeftCommand {
    struct Result {
        var status: Int32
        var output: String
        var error: String

        /// The summary's `name: count` lines, and the indented drop reasons as `drop.<reason>`.
        var counts: [String: UInt64] {
            var counts: [String: UInt64] = [:]
            for line in output.split(separator: "\n") {
                let parts = line.split(separator: ":", maxSplits: 1)
                guard parts.count == 2, let value = UInt64(parts[1].trimmingCharacters(in: .whitespaces)) else {
                    continue
                }
                let name = parts[0].trimmingCharacters(in: .whitespaces)
                counts[line.hasPrefix("  ") ? "drop.\(name)" : name] = value
            }
            return counts
        }
    }

    static var executable: URL {
        Bundle.module.bundleURL.deletingLastPathComponent().appendingPathComponent("weft")
    }

    static func run(_ arguments: [String]) throws -> Result {
        guard FileManager.default.isExecutableFile(atPath: executable.path) else {
            throw Missing(path: executable.path)
        }
        let result = try runCommand([executable.path] + arguments)
        return Result(status: result.status, output: result.output, error: result.error)
    }

    struct Missing: Error, CustomStringConvertible {
        var path: String
        var description: String { "no weft executable at \(path): run `swift build --build-tests` first" }
    }
}
