import ConfigTestSupport
import Foundation
import Testing

@testable import Config

#if canImport(Glibc)
import Glibc
import TestThreads
#endif

/// `AtomicFile.install`, what `weft install-cni` and `weft install-conf` run in the DaemonSet's
/// init containers.
@Suite(.computeLane) struct AtomicFileInstalls {
    @Test func copiesEveryByteWithTheModeAndLeavesNoTemporaryBehind() throws {
        let root = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(root) }
        // Every byte value, and more than the 1 MiB a config read allows.
        let bytes = (0..<(3 << 19)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let source = "\(root)/weft-cni"
        #expect(FileManager.default.createFile(atPath: source, contents: Data(bytes)))
        let destination = "\(root)/opt/cni/bin/flannel"
        try AtomicFile.write("an older plugin\n", to: destination, mode: 0o600)

        try AtomicFile.install(source, to: destination, mode: 0o755)

        #expect(FileManager.default.contents(atPath: destination) == Data(bytes))
        #expect(permissions(destination) == 0o755)
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(root)/opt/cni/bin") == ["flannel"])
    }

    /// A runtime may be running the plugin while the init container replaces it: writing into
    /// the running file fails with ETXTBSY (and `cp -f` falls back to unlink), a rename does not.
    @Test func replacesAPluginThatIsRunning() throws {
        let root = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(root) }
        let plugin = "\(root)/flannel"
        try AtomicFile.install("/bin/sleep", to: plugin, mode: 0o755)
        let running = Process()
        running.executableURL = URL(fileURLWithPath: plugin)
        running.arguments = ["30"]
        try running.run()
        defer {
            kill(running.processIdentifier, SIGKILL)
            running.waitUntilExit()
        }

        try AtomicFile.install("/bin/true", to: plugin, mode: 0o755)

        #expect(FileManager.default.contents(atPath: plugin) == FileManager.default.contents(atPath: "/bin/true"))
        #expect(running.isRunning)
    }

    @Test func aMissingSourceIsOneLineNamingIt() throws {
        let root = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(root) }
        do {
            try AtomicFile.install("\(root)/absent", to: "\(root)/flannel", mode: 0o755)
            Issue.record("installed a file that does not exist")
        } catch {
            expectOneLine(error, field: "path", mentions: ["\(root)/absent", "no such file"])
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: root) == [])
    }
}
