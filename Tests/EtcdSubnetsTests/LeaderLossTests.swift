import Addressing
import Config
import Etcd
import EtcdTestSupport
import Foundation
import Synchronization
import Testing

@testable import ControlPlane
@testable import EtcdSubnets

@Suite(.serialized, .enabled(if: TestEtcd.isAvailable, TestEtcd.skipMessage))
struct LeaderLossTests {
    /// Eight hosts acquire at once from ten free subnets on a three-member cluster whose leader is
    /// killed while they do: every host ends with a subnet of its own, and etcd holds exactly
    /// those keys, each naming its holder: never two owners, whatever the election interrupted.
    @Test(.timeLimit(.minutes(2)))
    func acquisitionsThroughALeaderLossNeverGiveOneSubnetTwoOwners() async throws {
        try await TestEtcdCluster.with { cluster in
            var configuration = EtcdClient.Configuration()
            configuration.requestTimeout = .seconds(2)
            configuration.connectTimeout = .seconds(1)
            let client = try EtcdClient(endpoints: cluster.endpoints, configuration: configuration)
            defer { Task { try? await client.shutdown() } }
            let prefix = uniquePrefix()
            try await client.put(
                EtcdPath.config(prefix: prefix),
                #"{"Network":"10.244.0.0/16","SubnetLen":24,"SubnetMin":"10.244.1.0","SubnetMax":"10.244.10.0","Backend":{"Type":"udp"}}"#
            )
            let leader = try #require(await cluster.leader())

            let hosts = (1...8).map { "198.18.0.\($0)" }
            let failedTries = FailedTries()
            func acquiring(_ ip: String) -> Task<LeaseManager.Record?, Never> {
                Task { () -> LeaseManager.Record? in
                    var lease = LeaseManager.Configuration(attributes: .udp(publicIP: IPv4Address(ip)!), prefix: prefix)
                    lease.node = NodeOwner(nodeID: "node-\(ip)", hostname: ip)
                    let manager = LeaseManager(client: client, configuration: lease)
                    // As weftd does: retry while etcd cannot answer (an election in progress).
                    for _ in 0..<60 {
                        if let acquired = try? await manager.acquireRecord() { return acquired }
                        failedTries.count.withLock { $0 += 1 }
                        try? await Task.sleep(for: .milliseconds(250))
                    }
                    return nil
                }
            }
            // Half start; the leader dies as soon as one of them holds a subnet (the others are
            // mid-transaction), and the other half start straight into the election.
            var acquisitions = hosts.prefix(4).map(acquiring)
            _ = await acquisitions[0].value
            cluster.kill(leader)
            acquisitions += hosts.suffix(4).map(acquiring)

            var leases: [String: LeaseManager.Record] = [:]
            for (ip, task) in zip(hosts, acquisitions) { leases[ip] = await task.value }
            #expect(leases.values.count == 8, "every host got a subnet: \(leases.keys.sorted())")
            let subnets = leases.values.map(\.subnet)
            #expect(Set(subnets).count == subnets.count, "one subnet, two owners: \(subnets)")

            let stored = try await client.range(prefix: EtcdPath.subnets(prefix: prefix) + "/").kvs
            #expect(stored.count == 8, "\(stored.map(\.key))")
            for (ip, lease) in leases {
                let kv = stored.first { $0.key == lease.key }
                #expect(
                    kv.flatMap { try? LeaseAttributes.parse($0.value) }?.publicIP == IPv4Address(ip),
                    "\(lease.key) holds \(kv?.value ?? "nothing"), not \(ip)"
                )
                #expect(kv?.lease == lease.etcdLease)
            }
            #expect(await cluster.leader().map { $0.name != leader.name } ?? false, "a new leader was elected")
            print(
                "leader \(leader.name) killed after the first of 8 acquisitions; \(failedTries.count.withLock { $0 }) tries failed and were retried"
            )
        }
    }
}

private final class FailedTries: Sendable {
    let count = Mutex(0)
}
