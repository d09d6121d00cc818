import Addressing
import Config
import Etcd
import EtcdTestSupport
import Foundation
import Routes
import Synchronization
import TestSupport
import Testing

@testable import ControlPlane
@testable import EtcdSubnets

/// An IPv6-only network (EnableIPv4 false) in a real etcd: each lease is its IPv6 subnet alone,
/// written under the key flanneld's MakeSubnetKey gives it (`0.0.0.0-0&<ipv6>-<len>`), and a host
/// is known by its PublicIPv6, since IPv6-only hosts may share PublicIP 0.0.0.0.
@Suite(.serialized, .enabled(if: TestEtcd.isAvailable, TestEtcd.skipMessage))
struct IPv6OnlyLeaseTests {
    static let config =
        #"{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"vxlan"}}"#

    /// What an IPv6-only vxlan host publishes: no IPv4 address, no BackendData, BackendV6Data alone.
    static func attributes(_ host: Int) -> LeaseAttributes {
        .vxlan(
            publicIP: .any,
            data: nil,
            publicIPv6: IPv6Address("2001:db8::\(host)")!,
            dataV6: VXLANLeaseData(vni: 1, vtepMAC: MACAddress("0e:00:00:00:00:\(String(format: "%02x", host))")!)
        )
    }

    static func manager(_ client: EtcdClient, host: Int, prefix: String) -> LeaseManager {
        LeaseManager(client: client, configuration: .init(attributes: attributes(host), prefix: prefix))
    }

    @Test func eachHostTakesAnIPv6SubnetUnderFlanneldsKey() async throws {
        try await withNetwork(Self.config) { etcd, client, prefix in
            var records: [LeaseManager.Record] = []
            for host in 1...3 {
                records.append(try await Self.manager(client, host: host, prefix: prefix).acquireRecord())
            }
            for record in records {
                #expect(record.lease.subnet == nil)
                let subnet = try #require(record.lease.ipv6Subnet)
                #expect(subnet.length == 64 && IPv6Prefix("fc00::/48")!.contains(subnet))
                #expect(record.key == LeaseKey(subnet: nil, ipv6Subnet: subnet).path(prefix: prefix))
                #expect(record.key.hasPrefix("\(prefix)/subnets/0.0.0.0-0&fc00:0:0:"), "\(record.key)")
            }
            #expect(Set(records.compactMap(\.lease.ipv6Subnet)).count == 3, "three different subnets")
            let stored = try await etcd.subnetKeys(prefix: prefix)
            let value = try #require(stored.first { $0.key == records[0].key }?.value)
            #expect(
                value
                    == #"{"PublicIP":"0.0.0.0","PublicIPv6":"2001:db8::1","BackendType":"vxlan","BackendV6Data":{"VNI":1,"VtepMAC":"0e:00:00:00:00:01"}}"#
            )
        }
    }

    @Test func aRestartedHostFindsItsLeaseByPublicIPv6() async throws {
        try await withNetwork(Self.config) { _, client, prefix in
            let first = try await Self.manager(client, host: 1, prefix: prefix).acquireRecord()
            let other = try await Self.manager(client, host: 2, prefix: prefix).acquireRecord()
            // Both publish PublicIP 0.0.0.0: only PublicIPv6 tells them apart.
            let again = try await Self.manager(client, host: 1, prefix: prefix).acquireRecord()
            #expect(again.key == first.key && again.lease.origin == .existing)
            #expect(other.key != first.key)
        }
    }

    @Test func aDualStackLeaseIsGivenUpWhenIPv4IsTurnedOff() async throws {
        try await withNetwork(dualStackConfig) { etcd, client, prefix in
            var configuration = LeaseManager.Configuration(attributes: dualStackAttributes(4), prefix: prefix)
            let dualStack = try await LeaseManager(client: client, configuration: configuration).acquireRecord()
            try await etcd.putConfig(Self.config, prefix: prefix)
            configuration.attributes = Self.attributes(4)
            let ipv6Only = try await LeaseManager(client: client, configuration: configuration).acquireRecord()
            #expect(ipv6Only.lease.subnet == nil && ipv6Only.key.contains("/0.0.0.0-0&"))
            let keys = try await etcd.subnetKeys(prefix: prefix).map(\.key)
            #expect(!keys.contains(dualStack.key), "the dual-stack key no longer fits and is deleted: \(keys)")
        }
    }

    @Test func thePeerWatcherRoutesIPv6OnlyPeersAndFindsItsOwnKey() async throws {
        try await withNetwork(Self.config) { etcd, client, prefix in
            let own = try await Self.manager(client, host: 1, prefix: prefix).acquireRecord()
            let peer = try await Self.manager(client, host: 2, prefix: prefix).acquireRecord()
            let config = own.lease.config
            var configuration = PeerWatcher.Configuration(network: config, localSubnet: nil, prefix: prefix)
            configuration.localIPv6Subnet = own.lease.ipv6Subnet
            let publisher = RouteTablePublisher(RouteSnapshot(routes: [], config: config))
            let ownKeyEvents = Mutex(0)
            let watcher = PeerWatcher(
                client: client,
                configuration: configuration,
                publisher: publisher,
                onOwnKeyChange: { _ in ownKeyEvents.withLock { $0 += 1 } }
            )
            let task = Task { await watcher.run() }
            defer { task.cancel() }
            #expect(await eventually { await watcher.ipv6Peers().map(\.subnet) == [peer.lease.ipv6Subnet!] })
            let peers = await watcher.ipv6Peers()
            #expect(peers.first?.publicIPv6 == IPv6Address("2001:db8::2"))
            #expect(peers.first?.vtepMAC == MACAddress("0e:00:00:00:00:02"))
            #expect(publisher.withCurrent { $0.count } == 0)
            // Our own key is known as ours by its IPv6 subnet, and never routed.
            let value = Self.attributes(1).json
            _ = try await etcd.etcdctl("put", own.key, value)
            #expect(await eventually { ownKeyEvents.withLock { $0 } == 1 })
            #expect(await watcher.ipv6Peers().count == 1)
        }
    }
}
