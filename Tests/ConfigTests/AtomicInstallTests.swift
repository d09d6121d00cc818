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
        // A child another test's thread forks in the same moment inherits the installer's write
        // descriptor until it execs, and exec then fails with ETXTBSY; ChildProcess (and libcni)
        // retry for this, and so does the test, for a second at most.
        func startPlugin(attempt: Int = 1) throws -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: plugin)
            process.arguments = ["30"]
            do {
                try process.run()
                return process
            } catch let error as NSError
                where attempt < 50 && (error.userInfo[NSUnderlyingErrorKey] as? NSError)?.code == Int(ETXTBSY)
            {
                usleep(20_000)
                return try startPlugin(attempt: attempt + 1)
            }
        }
        let running = try startPlugin()
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
