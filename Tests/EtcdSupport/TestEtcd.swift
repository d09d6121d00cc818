import Etcd
import Foundation
import TestSupport
import TestThreads
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

#if canImport(Glibc)
import Glibc
#endif

/// A throwaway single-member etcd on loopback, started by a test and stopped (that pid only) after
/// it. A class, so `halt()` and `resume()` can stop the process and start a new one on the same
/// ports and data directory (reconnect tests). Shared by every test target that needs etcd. etcd
/// dies with the test runner, however the runner ends (`TiedProcess`).
public final class TestEtcd: @unchecked Sendable {
    public static let binary = "/usr/bin/etcd"
    public static let isAvailable = FileManager.default.isExecutableFile(atPath: binary)
    public static let skipMessage: Comment = "needs /usr/bin/etcd (Debian package etcd-server) to start a real etcd"

    public let endpoint: String
    /// Replaced only by `resume()`, which tests call between awaits, never concurrently.
    public private(set) var process: TiedProcess
    public let dataDirectory: URL
    /// Set when etcd serves https and requires client certificates signed by `tls.authority`.
    public let tls: TestCertificates?
    /// The network namespace (an `ip netns` name) etcd runs in; nil: this process's own.
    public let namespace: String?
    private let arguments: [String]
    private let logFile: URL

    public var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    private init(
        endpoint: String,
        process: TiedProcess,
        dataDirectory: URL,
        tls: TestCertificates?,
        namespace: String?,
        arguments: [String],
        logFile: URL
    ) {
        self.endpoint = endpoint
        self.process = process
        self.dataDirectory = dataDirectory
        self.tls = tls
        self.namespace = namespace
        self.arguments = arguments
        self.logFile = logFile
    }

    /// Runs `body` against a fresh etcd, always stopping it afterwards. With `tls`, etcd serves
    /// https with its server certificate and accepts only client certificates signed by its CA.
    /// `arguments` are added to etcd's command line. With `namespace`, etcd runs inside that
    /// network namespace (`ip netns exec`, which execs etcd: the pid stays etcd's) and is reached
    /// only from there; readiness is then polled with etcdctl inside it.
    public static func with<T>(
        tls: TestCertificates? = nil,
        arguments: [String] = [],
        namespace: String? = nil,
        _ body: (TestEtcd) async throws -> T
    ) async throws -> T {
        let etcd = try await start(tls: tls, arguments: arguments, namespace: namespace)
        do {
            let result = try await body(etcd)
            await etcd.stop()
            return result
        } catch {
            await etcd.stop()
            throw error
        }
    }

    /// A client for this etcd (or for `endpoints` if given); the caller shuts it down.
    public func client(
        endpoints: [String]? = nil,
        configure: (inout EtcdClient.Configuration) -> Void = { _ in }
    ) throws -> EtcdClient {
        var configuration = EtcdClient.Configuration()
        if let tls {
            configuration.caFile = tls.authority
            configuration.certificateFile = tls.clientCertificate
            configuration.keyFile = tls.clientKey
        }
        configure(&configuration)
        return try EtcdClient(endpoints: endpoints ?? [endpoint], configuration: configuration)
    }

    /// Runs etcdctl against this etcd and returns its standard output (the independent view of the store).
    @discardableResult
    public func etcdctl(_ arguments: String...) async throws -> String {
        let certificates =
            tls.map { ["--cacert=\($0.authority)", "--cert=\($0.clientCertificate)", "--key=\($0.clientKey)"] } ?? []
        let command = ["/usr/bin/etcdctl", "--endpoints=\(endpoint)"] + certificates + arguments
        let (tool, toolArguments) =
            namespace.map { ("/usr/sbin/ip", ["netns", "exec", $0] + command) } ?? (
                command[0], Array(command.dropFirst())
            )
        let (status, text) = try await runTool(tool, toolArguments, environment: ["ETCDCTL_API": "3"])
        guard status == 0 else { throw TestEtcdFailure("etcdctl \(arguments.joined(separator: " ")): \(text)") }
        return text
    }

    /// Sends `signal` to this etcd only (SIGKILL: the connections drop without any goodbye).
    public func kill(signal: Int32) async {
        if process.isRunning {
            process.signal(signal)
            await waitForExit()
        }
    }

    /// Freezes the process (SIGSTOP): its sockets stay open and the kernel still acknowledges
    /// what arrives, but nothing answers; `thaw()` lets it go on.
    public func freeze() {
        process.signal(SIGSTOP)
    }

    public func thaw() {
        process.signal(SIGCONT)
    }

    /// Stops the process (SIGTERM to its pid), keeping the data directory for `resume()`.
    public func halt() async {
        if process.isRunning {
            thaw()  // a frozen process would hold SIGTERM until it runs again
            process.terminate()
            await waitForExit()
        }
    }

    /// Starts etcd again on the same ports and data directory, after `halt()` or `kill(signal:)`.
    public func resume() async throws {
        process = try Self.launch(arguments: arguments, namespace: namespace, logFile: logFile)
        guard await waitUntilServing() else { throw TestEtcdFailure("etcd did not restart on \(endpoint)") }
    }

    /// Restarts etcd from nothing on the same ports: what an etcd that lost its data, or a
    /// restore from a backup older than every key, looks like to its clients.
    public func wipe() async throws {
        await halt()
        try FileManager.default.removeItem(at: dataDirectory.appendingPathComponent("data"))
        try await resume()
    }

    public func stop() async {
        await halt()
        try? FileManager.default.removeItem(at: dataDirectory)
    }

    /// Polls rather than blocking in waitUntilExit: a blocked thread is one of only two the
    /// concurrency pool has on this machine, and other tests' clients need it.
    private func waitForExit() async {
        while process.isRunning { try? await Task.sleep(for: .milliseconds(10)) }
    }

    /// One gauge or counter from etcd's Prometheus /metrics (an independent view of what the server holds open).
    public func metric(_ name: String) async throws -> Double {
        let (data, _) = try await URLSession.shared.data(from: URL(string: endpoint + "/metrics")!)
        let text = String(decoding: data, as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            if let value = Double(line.dropFirst(name.count + 1)) { return value }
        }
        throw TestEtcdFailure("metric \(name) not found")
    }

    private static func launch(arguments: [String], namespace: String?, logFile: URL) throws -> TiedProcess {
        let handle = try FileHandle(forWritingTo: logFile)
        defer { try? handle.close() }
        handle.seekToEndOfFile()
        guard let namespace else { return try TiedProcess.launch(binary, arguments, output: handle) }
        // `ip netns exec` execs etcd: the pid, and the death signal with it, stay etcd's.
        return try TiedProcess.launch("/usr/sbin/ip", ["netns", "exec", namespace, binary] + arguments, output: handle)
    }

    private static func start(
        tls: TestCertificates?,
        arguments extra: [String],
        namespace: String?
    ) async throws -> TestEtcd {
        // A free port can be taken by someone else between our probe and etcd's bind: try again with new ports.
        var lastLog = ""
        for _ in 0..<3 {
            let clientPort = try freeLoopbackPort()
            let peerPort = try freeLoopbackPort()
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
                "weft-etcd-\(UUID().uuidString)"
            )
            try FileManager.default.createDirectory(
                at: directory,
                withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700]
            )
            let client = "\(tls == nil ? "http" : "https")://127.0.0.1:\(clientPort)"
            let peer = "http://127.0.0.1:\(peerPort)"
            var arguments =
                [
                    "--data-dir", directory.appendingPathComponent("data").path,
                    "--listen-client-urls", client, "--advertise-client-urls", client,
                    "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                    "--initial-cluster", "default=\(peer)", "--name", "default",
                ] + extra
            if let tls {
                arguments += [
                    "--cert-file", tls.serverCertificate, "--key-file", tls.serverKey,
                    "--trusted-ca-file", tls.authority, "--client-cert-auth",
                ]
            }
            let logFile = directory.appendingPathComponent("etcd.log")
            _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
            let process = try launch(arguments: arguments, namespace: namespace, logFile: logFile)
            let etcd = TestEtcd(
                endpoint: client,
                process: process,
                dataDirectory: directory,
                tls: tls,
                namespace: namespace,
                arguments: arguments,
                logFile: logFile
            )
            if await etcd.waitUntilServing() { return etcd }
            lastLog = String(etcd.log.suffix(600))
            await etcd.stop()
        }
        throw TestEtcdFailure("etcd did not start; last log: \(lastLog)")
    }

    /// Polls /v3/kv/range until it answers (etcd needs about a second to elect itself leader).
    private func waitUntilServing() async -> Bool {
        if namespace != nil {
            for _ in 0..<100 {
                guard process.isRunning else { return false }
                if (try? await etcdctl("get", "readiness-probe")) != nil { return true }
                try? await Task.sleep(for: .milliseconds(100))
            }
            return false
        }
        guard
            let client = try? client(configure: {
                $0.requestTimeout = .milliseconds(500)
                $0.passes = 1
            })
        else { return false }
        defer { Task { try? await client.shutdown() } }
        for _ in 0..<100 {
            guard process.isRunning else { return false }
            if (try? await client.get("readiness-probe")) != nil { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return false
    }
}

public struct TestEtcdFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Runs a command line tool to its end without blocking a thread; returns its exit status and its
/// standard output and error together.
public func runTool(
    _ path: String,
    _ arguments: [String],
    environment: [String: String]? = nil,
    directory: URL? = nil
) async throws -> (Int32, String) {
    let result = try await runCommandAsync(
        [path] + arguments,
        environment: environment,
        directory: directory?.path,
        errors: .merged
    )
    return (result.status, result.output)
}

/// Runs `body`, failing if it takes longer than `seconds` (a hang becomes a failure, not a stuck test run).
public func within<T: Sendable>(seconds: Double, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let result = first else {
            throw TestEtcdFailure("no result within \(seconds) s")
        }
        return result
    }
}

/// Waits for `task`, cancelling it and failing after `seconds` (so a hung consumer cannot hang the run).
public func within<T: Sendable>(seconds: Double, _ task: Task<T, any Error>) async throws -> T {
    try await within(seconds: seconds) {
        try await withTaskCancellationHandler {
            try await task.value
        } onCancel: {
            task.cancel()
        }
    }
}

public func within<T: Sendable>(seconds: Double, _ task: Task<T, Never>) async throws -> T {
    try await within(seconds: seconds) {
        await withTaskCancellationHandler {
            await task.value
        } onCancel: {
            task.cancel()
        }
    }
}

/// Binds 127.0.0.1:0 and returns the port the kernel chose (closed again, so etcd can take it).
public func freeLoopbackPort() throws -> Int {
    let socketDescriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard socketDescriptor >= 0 else { throw TestEtcdFailure("socket: errno \(errno)") }
    defer { close(socketDescriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
            bind(socketDescriptor, generic, length) == 0 && getsockname(socketDescriptor, generic, &length) == 0
        }
    }
    guard bound else { throw TestEtcdFailure("bind 127.0.0.1:0: errno \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}
