import Foundation
import KubeTestServer
import Synchronization
import TestSupport
import Testing

struct HarnessFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// One CA and server certificate (SAN 127.0.0.1) for the whole test process, removed when it exits.
var sharedCertificates: Result<ServerCertificates, any Error> { ServerCertificates.shared }

/// A server on 127.0.0.1 with three tokens (admin, flannel's service account, a user with no role)
/// and three nodes, n1 and n2 Ready with podCIDRs and flannel's annotations, n3 without a podCIDR;
/// plus the flannel DaemonSet pod on n1. Always shut down with `stop`.
final class TestAPI: Sendable {
    static let adminToken = "admin-token-0123"
    static let flannelToken = "flannel-token-4567"
    static let nobodyToken = "nobody-token-89ab"
    static let podName = "kube-flannel-ds-abcde"

    let server: KubeTestServer
    let certificates: ServerCertificates
    let directory: URL
    var tokenFile: String { directory.appendingPathComponent("tokens.csv").path }
    var url: String { server.url }

    private init(server: KubeTestServer, certificates: ServerCertificates, directory: URL) {
        self.server = server
        self.certificates = certificates
        self.directory = directory
    }

    static func start(bookmarkInterval: Duration = .seconds(60), historyLimit: Int = 100_000) async throws -> TestAPI {
        let certificates = try sharedCertificates.get()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("weft-kube-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let tokens = directory.appendingPathComponent("tokens.csv").path
        try TokenFile.write(
            [
                (adminToken, User(name: "kubernetes-admin", groups: ["system:masters", "system:authenticated"])),
                (flannelToken, User(name: User.flannel, groups: ["system:serviceaccounts", "system:authenticated"])),
                (nobodyToken, User(name: "nobody", groups: ["system:authenticated"])),
            ],
            to: tokens
        )
        var configuration = KubeTestServer.Configuration(
            tokenFile: tokens,
            certificateFile: certificates.certificate,
            keyFile: certificates.key
        )
        configuration.bookmarkInterval = bookmarkInterval
        configuration.historyLimit = historyLimit
        configuration.controlSocket = directory.appendingPathComponent("control.sock").path
        let server = try await KubeTestServer.start(configuration)
        for (name, cidr) in [("n1", "10.244.1.0/24"), ("n2", "10.244.2.0/24"), ("n3", "")] {
            server.store.put(.nodes, node(name, podCIDR: cidr))
        }
        server.store.put(.pods, Fixtures.pod(podName, nodeName: "n1"))
        return TestAPI(server: server, certificates: certificates, directory: directory)
    }

    /// A kubelet-registered node that flannel already runs on (`kube-subnet-manager: "true"`).
    static func node(_ name: String, podCIDR: String) -> JSONValue {
        var node = Fixtures.node(
            name,
            podCIDRs: podCIDR.isEmpty ? [] : [podCIDR],
            annotations: ["flannel.alpha.coreos.com/kube-subnet-manager": "true"]
        )
        node["kind"] = nil
        node["apiVersion"] = nil
        return node
    }

    func stop() async {
        try? await server.shutdown()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Runs `body` against a fresh server, always stopping it.
    static func with<T>(
        bookmarkInterval: Duration = .seconds(60),
        _ body: (TestAPI) async throws -> T
    ) async throws -> T {
        let api = try await start(bookmarkInterval: bookmarkInterval)
        do {
            let result = try await body(api)
            await api.stop()
            return result
        } catch {
            await api.stop()
            throw error
        }
    }

    func node(_ name: String) throws -> JSONValue {
        try server.store.get(.nodes, ObjectKey(name: name))
    }
}

// MARK: Processes

/// Runs a tool to completion without blocking a thread; `output` is stdout followed by stderr.
func run(
    _ path: String,
    _ arguments: [String],
    environment: [String: String]? = nil,
    timeout: Double = 60
) async throws -> (status: Int32, output: String) {
    let result = try await runCapturing(path, arguments, environment: environment, timeout: timeout)
    return (result.status, result.stdout + result.stderr)
}

/// Runs a tool to completion with stdout and stderr kept apart (kubectl logs warnings on stderr).
func runCapturing(
    _ path: String,
    _ arguments: [String],
    environment: [String: String]? = nil,
    timeout: Double = 60
) async throws -> (status: Int32, stdout: String, stderr: String) {
    let result = try await runCommandAsync(
        [path] + arguments,
        environment: environment,
        timeout: .seconds(timeout)
    )
    return (result.status, result.output, result.error)
}

/// A long-running tool (a watch) whose output is read while it runs; `stop` kills that pid only.
final class Background: @unchecked Sendable {
    let process = Process()
    let outputFile: URL

    init(_ path: String, _ arguments: [String], environment: [String: String]? = nil) throws {
        outputFile = FileManager.default.temporaryDirectory.appendingPathComponent("weft-kube-bg-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: outputFile.path, contents: nil)
        let handle = try FileHandle(forWritingTo: outputFile)
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try handle.close()
    }

    var output: String { (try? String(contentsOf: outputFile, encoding: .utf8)) ?? "" }

    /// Waits until the output satisfies `condition`, failing with the output after `seconds`.
    @discardableResult
    func waitFor(_ what: String, seconds: Double = 20, _ condition: (String) -> Bool) async throws -> String {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            let text = output
            if condition(text) { return text }
            if !process.isRunning {
                let last = output
                if condition(last) { return last }
                throw HarnessFailure(
                    "\(what): the process exited (\(process.terminationStatus)) first; output:\n\(last)"
                )
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw HarnessFailure("\(what): not seen within \(seconds) s; output:\n\(output)")
    }

    /// Waits for the process to exit by itself.
    func waitForExit(seconds: Double = 20) async throws -> Int32 {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while process.isRunning {
            guard ContinuousClock.now < deadline else {
                throw HarnessFailure("still running after \(seconds) s; output:\n\(output)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        return process.terminationStatus
    }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: outputFile)
    }
}

/// The JSON objects in newline-separated output (watch streams, `--output-watch-events`), skipping
/// lines that are not JSON; kubectl's pretty-printed events are re-read as a stream of documents.
func jsonDocuments(_ text: String) -> [JSONValue] {
    var documents: [JSONValue] = []
    var depth = 0
    var inString = false
    var escaped = false
    var start: String.UTF8View.Index?
    let bytes = text.utf8
    var index = bytes.startIndex
    while index != bytes.endIndex {
        let byte = bytes[index]
        if inString {
            if escaped {
                escaped = false
            } else if byte == UInt8(ascii: "\\") {
                escaped = true
            } else if byte == UInt8(ascii: "\"") {
                inString = false
            }
        } else if byte == UInt8(ascii: "\"") {
            inString = depth > 0
        } else if byte == UInt8(ascii: "{") {
            if depth == 0 { start = index }
            depth += 1
        } else if byte == UInt8(ascii: "}"), depth > 0 {
            depth -= 1
            if depth == 0, let begin = start, let value = try? JSONValue.parse(bytes[begin...index]) {
                documents.append(value)
            }
        }
        index = bytes.index(after: index)
    }
    return documents
}
