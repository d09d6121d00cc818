import Foundation
import Glibc
import TestSupport
import Yams

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// The products directory `swift build --build-tests` fills, where the test bundle runs from: the
/// image is made from these binaries, so the test needs no build of its own.
let productsDirectory: String = {
    let executable =
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return URL(fileURLWithPath: executable).deletingLastPathComponent().path
}()

/// Why these tests cannot run here, or nil.
let imageUnavailable: String? = {
    if geteuid() != 0 {
        return
            "ImageIntegrationTests need root (the image's files owned by root, unshare --root); run swift test as root"
    }
    for tool in ["/usr/bin/umoci", "/usr/bin/unshare", "/usr/sbin/nft"]
    where !FileManager.default.isExecutableFile(atPath: tool) {
        return "ImageIntegrationTests need \(tool); run scripts/setup"
    }
    for product in ["weftd", "weft", "weft-cni"]
    where !FileManager.default.isExecutableFile(atPath: "\(productsDirectory)/\(product)") {
        return "no executable at \(productsDirectory)/\(product); run swift build --build-tests first"
    }
    return nil
}()

struct BedFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func jsonObject(atPath path: String) throws -> [String: Any] {
    guard let data = FileManager.default.contents(atPath: path),
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
    else {
        throw BedFailure("\(path) is missing or not a JSON object")
    }
    return object
}

/// The parts of dist/kubernetes/weft.yml the image has to serve: the init containers and the
/// ConfigMap's files.
struct DeploymentManifest {
    var initContainers: [[String: Any]] = []
    var configMapData: [String: String] = [:]

    static func load() throws -> DeploymentManifest {
        let path = "\(repositoryRoot)/dist/kubernetes/weft.yml"
        var documents = try Yams.load_all(yaml: try String(contentsOfFile: path, encoding: .utf8))
        var manifest = DeploymentManifest()
        while let document = documents.next() {
            guard let object = document as? [String: Any] else { continue }
            switch object["kind"] as? String {
            case "DaemonSet":
                let pod = ((object["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any]
                manifest.initContainers = pod?["initContainers"] as? [[String: Any]] ?? []
            case "ConfigMap":
                manifest.configMapData = object["data"] as? [String: String] ?? [:]
            default: break
            }
        }
        if let error = documents.error { throw BedFailure("\(path) does not parse: \(error)") }
        return manifest
    }
}
