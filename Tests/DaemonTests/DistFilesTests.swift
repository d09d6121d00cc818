import Addressing
import Config
import Foundation
import Testing

@testable import Daemon

/// dist/weftd.service and dist/weftd.env, read the way systemd reads them.
@Suite struct DistFilesTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func text(_ name: String) throws -> String {
        try String(contentsOf: repository.appendingPathComponent("dist/\(name)"), encoding: .utf8)
    }

    /// systemd's EnvironmentFile rules for what the file uses: KEY=VALUE lines, '#' comments,
    /// one pair of surrounding double quotes removed.
    static func environmentFile(_ text: String) -> [String: String] {
        var values: [String: String] = [:]
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            guard !line.isEmpty, !line.hasPrefix("#"), !line.hasPrefix(";"), let equals = line.firstIndex(of: "=")
            else { continue }
            var value = String(line[line.index(after: equals)...])
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") {
                value = String(value.dropFirst().dropLast())
            }
            values[String(line[..<equals])] = value
        }
        return values
    }

    @Test func unitIsTypeNotifyAndRunsWeftdWithTheEnvironmentFile() throws {
        let unit = try Self.text("weftd.service")
        let lines = Set(unit.split(separator: "\n").map(String.init))
        for expected in [
            "[Service]", "Type=notify", "EnvironmentFile=/etc/weft/weftd.env",
            "ExecStart=/usr/local/bin/weftd $WEFTD_OPTIONS",
            "Restart=on-failure", "Before=docker.service", "RequiredBy=docker.service", "WantedBy=multi-user.target",
        ] {
            #expect(lines.contains(expected), "\(expected)")
        }
        #expect(!unit.contains("flanneld $") && !unit.contains("mk-docker-opts.sh -"), "weftd replaces both")
    }

    @Test func environmentFileKeysParseWithDaemonOptions() throws {
        let values = Self.environmentFile(try Self.text("weftd.env"))
        let known = Set(DaemonFlag.all.map(\.environmentVariable))
        for key in values.keys where key.hasPrefix("FLANNELD_") {
            #expect(known.contains(key), "\(key) is not a weftd flag")
        }
        #expect(values.keys.filter { $0.hasPrefix("FLANNELD_") }.count >= 10)

        // As the unit runs it: the file's variables in the environment, $WEFTD_OPTIONS split on spaces.
        let arguments = (values["WEFTD_OPTIONS"] ?? "").split(separator: " ").map(String.init)
        guard case .run(let options) = try DaemonOptions.parse(arguments: arguments, environment: values) else {
            Issue.record("not a run command")
            return
        }
        #expect(options.etcdEndpoints == ["http://198.18.0.10:2379", "http://198.18.0.11:2379"])
        #expect(options.interfaces == ["eth1"] && options.interfaceRegexes == ["^eth"])
        #expect(options.ipMasq && options.healthzPort == 8081 && options.healthzIP == IPv4Address(127, 0, 0, 1))
        #expect(options.verbosity == 1, "the command line beats FLANNELD_V")
        #expect(options.dockerOptionsFile == "/run/flannel/docker")
        #expect(options.dockerOptions.combinedKey == "DOCKER_NETWORK_OPTIONS" && options.dockerOptions.form == .both)
        #expect(options.subnetLeaseRenewMargin == .seconds(3600))
    }
}
