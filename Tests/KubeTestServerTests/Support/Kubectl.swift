import Foundation
import KubeTestServer
import TestSupport
import Testing

/// A real kubectl binary and its version. Found from, in order: `WEFT_KUBECTL` (a path, must work),
/// the copy of Debian's kubernetes-client (1.20) that scripts/setup extracts under the cache, the
/// newest google-cloud-sdk `kubectl.1.NN`, and a kubectl on PATH that is not google-cloud-sdk's
/// version dispatcher. One binary per minor version.
struct Kubectl: Sendable, CustomTestStringConvertible {
    let path: String
    let minor: Int
    let version: String

    var testDescription: String { "kubectl \(version)" }
    /// `patch --subresource` came in 1.24.
    var hasSubresourceFlag: Bool { minor >= 24 }

    /// `WEFT_KUBECTL`, when set; `KubectlDiscoveryTests` fails if it does not run.
    static let chosen: String? = ProcessInfo.processInfo.environment["WEFT_KUBECTL"].flatMap { $0.isEmpty ? nil : $0 }

    static let extractedPath: String = {
        let environment = ProcessInfo.processInfo.environment
        let cache =
            environment["WEFT_CACHE"]
            ?? "\(environment["XDG_CACHE_HOME"] ?? "\(NSHomeDirectory())/.cache")/weft"
        return "\(cache)/kubernetes-client/usr/bin/kubectl"
    }()

    static let all: [Kubectl] = {
        let fileManager = FileManager.default
        var candidates: [String] = []
        if let chosen = chosen { candidates.append(chosen) }
        candidates.append(extractedPath)
        let sdk = "/usr/lib/google-cloud-sdk/bin"
        let versioned = ((try? fileManager.contentsOfDirectory(atPath: sdk)) ?? [])
            .filter { $0.hasPrefix("kubectl.1.") }
            .sorted {
                (Int($0.split(separator: ".").last ?? "") ?? 0) > (Int($1.split(separator: ".").last ?? "") ?? 0)
            }
        if let newest = versioned.first { candidates.append("\(sdk)/\(newest)") }
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let path = "\(directory)/kubectl"
            let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
            if fileManager.isExecutableFile(atPath: path), !resolved.hasPrefix(sdk) { candidates.append(path) }
        }
        var found: [Kubectl] = []
        for path in candidates where fileManager.isExecutableFile(atPath: path) {
            guard let kubectl = probe(path), !found.contains(where: { $0.minor == kubectl.minor }) else { continue }
            found.append(kubectl)
        }
        return found.sorted { $0.minor < $1.minor }
    }()

    static let missingMessage: Comment = """
        no kubectl found: run scripts/setup (extracts Debian's kubernetes-client to \(extractedPath)) \
        or set WEFT_KUBECTL to a kubectl binary
        """

    /// `kubectl version --client -o json`, run once per binary at discovery.
    private static func probe(_ path: String) -> Kubectl? {
        guard let probe = try? runCommand([path, "version", "--client", "-o", "json"]) else { return nil }
        let data = Array(probe.output.utf8)
        guard let json = try? JSONValue.parse(data), let client = json["clientVersion"],
            let minorText = client["minor"]?.string, let minor = Int(minorText.filter(\.isNumber)),
            let version = client["gitVersion"]?.string
        else { return nil }
        return Kubectl(path: path, minor: minor, version: version)
    }

    /// Flags every call carries: the server, its CA, a token (kubectl 1.20 prompts for a user name
    /// without one), and a private discovery cache.
    func arguments(_ api: TestAPI, token: String, _ rest: [String]) -> [String] {
        [
            "--server", api.url, "--certificate-authority", api.certificates.authority, "--token", token,
            "--cache-dir", api.directory.appendingPathComponent("kubectl-cache-\(minor)").path,
        ] + rest
    }

    func environment(_ api: TestAPI) -> [String: String] {
        // No KUBECONFIG and a HOME without .kube: kubectl uses only the flags.
        ["HOME": api.directory.path, "PATH": "/usr/bin:/bin"]
    }

    func callAsFunction(
        _ api: TestAPI,
        token: String = TestAPI.adminToken,
        _ rest: String...
    ) async throws -> (status: Int32, output: String) {
        try await run(path, arguments(api, token: token, rest), environment: environment(api))
    }

    /// Runs and requires exit status 0, returning what it printed on stdout.
    func ok(_ api: TestAPI, token: String = TestAPI.adminToken, _ rest: String...) async throws -> String {
        let result = try await runCapturing(path, arguments(api, token: token, rest), environment: environment(api))
        guard result.status == 0 else {
            throw HarnessFailure(
                "kubectl \(version) \(rest.joined(separator: " ")) exited \(result.status): \(result.stdout)\(result.stderr)"
            )
        }
        return result.stdout
    }

    /// How this kubectl prints a 401. Newer ones fail in discovery first, whose client cannot decode
    /// the Status body and so prints client-go's generic text (seen with 1.27, 1.30 and 1.33).
    var unauthorizedMessage: [String] {
        let generic =
            "error: You must be logged in to the server (the server has asked for the client to provide credentials)"
        let status = "error: You must be logged in to the server (Unauthorized)"
        switch minor {
        case ...20: return [status]
        case 27...: return [generic]
        default: return [status, generic]
        }
    }

    func background(_ api: TestAPI, token: String = TestAPI.adminToken, _ rest: String...) throws -> Background {
        try Background(path, arguments(api, token: token, rest), environment: environment(api))
    }
}
