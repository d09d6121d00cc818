import Addressing
import Config
@testable import Daemon
import Foundation
import Testing

/// subnet.env as weftd keeps it: put back at a resync when truncated, deleted or edited, one line
/// each time; a failure said once.
@Suite struct SubnetFileTests {
    static let env = SubnetEnv(network: IPv4Prefix("10.244.0.0/16"), subnet: IPv4Prefix("10.244.34.0/24"), mtu: 1450, ipMasq: false)
    static let text = "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.34.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n"

    private func withFile(_ body: (SubnetFile, String, WeftdRunTests.Capture) throws -> Void) throws {
        let directory = try StatusServerTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let capture = WeftdRunTests.Capture()
        let path = "\(directory)/subnet.env"
        try body(SubnetFile(path: path, logger: capture.logger), path, capture)
    }

    private func contents(_ path: String) -> String? {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
    }

    @Test func aTruncatedDeletedOrEditedFileIsPutBackWithOneLineEach() throws {
        try withFile { file, path, capture in
            #expect(file.keep() == .nothingWritten)
            #expect(!FileManager.default.fileExists(atPath: path), "kept a file before any lease")
            try file.write(Self.env)
            #expect(file.keep() == .intact)
            #expect(capture.all.isEmpty)

            try Data().write(to: URL(fileURLWithPath: path))
            #expect(file.keep() == .restored("empty"))
            #expect(contents(path) == Self.text)
            try FileManager.default.removeItem(atPath: path)
            #expect(file.keep() == .restored("missing"))
            #expect(contents(path) == Self.text)
            try Data(Self.text.replacingOccurrences(of: "1450", with: "1400").utf8).write(to: URL(fileURLWithPath: path))
            #expect(file.keep() == .restored("changed"))
            #expect(contents(path) == Self.text)
            #expect(file.keep() == .intact)
            #expect(capture.all == ["warning \(path) was empty; wrote it again as weftd keeps it",
                                    "warning \(path) was missing; wrote it again as weftd keeps it",
                                    "warning \(path) was changed; wrote it again as weftd keeps it"])
        }
    }

    @Test func aNewLeaseIsWhatIsKeptFromThenOn() throws {
        try withFile { file, path, _ in
            try file.write(Self.env)
            var moved = Self.env
            moved.subnet = IPv4Prefix("10.244.35.0/24")
            try file.write(moved)
            #expect(file.keep() == .intact)
            try FileManager.default.removeItem(atPath: path)
            #expect(file.keep() == .restored("missing"))
            #expect(contents(path) == moved.text)
        }
    }

    @Test func aFileThatCannotBePutBackIsSaidOnceUntilItIsBack() throws {
        try withFile { file, path, capture in
            try file.write(Self.env)
            try FileManager.default.removeItem(atPath: path)
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
            guard case .failed(let error) = file.keep() else { Issue.record("a directory at \(path) was kept"); return }
            #expect(error.contains("directory"), "\(error)")
            #expect(file.keep() == .failed(error))
            #expect(capture.all.count == 1 && capture.all[0].hasPrefix("warning \(path) differs from what weftd wrote and cannot be put back"),
                    "\(capture.all)")
            try FileManager.default.removeItem(atPath: path)
            #expect(file.keep() == .restored("missing"))
            #expect(capture.all.count == 2 && contents(path) == Self.text)
        }
    }
}
