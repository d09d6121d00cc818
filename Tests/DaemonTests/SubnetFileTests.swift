import Addressing
import Config
import Foundation
import Testing

@testable import Daemon

/// subnet.env as weftd keeps it: put back at a resync when truncated, deleted or edited, one line
/// each time; a failure said once; the previous run's FLANNEL_SUBNET ignored with a reason when it
/// cannot be a lease.
@Suite struct SubnetFileTests {
    static let env = SubnetEnv(
        network: IPv4Prefix("10.244.0.0/16"),
        subnet: IPv4Prefix("10.244.34.0/24"),
        mtu: 1450,
        ipMasq: false
    )
    static let text =
        "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.34.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n"

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
            try Data(Self.text.replacingOccurrences(of: "1450", with: "1400").utf8).write(
                to: URL(fileURLWithPath: path)
            )
            #expect(file.keep() == .restored("changed"))
            #expect(contents(path) == Self.text)
            #expect(file.keep() == .intact)
            #expect(
                capture.all == [
                    "warning \(path) was empty; wrote it again as weftd keeps it",
                    "warning \(path) was missing; wrote it again as weftd keeps it",
                    "warning \(path) was changed; wrote it again as weftd keeps it",
                ]
            )
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
            guard case .failed(let error) = file.keep() else {
                Issue.record("a directory at \(path) was kept")
                return
            }
            #expect(error.contains("directory"), "\(error)")
            #expect(file.keep() == .failed(error))
            #expect(
                capture.all.count == 1
                    && capture.all[0].hasPrefix("warning \(path) differs from what weftd wrote and cannot be put back"),
                "\(capture.all)"
            )
            try FileManager.default.removeItem(atPath: path)
            #expect(file.keep() == .restored("missing"))
            #expect(capture.all.count == 2 && contents(path) == Self.text)
        }
    }

    @Test func thePreviousSubnetIsAskedForOnlyWhenItCanBeALease() throws {
        let config = try NetworkConfig(network: #require(IPv4Prefix("10.244.0.0/16")), subnetLength: 24)
        try withFile { file, path, capture in
            #expect(file.previousSubnet(fitting: config) == nil)
            #expect(capture.all.isEmpty, "a first start says nothing")

            func previous(_ subnet: String) -> IPv4Prefix? {
                _ = FileManager.default.createFile(
                    atPath: path,
                    contents: Data("FLANNEL_NETWORK=10.99.0.0/16\nFLANNEL_SUBNET=\(subnet)\n".utf8)
                )
                capture.lines.withLock { $0 = [] }
                return file.previousSubnet(fitting: config)
            }
            #expect(previous("10.244.34.1/24") == IPv4Prefix("10.244.34.0/24"))
            #expect(capture.all == ["info \(path) names 10.244.34.0/24 from a previous run; asking for it first"])

            #expect(previous("10.99.5.1/24") == nil)
            #expect(
                capture.all == [
                    "warning ignoring FLANNEL_SUBNET 10.99.5.0/24 in \(path) from a previous run: "
                        + "10.99.5.0/24 lies outside the Network 10.244.0.0/16; not asking for it"
                ]
            )
            #expect(previous("10.244.34.1/26") == nil)
            #expect(capture.all.count == 1 && capture.all[0].contains("is not a /24 (the SubnetLen)"), "\(capture.all)")
            #expect(previous("10.244.0.1/24") == nil)
            #expect(
                capture.all.count == 1 && capture.all[0].contains("lies below SubnetMin 10.244.1.0"),
                "\(capture.all)"
            )
            #expect(previous("garbage") == nil)
            #expect(
                capture.all.count == 1 && capture.all[0].hasPrefix("warning ignoring the previous subnet:"),
                "\(capture.all)"
            )
        }
    }
}
