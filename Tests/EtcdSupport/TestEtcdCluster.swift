import Etcd
import Foundation
import TestThreads

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

#if canImport(Glibc)
import Glibc
#endif

/// Three etcd members on loopback, one data directory each, started and stopped (those pids only)
/// by a test: for leader loss and failover under load. They die with the test runner, however it
/// ends (`TiedProcess`).
public final class TestEtcdCluster: @unchecked Sendable {
    public struct Member {
        public let name: String
        public let client: String
        public let process: TiedProcess
    }

    public private(set) var members: [Member] = []
    private let directory: URL

    public var endpoints: [String] { members.map(\.client) }

    private init(directory: URL) {
        self.directory = directory
    }

    public static func with<T>(_ body: (TestEtcdCluster) async throws -> T) async throws -> T {
        let cluster = try await start()
        do {
            let result = try await body(cluster)
            cluster.stop()
            return result
        } catch {
            cluster.stop()
            throw error
        }
    }

    private static func start() async throws -> TestEtcdCluster {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "weft-etcd-cluster-\(UUID().uuidString)"
        )
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let cluster = TestEtcdCluster(directory: directory)
        let names = ["m1", "m2", "m3"]
        let ports = try names.map { _ in (try freeLoopbackPort(), try freeLoopbackPort()) }
        let initial = zip(names, ports).map { "\($0)=http://127.0.0.1:\($1.1)" }.joined(separator: ",")
        do {
            for (name, (client, peer)) in zip(names, ports) {
                let clientURL = "http://127.0.0.1:\(client)"
                let peerURL = "http://127.0.0.1:\(peer)"
                let log = directory.appendingPathComponent("\(name).log")
                _ = FileManager.default.createFile(atPath: log.path, contents: nil)
                let handle = try FileHandle(forWritingTo: log)
                defer { try? handle.close() }
                let process = try TiedProcess.launch(
                    TestEtcd.binary,
                    [
                        "--name", name, "--data-dir", directory.appendingPathComponent(name).path,
                        "--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
                        "--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
                        "--initial-cluster", initial, "--initial-cluster-state", "new",
                        "--heartbeat-interval", "50", "--election-timeout", "500",
                    ],
                    output: handle
                )
                cluster.members.append(Member(name: name, client: clientURL, process: process))
            }
            let client = try EtcdClient(endpoints: cluster.endpoints)
            defer { Task { try? await client.shutdown() } }
            for _ in 0..<150 {
                if (try? await client.put("cluster-probe", "1")) != nil { return cluster }
                try await Task.sleep(for: .milliseconds(100))
            }
            throw TestEtcdFailure("the three-member etcd cluster did not serve within 15 s")
        } catch {
            cluster.stop()
            throw error
        }
    }

    /// The member that leads now (etcd_server_is_leader 1 on its /metrics), nil if none does.
    public func leader() async -> Member? {
        for member in members where member.process.isRunning {
            guard let url = URL(string: member.client + "/metrics"),
                let (data, _) = try? await URLSession.shared.data(from: url)
            else { continue }
            if String(decoding: data, as: UTF8.self).split(separator: "\n").contains("etcd_server_is_leader 1") {
                return member
            }
        }
        return nil
    }

    /// SIGKILL to one member: no goodbye to its peers or clients.
    public func kill(_ member: Member) {
        member.process.signal(SIGKILL)
    }

    func stop() {
        for member in members where member.process.isRunning {
            member.process.signal(SIGCONT)
            member.process.terminate()
            while member.process.isRunning { usleep(10_000) }
        }
        try? FileManager.default.removeItem(at: directory)
    }
}
