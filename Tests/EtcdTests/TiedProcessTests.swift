import Foundation
import Glibc
import TestSupport
import TestThreads
import Testing

/// `TiedProcess`, which TestEtcd starts etcd with: a child that dies with the runner, however the
/// runner ends, and not before. The runner is played by weft-tied-process-helper, SIGKILLed.
@Suite(.ownThread, .timeLimit(.minutes(1)))
struct TiedProcessTests {
    static let helper: String? = {
        guard let bundle = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else {
            return nil
        }
        let path = URL(fileURLWithPath: bundle).deletingLastPathComponent()
            .appendingPathComponent("weft-tied-process-helper").path
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }()

    /// Alive: the pid exists and is not a zombie waiting for a parent that does not reap.
    private static func isAlive(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let end = stat.lastIndex(of: ")")
        else { return false }
        return !stat[end...].hasPrefix(") Z") && !stat[end...].hasPrefix(") X")
    }

    @Test(
        .enabled(
            if: helper != nil,
            "no weft-tied-process-helper next to the test bundle: run swift build --build-tests"
        )
    )
    func theChildOutlivesTheThreadThatStartedItAndDiesWithItsSIGKILLedProcess() throws {
        let helper = Process()
        helper.executableURL = URL(fileURLWithPath: Self.helper!)
        helper.arguments = ["/bin/sleep", "600"]
        let output = Pipe()
        helper.standardOutput = output
        try helper.run()
        defer {
            if helper.isRunning { kill(helper.processIdentifier, SIGKILL) }
            helper.waitUntilExit()
        }
        let line = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
        let child = try #require(pid_t(line.trimmingCharacters(in: .whitespacesAndNewlines)), "helper said \(line)")
        defer { if Self.isAlive(child) { kill(child, SIGKILL) } }

        // The thread that started it has been joined; a death signal tied to that thread would
        // have come by now.
        usleep(300_000)
        #expect(Self.isAlive(child), "sleep died with the thread that started it")

        kill(helper.processIdentifier, SIGKILL)
        helper.waitUntilExit()
        #expect(waitUntil(timeout: .seconds(5)) { !Self.isAlive(child) }, "sleep outlived the SIGKILLed helper")
    }

    @Test func theExitStatusIsKeptAndAFailedExecThrows() throws {
        let output = FileHandle(forWritingAtPath: "/dev/null")!
        let exiting = try TiedProcess.launch("/bin/sh", ["-c", "exit 3"], output: output)
        #expect(waitUntil { !exiting.isRunning })
        #expect(exiting.terminationStatus == 3)
        exiting.terminate()  // after the reap: must not signal whoever has the pid now

        let killed = try TiedProcess.launch("/bin/sleep", ["600"], output: output)
        #expect(killed.isRunning)
        killed.signal(SIGKILL)
        #expect(waitUntil { !killed.isRunning })
        #expect(killed.terminationStatus == 128 + SIGKILL)

        #expect {
            _ = try TiedProcess.launch("/nonexistent/etcd", [], output: output)
        } throws: { error in
            (error as? TiedProcessFailure)?.code == ENOENT
        }
    }
}
