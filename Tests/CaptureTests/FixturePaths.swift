import Foundation

/// Committed captures (see scripts/capture-fixtures.sh for how they were made).
enum Fixture {
    static func path(_ name: String) -> String {
        guard let url = Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures") else {
            fatalError("fixture \(name) missing from the CaptureTests bundle")
        }
        return url.path
    }

    /// A fresh path in this test process's temporary directory.
    static func temporaryPath(_ name: String) -> String {
        scratchDirectory.appendingPathComponent("\(UUID().uuidString)-\(name)").path
    }

    /// One directory per test process; directories left by earlier processes that are gone (a
    /// test run leaves its own behind) are removed when the next run starts.
    private static let scratchDirectory: URL = {
        let files = FileManager.default
        let parent = files.temporaryDirectory
        let prefix = "weft-capture-tests-"
        for name in (try? files.contentsOfDirectory(atPath: parent.path)) ?? [] where name.hasPrefix(prefix) {
            let pid = name.dropFirst(prefix.count)
            if !files.fileExists(atPath: "/proc/\(pid)") {
                try? files.removeItem(at: parent.appendingPathComponent(name))
            }
        }
        let directory = parent.appendingPathComponent(prefix + String(ProcessInfo.processInfo.processIdentifier))
        try? files.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }()
}
