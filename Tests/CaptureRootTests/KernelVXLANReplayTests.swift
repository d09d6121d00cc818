import Capture
import Foundation
import TestSupport
import TestThreads
import Testing

/// Records fresh kernel-VXLAN captures in throwaway network namespaces (scripts/capture-fixtures.sh)
/// and checks that `weft replay decap` of host B's underlay gives exactly the inner packets host B's
/// flannel.1 received, byte for byte and in order: with offloads off, with tunnel TSO super-frames,
/// with UDP GSO super-frames, and with inner IPv6; and that a flannel-v6.1 capture (IPv6 underlay,
/// which the engine cannot take) is counted frame for frame as such, not replayed.
@Suite(.ownThread) struct KernelVXLANReplayTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let script = repository.appendingPathComponent("scripts/capture-fixtures.sh").path

    /// `swift test` runs the test binary from the products directory, where `weft` is built too.
    static let weft: String = {
        let executable =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent("weft").path
    }()

    static let missing: String? = {
        guard getuid() == 0 else { return "not root: network namespaces and VXLAN devices need it" }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin"
        let directories = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin"]
        for tool in ["ip", "bridge", "ethtool", "tcpdump", "iperf3", "ping", "python3"] {
            if !directories.contains(where: { FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)") }) {
                return "\(tool) is not installed (scripts/setup installs the test bed's tools)"
            }
        }
        guard FileManager.default.isExecutableFile(atPath: weft) else { return "no weft executable at \(weft)" }
        return nil
    }()

    @discardableResult
    static func run(_ executable: String, _ arguments: [String]) throws -> (Int32, String) {
        let result = try runCommand([executable] + arguments, errors: .merged)
        return (result.status, result.output)
    }

    static func packets(_ path: String) throws -> [[UInt8]] {
        var reader = try CaptureReader(path: path)
        return try reader.readAll().map(\.bytes)
    }

    // Needs root and the test bed's tools; skipped, saying which is missing, otherwise.
    @Test(.enabled(if: missing == nil, "\(missing ?? "")"), .timeLimit(.minutes(2)))
    func freshCapturesReplayToWhatFlannel1Received() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "weft-integration-\(UUID().uuidString)"
        )
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        let (status, log) = try Self.run("/bin/bash", [Self.script, directory.path])
        try #require(status == 0, "capture-fixtures.sh failed: \(log)")

        for scenario in ["offloads-off", "offloads-on", "udp-gso", "inner6"] {
            let underlay = directory.appendingPathComponent("\(scenario)-underlay.pcap").path
            let received = try Self.packets(directory.appendingPathComponent("\(scenario)-flannel1.pcap").path)
            let output = directory.appendingPathComponent("\(scenario)-replayed.pcap").path
            let (replayStatus, summary) = try Self.run(
                Self.weft,
                [
                    "replay", "decap", "--backend", "vxlan", "--vni", "1", "--vtep-mac", "aa:bb:cc:dd:ee:02",
                    "--input", underlay, "--output", output,
                ]
            )
            try #require(replayStatus == 0, "\(scenario): \(summary)")
            let replayed = try Self.packets(output)
            #expect(!received.isEmpty, "\(scenario): flannel.1 received nothing")
            #expect(replayed.count == received.count, "\(scenario): \(summary)")
            #expect(replayed == received.map { Array($0.dropFirst(14)) }, "\(scenario)")
            if scenario == "udp-gso" { #expect(summary.contains("gso super-frames: 3"), "\(summary)") }
        }

        let underlay6 = directory.appendingPathComponent("underlay6-underlay.pcap").path
        let frames = try Self.packets(underlay6)
        #expect(!frames.isEmpty, "underlay6: the underlay carried nothing")
        #expect(try !Self.packets(directory.appendingPathComponent("underlay6-flannelv6.pcap").path).isEmpty)
        let (status6, summary6) = try Self.run(
            Self.weft,
            [
                "replay", "decap", "--backend", "vxlan", "--vtep-mac", "aa:bb:cc:dd:ee:12", "--input", underlay6,
                "--output", directory.appendingPathComponent("underlay6-replayed.pcap").path,
            ]
        )
        #expect(status6 == 0, "\(summary6)")
        #expect(summary6.contains("ipv6 underlay (not replayed): \(frames.count)\n"), "\(summary6)")
        #expect(summary6.contains("packets out: 0\n"), "\(summary6)")
    }
}
