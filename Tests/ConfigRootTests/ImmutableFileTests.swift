import ConfigTestSupport
import Foundation
import TestSupport
import Testing

@testable import Config

#if canImport(Glibc)
import Glibc
#endif

/// Runs chattr with `arguments`; true when it succeeded.
@discardableResult
func chattr(_ arguments: String...) -> Bool {
    (try? runCommand(["/usr/bin/chattr"] + arguments))?.status == 0
}

/// Why `chattr +i` cannot be tried here, or nil.
let immutableFilesUnavailable: String? = {
    guard geteuid() == 0 else { return "not root: only root sets the immutable attribute (run as root)" }
    guard FileManager.default.isExecutableFile(atPath: "/usr/bin/chattr") else {
        return "/usr/bin/chattr is not installed (e2fsprogs)"
    }
    guard let root = try? makeTemporaryDirectory() else { return "no temporary directory" }
    defer { removeTemporaryDirectory(root) }
    let probe = "\(root)/probe"
    _ = FileManager.default.createFile(atPath: probe, contents: Data())
    guard chattr("+i", probe) else { return "the filesystem of \(root) does not take chattr +i" }
    chattr("-i", probe)
    return nil
}()

/// subnet.env made immutable or append-only (chattr +i, +a) refuses even root with EPERM: the
/// error names what holds the attribute and `chattr -i`, not "run as root".
@Suite(.serialized, .enabled(if: immutableFilesUnavailable == nil, "\(immutableFilesUnavailable ?? "")"))
struct ImmutableFileTests {
    private func failure(writing path: String) -> ConfigError? {
        do {
            try AtomicFile.write("FLANNEL_MTU=1450\n", to: path)
            Issue.record("wrote \(path)")
            return nil
        } catch {
            return error
        }
    }

    @Test func anImmutableFileIsNamedWithChattr() throws {
        let root = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(root) }
        let path = "\(root)/subnet.env"
        try AtomicFile.write("FLANNEL_MTU=1400\n", to: path)
        #expect(chattr("+i", path))
        defer { chattr("-i", path) }

        let error = failure(writing: path)
        expectOneLine(error, field: "file", mentions: ["rename", "errno \(EPERM)", "chattr -i -a \(path)"])
        #expect(error.map { !$0.description.contains("root") } ?? false, "\(error.map { "\($0)" } ?? "")")
        #expect(contents(path) == "FLANNEL_MTU=1400\n")
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: root) == ["subnet.env"],
            "a temporary file was left behind"
        )
    }

    @Test func anImmutableDirectoryIsNamedWithChattr() throws {
        let root = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(root) }
        let directory = "\(root)/flannel"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        #expect(chattr("+i", directory))
        defer { chattr("-i", directory) }

        let error = failure(writing: "\(directory)/subnet.env")
        expectOneLine(error, field: "file", mentions: ["create the temporary file", "chattr -i -a \(directory)"])
        #expect(error.map { !$0.description.contains("chattr -i -a \(directory)/") } ?? false)
    }

    /// An append-only directory takes the temporary file but refuses the rename over the old one:
    /// the file itself is writable, so the directory is named.
    @Test func anAppendOnlyDirectoryIsNamedForTheRename() throws {
        let root = try makeTemporaryDirectory()
        defer { removeTemporaryDirectory(root) }
        let directory = "\(root)/flannel"
        let path = "\(directory)/subnet.env"
        try AtomicFile.write("FLANNEL_MTU=1400\n", to: path)
        #expect(chattr("+a", directory))
        defer { chattr("-a", directory) }

        let error = failure(writing: path)
        expectOneLine(error, field: "file", mentions: ["rename", "chattr -i -a \(directory)"])
        #expect(error.map { !$0.description.contains("chattr -i -a \(path)") } ?? false)
        #expect(contents(path) == "FLANNEL_MTU=1400\n")
    }
}
