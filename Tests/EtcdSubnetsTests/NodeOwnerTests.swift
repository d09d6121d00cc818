import Addressing
import Config
import Etcd
import EtcdTestSupport
import Foundation
import Testing

@testable import ControlPlane
@testable import EtcdSubnets

struct NodeOwnerRecordTests {
    @Test func theRecordRoundTripsAndAnythingElseIsNoOwner() {
        let owner = NodeOwner(nodeID: "3d1219c7", hostname: "node-a")
        #expect(owner.record == #"{"Hostname":"node-a","NodeID":"3d1219c7"}"#)
        #expect(NodeOwner(record: owner.record) == owner)
        #expect(NodeOwner(record: "") == nil)
        #expect(NodeOwner(record: #"{"Hostname":"x","NodeID":""}"#) == nil)
        #expect(NodeOwner(record: "not json") == nil)
    }
}

@Suite(.serialized, .enabled(if: TestEtcd.isAvailable, TestEtcd.skipMessage))
struct DuplicatePublicIPTests {
    static func manager(_ client: EtcdClient, prefix: String, node: String?, ip: String = "198.18.0.1") -> LeaseManager
    {
        var configuration = LeaseManager.Configuration(attributes: .udp(publicIP: IPv4Address(ip)!), prefix: prefix)
        configuration.node = node.map { NodeOwner(nodeID: $0, hostname: "host-\($0)") }
        return LeaseManager(client: client, configuration: configuration)
    }

    /// Two nodes, one PublicIP: the second is refused with one line naming both nodes and the
    /// fixes, and writes nothing; the first keeps its key untouched. The same node again (a
    /// restart) takes its lease back, and a lease with no owner record (flanneld's) is taken as
    /// flannel would.
    @Test func aSecondNodeWithTheSamePublicIPIsRefusedAndWritesNothing() async throws {
        try await withNetwork { etcd, client, prefix in
            let first = try await Self.manager(client, prefix: prefix, node: "aaaa").acquireRecord()
            let ownerKey = EtcdPath.owner(prefix: prefix, subnet: LeaseKey(subnet: first.subnet))
            #expect(try await client.get(ownerKey).kvs.first?.value == #"{"Hostname":"host-aaaa","NodeID":"aaaa"}"#)
            #expect(
                try await client.get(ownerKey).kvs.first?.lease == first.etcdLease,
                "the owner record lives and dies with the lease"
            )
            let before = try await client.get(first.key).kvs.first

            let intruder = Self.manager(client, prefix: prefix, node: "bbbb")
            await #expect(throws: LeaseError.self) { try await intruder.acquire() }
            do throws(LeaseError) {
                _ = try await intruder.acquireRecord()
            } catch {
                guard error.kind == .ownedByAnotherNode else {
                    Issue.record("expected ownedByAnotherNode, got \(error)")
                    return
                }
                #expect(error.description.contains("node host-aaaa (node ID aaaa), which holds \(first.subnet!)"))
                #expect(error.description.contains("PublicIP 198.18.0.1 already belongs to node host-aaaa"))
                #expect(error.description.contains("Give this node its own --public-ip"))
                #expect(error.description.contains("etcdctl del \(first.key)"))
            }
            let after = try await client.get(first.key).kvs.first
            #expect(after == before, "the first node's lease was not touched")
            #expect(try await etcd.subnetKeys(prefix: prefix).count == 1)

            let restarted = try await Self.manager(client, prefix: prefix, node: "aaaa").acquireRecord()
            #expect(restarted.subnet == first.subnet && restarted.origin == .existing)

            // flanneld's lease at another PublicIP: no owner record, taken by whichever node has that IP.
            let flannelKey = "\(prefix)/subnets/10.244.77.0-24"
            let flannelLease = try await client.grantLease(ttl: 600)
            try await client.put(
                flannelKey,
                #"{"PublicIP":"198.18.0.7","PublicIPv6":null,"BackendType":"udp"}"#,
                lease: flannelLease.id
            )
            let migrated = try await Self.manager(client, prefix: prefix, node: "cccc", ip: "198.18.0.7")
                .acquireRecord()
            #expect(migrated.key == flannelKey && migrated.origin == .existing)
        }
    }
}
