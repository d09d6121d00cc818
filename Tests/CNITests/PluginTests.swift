import Foundation
import Glibc
import TestThreads
import Testing

@testable import CNI

/// A scratch directory with a subnet.env, a dataDir, and a fake `bridge` delegate (a shell
/// script) on CNI_PATH that records its stdin and environment per command, prints a result and
/// exits with $FAKE_STATUS. The real bridge and host-local are in CNIIntegrationTests.
final class PluginBed {
    let directory: String
    var subnetFile: String { "\(directory)/subnet.env" }
    var dataDir: String { "\(directory)/data/cni" }
    var binDir: String { "\(directory)/bin" }

    init() throws {
        directory =
            FileManager.default.temporaryDirectory.appendingPathComponent("weft-cni-\(getpid())-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: binDir, withIntermediateDirectories: true)
        try "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n"
            .write(toFile: subnetFile, atomically: true, encoding: .utf8)
        let script = """
            #!/bin/sh
            cat > "\(directory)/stdin-$CNI_COMMAND"
            env > "\(directory)/env-$CNI_COMMAND"
            if [ "$CNI_COMMAND" = ADD ]; then echo '{"cniVersion":"1.0.0","ips":[{"address":"10.244.1.2/24"}]}'; fi
            if [ -n "$FAKE_STATUS" ]; then echo '{"code":11,"msg":"fake failure"}'; exit "$FAKE_STATUS"; fi
            exit 0
            """
        try script.write(toFile: "\(binDir)/bridge", atomically: true, encoding: .utf8)
        chmod("\(binDir)/bridge", 0o755)
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    func config(version: String = "1.0.0", extra: String = "") -> String {
        #"{"cniVersion":"\#(version)","name":"cbr0","type":"weft-cni","subnetFile":"\#(subnetFile)","dataDir":"\#(dataDir)","delegate":{"hairpinMode":true}\#(extra)}"#
    }

    func environment(_ command: String, id: String = "ctr1", extra: [String: String] = [:]) -> [String: String] {
        [
            "CNI_COMMAND": command, "CNI_CONTAINERID": id, "CNI_NETNS": "/nonexistent/netns/\(id)",
            "CNI_IFNAME": "eth0",
            "CNI_PATH": "/nonexistent-dir:\(binDir)", "PATH": "/usr/bin:/bin",
        ].merging(extra) { $1 }
    }

    func run(
        _ command: String,
        id: String = "ctr1",
        config: String? = nil,
        extra: [String: String] = [:]
    ) async -> PluginOutput {
        let input = Array((config ?? self.config()).utf8)
        return await Plugin.run(environment: environment(command, id: id, extra: extra)) { input }
    }

    func recorded(_ name: String) -> String? { try? String(contentsOfFile: "\(directory)/\(name)", encoding: .utf8) }

    func removeRecords() {
        for name in ["stdin-ADD", "stdin-DEL", "stdin-CHECK", "env-ADD", "env-DEL", "env-CHECK"] {
            unlink("\(directory)/\(name)")
        }
    }
}

func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

func errorObject(_ output: PluginOutput) -> [String: Any]? {
    (try? JSONSerialization.jsonObject(with: Data(output.stdout))) as? [String: Any]
}

@Suite(.ownThread, .timeLimit(.minutes(1)))
struct PluginTests {
    @Test func addSavesTheRenderedConfigPrivatelyAndPassesTheDelegatesResultOn() async throws {
        let bed = try PluginBed()
        let output = await bed.run("ADD")
        #expect(output.status == 0, "\(text(output.stdout))")
        #expect(text(output.stdout) == "{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.244.1.2/24\"}]}\n")

        let saved = try #require(bed.recorded("data/cni/ctr1"))
        #expect(
            saved == #"{"cniVersion":"1.0.0","hairpinMode":true,"ipam":{"ranges":[[{"subnet":"10.244.1.0/24"}]],"#
                + #""routes":[{"dst":"10.244.0.0/16"}],"type":"host-local"},"ipMasq":true,"isGateway":true,"mtu":1450,"name":"cbr0","type":"bridge"}"#
        )
        #expect(bed.recorded("stdin-ADD") == saved, "the delegate gets exactly what was saved")
        let env = try #require(bed.recorded("env-ADD"))
        #expect(
            env.contains("CNI_COMMAND=ADD\n") && env.contains("CNI_CONTAINERID=ctr1\n")
                && env.contains("CNI_IFNAME=eth0\n")
        )

        var status = stat()
        #expect(stat(bed.dataDir, &status) == 0 && status.st_mode & 0o777 == 0o700)
        #expect(stat("\(bed.dataDir)/ctr1", &status) == 0 && status.st_mode & 0o777 == 0o600)
        #expect(
            stat("\(bed.directory)/data", &status) == 0 && status.st_mode & 0o777 == 0o700,
            "parents created are 0700 too"
        )
    }

    /// More than a pipe's 64 KB: the delegate reads it from the saved file, so nothing blocks.
    @Test func aLargeConfigReachesTheDelegateWhole() async throws {
        let bed = try PluginBed()
        let padding = String(repeating: "x", count: 200_000)
        let output = await bed.run("ADD", config: bed.config(extra: #","runtimeConfig":{"padding":"\#(padding)"}"#))
        #expect(output.status == 0)
        let sent = try #require(bed.recorded("stdin-ADD"))
        #expect(sent.count > 200_000 && sent == bed.recorded("data/cni/ctr1"))
    }

    @Test func aFailingDelegatesErrorAndStatusArePassedOn() async throws {
        let bed = try PluginBed()
        let output = await bed.run("ADD", extra: ["FAKE_STATUS": "3"])
        #expect(output.status == 3)
        #expect(text(output.stdout).hasSuffix("{\"code\":11,\"msg\":\"fake failure\"}\n"))
        #expect(bed.recorded("data/cni/ctr1") != nil, "kept for the runtime's DEL")
    }

    @Test func delRunsTheDelegateOnTheSavedConfigThenRemovesIt() async throws {
        let bed = try PluginBed()
        #expect(await bed.run("ADD").status == 0)
        let saved = try #require(bed.recorded("data/cni/ctr1"))
        // DEL's own config could differ (a changed conflist): the saved one is what counts.
        let output = await bed.run(
            "DEL",
            config: bed.config(extra: #","delegate":{"type":"ipvlan"}"#),
            extra: ["CNI_NETNS": ""]
        )
        #expect(output.status == 0 && output.stdout.isEmpty, "\(text(output.stdout))")
        #expect(bed.recorded("stdin-DEL") == saved)
        #expect(bed.recorded("data/cni/ctr1") == nil)
    }

    @Test func delOfAnUnknownContainerSucceedsWithoutTheDelegate() async throws {
        let bed = try PluginBed()
        let output = await bed.run("DEL", id: "never-added")
        #expect(output == PluginOutput(stdout: [], stderr: "", status: 0))
        #expect(bed.recorded("stdin-DEL") == nil)
    }

    @Test func aFailedDelKeepsTheFileForTheRetry() async throws {
        let bed = try PluginBed()
        #expect(await bed.run("ADD").status == 0)
        let failed = await bed.run("DEL", extra: ["FAKE_STATUS": "1"])
        #expect(failed.status == 1)
        #expect(bed.recorded("data/cni/ctr1") != nil)
        bed.removeRecords()
        #expect(await bed.run("DEL").status == 0)
        #expect(bed.recorded("stdin-DEL") != nil && bed.recorded("data/cni/ctr1") == nil)
    }

    @Test func checkPassesWhileTheContainersAddressIsInTheLease() async throws {
        let bed = try PluginBed()
        let added = await bed.run("ADD")
        #expect(added.status == 0, "\(text(added.stdout)) \(added.stderr)")
        let prevResult =
            #","prevResult":{"cniVersion":"1.0.0","ips":[{"address":"10.244.1.2/24","gateway":"10.244.1.1"},{"address":"fd00::2/64"}]}"#
        let output = await bed.run("CHECK", config: bed.config(extra: prevResult))
        #expect(output == PluginOutput(stdout: [], stderr: "", status: 0), "\(text(output.stdout))")
        #expect(bed.recorded("stdin-CHECK") == nil, "bridge 1.1.1's CHECK is not run")

        // weftd took another subnet: the container's address no longer routes here.
        try "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n"
            .write(toFile: bed.subnetFile, atomically: true, encoding: .utf8)
        let moved = await bed.run("CHECK", config: bed.config(extra: prevResult))
        #expect(moved.status == 1)
        #expect(
            errorObject(moved)?["msg"] as? String
                == "container address 10.244.1.2 is outside this host's subnet 10.244.7.0/24 (\(bed.subnetFile))"
        )

        let unknown = await bed.run("CHECK", id: "never-added")
        #expect(unknown.status == 1 && errorObject(unknown)?["code"] as? Int == 3)
        let old = await bed.run("CHECK", config: bed.config(version: "0.3.1"))
        #expect(errorObject(old)?["msg"] as? String == "config version does not allow CHECK")
    }

    @Test func versionListsTheSupportedVersionsWithoutReadingStdin() async {
        let output = await Plugin.run(environment: ["CNI_COMMAND": "VERSION"]) {
            Issue.record("VERSION read stdin")
            return []
        }
        #expect(output.status == 0)
        #expect(
            text(output.stdout)
                == #"{"cniVersion":"1.0.0","supportedVersions":["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0"]}"#
                + "\n"
        )
    }

    @Test func runByHandItSaysWhatItIs() async {
        let output = await Plugin.run(environment: [:]) { [] }
        #expect(output.status == 0 && output.stdout.isEmpty)
        #expect(output.stderr.contains("CNI protocol versions supported: 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0"))
    }

    @Test func errorsAreCNIErrorJSONWithTheConfigsVersion() async throws {
        let bed = try PluginBed()
        try FileManager.default.removeItem(atPath: bed.subnetFile)
        let output = await bed.run("ADD", config: bed.config(version: "0.4.0"))
        #expect(output.status == 1)
        let object = try #require(errorObject(output), "\(text(output.stdout))")
        #expect(object["cniVersion"] as? String == "0.4.0")
        #expect(object["code"] as? Int == 999)
        #expect(
            object["msg"] as? String == "loadFlannelSubnetEnv failed: open \(bed.subnetFile): no such file or directory"
        )
        #expect(object["details"] is String)
        #expect(bed.recorded("stdin-ADD") == nil && bed.recorded("data/cni/ctr1") == nil)

        let newer = await bed.run("ADD", config: bed.config(version: "1.1.0"))
        #expect(errorObject(newer)?["code"] as? Int == 1)
        #expect(
            errorObject(newer)?["details"] as? String
                == #"config is "1.1.0", plugin supports ["0.1.0" "0.2.0" "0.3.0" "0.3.1" "0.4.0" "1.0.0"]"#
        )
        let unknown = await bed.run("GC")
        #expect(errorObject(unknown)?["msg"] as? String == "unknown CNI_COMMAND: GC")
    }

    @Test func aMissingDelegateIsNamedWithTheSearchPath() async throws {
        let bed = try PluginBed()
        let output = await bed.run("ADD", config: bed.config(extra: #","delegate":{"type":"macvlan"}"#))
        #expect(
            errorObject(output)?["msg"] as? String
                == "failed to find plugin \"macvlan\" in path [/nonexistent-dir \(bed.binDir)]"
        )
    }

    @Test func thePluginsOwnNamespaceIsRefused() async throws {
        let bed = try PluginBed()
        let output = await bed.run("ADD", extra: ["CNI_NETNS": "/proc/self/ns/net"])
        #expect(errorObject(output)?["code"] as? Int == 8)
        #expect(bed.recorded("stdin-ADD") == nil)
    }
}
