import Daemon
import Foundation
import Glibc
import TestSupport
import TestThreads
import Testing

/// scripts/image run on the binaries `swift build --build-tests` made (a debug build: no release
/// build in CI), the image unpacked with umoci as a runtime would, and its programs run with its
/// rootfs as /, so a library the image lacks fails here and not on a node.
@Suite(
    .ownThread,
    .enabled(if: imageUnavailable == nil, "\(imageUnavailable ?? "")"),
    .serialized,
    .timeLimit(.minutes(5))
)
struct WeftImage {
    @Test func entrypointAndInitContainersRunFromTheImage() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent(
            "weft-image-test-\(UUID().uuidString)"
        ).path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let version = WeftDaemon.version

        // At the lowest priority: copying and compressing 200 MB must not take the CPU from the
        // timing-sensitive suites that run beside this one.
        let build = try runCommand([
            "/usr/bin/nice", "-n", "19", "\(repositoryRoot)/scripts/image", "--binaries", productsDirectory, "--output",
            "\(scratch)/out",
        ])
        try #require(build.status == 0, "scripts/image failed (\(build.status)): \(build.error)")
        #expect(
            build.output.contains("image: weft:\(version)"),
            "scripts/image did not report weft:\(version): \(build.output)"
        )

        let archive = try runCommand(["/usr/bin/tar", "-tf", "\(scratch)/out/weft-\(version).oci.tar"])
        #expect(
            archive.status == 0
                && Set(archive.output.split(separator: "\n")).isSuperset(of: ["oci-layout", "index.json"]),
            "the OCI archive lacks oci-layout or index.json: \(archive.output.prefix(300)) \(archive.error)"
        )

        // The image config: what a runtime starts, and the labels.
        let layout = "\(scratch)/out/oci"
        let index = try jsonObject(atPath: "\(layout)/index.json")
        let manifests = index["manifests"] as? [[String: Any]] ?? []
        #expect(
            manifests.count == 1
                && (manifests.first?["annotations"] as? [String: String])?["org.opencontainers.image.ref.name"]
                    == version,
            "index.json does not tag one manifest \(version): \(manifests)"
        )
        let manifestDigest = try #require(manifests.first?["digest"] as? String)
        let imageManifest = try jsonObject(
            atPath: "\(layout)/blobs/\(manifestDigest.replacingOccurrences(of: ":", with: "/"))"
        )
        let configDigest = try #require((imageManifest["config"] as? [String: Any])?["digest"] as? String)
        let imageConfig = try jsonObject(
            atPath: "\(layout)/blobs/\(configDigest.replacingOccurrences(of: ":", with: "/"))"
        )
        #expect(imageConfig["os"] as? String == "linux")
        let config = imageConfig["config"] as? [String: Any] ?? [:]
        #expect(config["Entrypoint"] as? [String] == ["/opt/bin/weftd"], "entrypoint \(config["Entrypoint"] ?? "none")")
        let labels = config["Labels"] as? [String: String] ?? [:]
        #expect(
            labels["org.opencontainers.image.version"] == version && labels["org.opencontainers.image.title"] == "weft",
            "labels \(labels)"
        )

        // Unpacked as a runtime does; the runtime config carries the entrypoint and environment.
        let bundle = "\(scratch)/bundle"
        let unpack = try runCommand([
            "/usr/bin/nice", "-n", "19", "/usr/bin/umoci", "unpack", "--image", "\(layout):\(version)", bundle,
        ])
        try #require(unpack.status == 0, "umoci unpack failed (\(unpack.status)): \(unpack.error)")
        let runtime = try jsonObject(atPath: "\(bundle)/config.json")
        let process = try #require(runtime["process"] as? [String: Any], "config.json has no process")
        let entrypoint = try #require(process["args"] as? [String], "config.json has no process.args")
        #expect(entrypoint == ["/opt/bin/weftd"])
        var environment: [String: String] = [:]
        for pair in process["env"] as? [String] ?? [] {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { environment[String(parts[0])] = String(parts[1]) }
        }
        let rootfs = "\(bundle)/rootfs"
        // As a runtime starts a container: the rootfs as /, a fresh /proc (Swift reads its
        // arguments from /proc/self/cmdline), in mount and PID namespaces that end with it.
        func inImage(_ arguments: [String], extra: [String: String] = [:]) throws -> CommandResult {
            try runCommand(
                ["/usr/bin/unshare", "--mount", "--pid", "--fork", "--root=\(rootfs)", "--mount-proc"] + arguments,
                environment: environment.merging(extra) { $1 }
            )
        }

        let versionRun = try inImage(entrypoint + ["--version"])
        #expect(
            versionRun.status == 0 && versionRun.output == "weftd \(version)\n",
            "the entrypoint with --version: status \(versionRun.status), output \(versionRun.output.debugDescription), error \(versionRun.error)"
        )
        // weftd runs nft for --ip-masq; weft-cni is what install-cni-plugin copies to the node.
        let nft = try inImage(["/usr/sbin/nft", "--version"])
        #expect(
            nft.status == 0 && nft.output.hasPrefix("nftables v"),
            "nft in the image: \(nft.status) \(nft.output) \(nft.error)"
        )
        let cni = try inImage(["/opt/bin/weft-cni"], extra: ["CNI_COMMAND": "VERSION"])
        #expect(
            cni.status == 0 && cni.output.contains("\"supportedVersions\""),
            "weft-cni VERSION in the image: \(cni.status) \(cni.output) \(cni.error)"
        )

        try runInitContainers(rootfs: rootfs, inImage: inImage)
    }

    /// The manifest's init containers, command and args as written, with their volumes where the
    /// kubelet mounts them: the ConfigMap's files in /etc/kube-flannel, the node's /opt/cni/bin
    /// (holding flannel's old plugin) and /etc/cni/net.d.
    func runInitContainers(rootfs: String, inImage: ([String], [String: String]) throws -> CommandResult) throws {
        let manifest = try DeploymentManifest.load()
        let files = FileManager.default
        try files.createDirectory(atPath: "\(rootfs)/etc/kube-flannel", withIntermediateDirectories: true)
        for (key, text) in manifest.configMapData {
            #expect(files.createFile(atPath: "\(rootfs)/etc/kube-flannel/\(key)", contents: Data(text.utf8)))
        }
        try files.createDirectory(atPath: "\(rootfs)/opt/cni/bin", withIntermediateDirectories: true)
        try files.createDirectory(atPath: "\(rootfs)/etc/cni/net.d", withIntermediateDirectories: true)
        #expect(files.createFile(atPath: "\(rootfs)/opt/cni/bin/flannel", contents: Data("flannel's plugin\n".utf8)))

        #expect(manifest.initContainers.count == 2)
        for container in manifest.initContainers {
            let command = (container["command"] as? [String] ?? []) + (container["args"] as? [String] ?? [])
            let result = try inImage(command, [:])
            #expect(
                result.status == 0,
                "init container \(container["name"] ?? "?") (\(command.joined(separator: " "))): \(result.status) \(result.error)"
            )
        }

        #expect(
            files.contents(atPath: "\(rootfs)/opt/cni/bin/flannel")
                == files.contents(atPath: "\(rootfs)/opt/bin/weft-cni"),
            "/opt/cni/bin/flannel is not the image's weft-cni"
        )
        #expect(mode("\(rootfs)/opt/cni/bin/flannel") == 0o755)
        #expect(
            files.contents(atPath: "\(rootfs)/etc/cni/net.d/10-flannel.conflist")
                == Data((manifest.configMapData["cni-conf.json"] ?? "").utf8),
            "10-flannel.conflist is not the ConfigMap's cni-conf.json"
        )
        #expect(mode("\(rootfs)/etc/cni/net.d/10-flannel.conflist") == 0o644)
        #expect(
            try files.contentsOfDirectory(atPath: "\(rootfs)/opt/cni/bin") == ["flannel"],
            "a temporary file was left in /opt/cni/bin"
        )
        #expect(
            try files.contentsOfDirectory(atPath: "\(rootfs)/etc/cni/net.d") == ["10-flannel.conflist"],
            "a temporary file was left in /etc/cni/net.d"
        )
    }

    func mode(_ path: String) -> UInt32 {
        var status = stat()
        guard lstat(path, &status) == 0 else { return 0xFFFF_FFFF }
        return UInt32(status.st_mode & 0o7777)
    }
}
