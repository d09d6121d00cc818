import Etcd
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A throwaway single-member etcd on loopback, started by a test and killed (that pid only) after it.
/// Adapted from Tests/EtcdTests/TestEtcd.swift: a class, so `restart()` can stop the process and
/// start a new one on the same ports and data directory (the watcher's reconnect test).
final class TestEtcd: @unchecked Sendable {
    static let binary = "/usr/bin/etcd"
    static let isAvailable = FileManager.default.isExecutableFile(atPath: binary)
    static let skipMessage: Comment = "needs /usr/bin/etcd (Debian package etcd-server) to start a real etcd"

    let endpoint: String
    private(set) var process: Process
    let dataDirectory: URL
    private let arguments: [String]
    private let log: URL

    private init(endpoint: String, process: Process, dataDirectory: URL, arguments: [String], log: URL) {
        self.endpoint = endpoint
        self.process = process
        self.dataDirectory = dataDirectory
        self.arguments = arguments
        self.log = log
    }

    /// Runs `body` against a fresh etcd, always stopping it afterwards.
    static func with<T>(_ body: (TestEtcd) async throws -> T) async throws -> T {
        let etcd = try await start()
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
    func client(endpoints: [String]? = nil, configure: (inout EtcdClient.Configuration) -> Void = { _ in }) throws -> EtcdClient {
        var configuration = EtcdClient.Configuration()
        configure(&configuration)
        return try EtcdClient(endpoints: endpoints ?? [endpoint], configuration: configuration)
    }

    /// Runs etcdctl against this etcd and returns its standard output (the independent view of the store).
    /// Waits without blocking a thread: the concurrency pool has only two, and other tests need them.
    func etcdctl(_ arguments: String...) async throws -> String {
        let tool = Process()
        tool.executableURL = URL(fileURLWithPath: "/usr/bin/etcdctl")
        tool.arguments = ["--endpoints=\(endpoint)"] + arguments
        tool.environment = ["ETCDCTL_API": "3"]
        // A file, not a pipe: nothing has to drain it while the tool runs.
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("weft-etcdctl-\(UUID().uuidString)")
        FileManager.default.createFile(atPath: output.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: output) }
        let handle = try FileHandle(forWritingTo: output)
        defer { try? handle.close() }
        tool.standardOutput = handle
        tool.standardError = handle
        let status = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int32, any Error>) in
            tool.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do {
                try tool.run()
            } catch {
                tool.terminationHandler = nil
                continuation.resume(throwing: error)
            }
        }
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        guard status == 0 else { throw TestEtcdFailure("etcdctl \(arguments.joined(separator: " ")): \(text)") }
        return text
    }

    func stop() async {
        await halt()
        try? FileManager.default.removeItem(at: dataDirectory)
    }

    /// Stops the process (SIGTERM to its pid), keeping the data directory. Polls rather than
    /// blocking in waitUntilExit, for the same reason as `etcdctl`.
    func halt() async {
        if process.isRunning {
            process.terminate()
            while process.isRunning { try? await Task.sleep(for: .milliseconds(10)) }
        }
    }

    /// Starts etcd again on the same ports and data directory, after `halt()`.
    func resume() async throws {
        let process = try Self.launch(arguments: arguments, log: log)
        self.process = process
        guard await waitUntilServing() else { throw TestEtcdFailure("etcd did not restart on \(endpoint)") }
    }

    private static func launch(arguments: [String], log: URL) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        let handle = try FileHandle(forWritingTo: log)
        handle.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }

    private static func start() async throws -> TestEtcd {
        // A free port can be taken by someone else between our probe and etcd's bind: try again with new ports.
        var lastLog = ""
        for _ in 0..<3 {
            let clientPort = try freeLoopbackPort()
            let peerPort = try freeLoopbackPort()
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("weft-etcd-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let client = "http://127.0.0.1:\(clientPort)"
            let peer = "http://127.0.0.1:\(peerPort)"
            let arguments = [
                "--data-dir", directory.appendingPathComponent("data").path,
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", "default=\(peer)", "--name", "default",
            ]
            let log = directory.appendingPathComponent("etcd.log")
            FileManager.default.createFile(atPath: log.path, contents: nil)
            let process = try launch(arguments: arguments, log: log)
            let etcd = TestEtcd(endpoint: client, process: process, dataDirectory: directory, arguments: arguments, log: log)
            if await etcd.waitUntilServing() { return etcd }
            lastLog = (try? String(contentsOf: log, encoding: .utf8)).map { String($0.suffix(600)) } ?? ""
            await etcd.stop()
        }
        throw TestEtcdFailure("etcd did not start; last log: \(lastLog)")
    }

    /// Polls /v3/kv/range until it answers (etcd needs about a second to elect itself leader).
    private func waitUntilServing() async -> Bool {
        guard let client = try? client(configure: {
            $0.requestTimeout = .milliseconds(500)
            $0.passes = 1
        }) else { return false }
        defer { Task { try? await client.shutdown() } }
        for _ in 0..<100 {
            guard process.isRunning else { return false }
            if (try? await client.get("readiness-probe")) != nil { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return false
    }
}

struct TestEtcdFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Binds 127.0.0.1:0 and returns the port the kernel chose (closed again, so etcd can take it).
func freeLoopbackPort() throws -> Int {
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
