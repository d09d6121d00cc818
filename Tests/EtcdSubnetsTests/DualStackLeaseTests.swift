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

/// flannel's example dual-stack network: a /16 of /24s and a /48 of /64s.
let dualStackConfig =
    #"{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"vxlan"}}"#

/// A dual-stack vxlan node's lease value: PublicIPv6 and the flannel-v6 device's BackendV6Data.
func dualStackAttributes(_ host: Int) -> LeaseAttributes {
    .vxlan(
        publicIP: IPv4Address("198.18.0.\(host)")!,
        data: VXLANLeaseData(vni: 1, vtepMAC: MACAddress("0a:00:00:00:00:\(String(format: "%02x", host))")!),
        publicIPv6: IPv6Address("2001:db8::\(host)")!,
        dataV6: VXLANLeaseData(vni: 1, vtepMAC: MACAddress("0e:00:00:00:00:\(String(format: "%02x", host))")!)
    )
}

/// The same value spelled out by hand, as flanneld writes it.
func flannelDualStackValue(_ host: Int) -> String {
    let mac = String(format: "%02x", host)
    return
        #"{"PublicIP":"198.18.0.\#(host)","PublicIPv6":"2001:db8::\#(host)","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0a:00:00:00:00:\#(mac)"},"BackendV6Data":{"VNI":1,"VtepMAC":"0e:00:00:00:00:\#(mac)"}}"#
}

/// A lease manager that takes dual-stack configs, which weftd itself still refuses.
func dualStackManager(
    _ client: EtcdClient,
    host: Int,
    prefix: String,
    clock: any ControlPlaneClock = SystemClock(),
    configure: (inout LeaseManager.Configuration) -> Void = { _ in }
) -> LeaseManager {
    var configuration = LeaseManager.Configuration(attributes: dualStackAttributes(host), prefix: prefix)
    configure(&configuration)
    return LeaseManager(client: client, configuration: configuration, clock: clock)
}

@Suite(.serialized, .enabled(if: TestEtcd.isAvailable, TestEtcd.skipMessage))
struct DualStackLeaseTests {
    @Test func eachHostGetsBothSubnetsInOneKeyWithFlanneldsValue() async throws {
        try await withNetwork(dualStackConfig) { etcd, client, prefix in
            var leases: [LeaseManager.Record] = []
            for host in 1...3 {
                leases.append(try await dualStackManager(client, host: host, prefix: prefix).acquireRecord())
            }
            let ipv6Subnets = leases.compactMap(\.lease.ipv6Subnet)
            #expect(Set(leases.map(\.subnet)).count == 3)
            #expect(Set(ipv6Subnets).count == 3)
            for subnet in ipv6Subnets {
                // IPv6SubnetLen 64, IPv6SubnetMin/Max the second and the last /64 of the /48.
                #expect(subnet.length == 64)
                #expect(
                    subnet.network >= IPv6Address("fc00:0:0:1::")! && subnet.network <= IPv6Address("fc00:0:0:ffff::")!
                )
            }
            let stored = try await etcd.subnetKeys(prefix: prefix)
            let expected = zip(1...3, leases).map { host, lease in
                let v6 = lease.lease.ipv6Subnet!
                return (
                    "\(prefix)/subnets/\(lease.subnet!.network)-24&\(v6.network)-64",
                    flannelDualStackValue(host)
                )
            }.sorted { $0.0 < $1.0 }
            #expect(stored.map(\.key) == expected.map(\.0))
            #expect(stored.map(\.value) == expected.map(\.1))
            for lease in leases { #expect(stored.contains { $0.key == lease.key }) }
        }
    }

    @Test func restartKeepsBothHalvesOnAFreshEtcdLease() async throws {
        try await withNetwork(dualStackConfig) { etcd, client, prefix in
            let first = try await dualStackManager(client, host: 5, prefix: prefix).acquireRecord()
            _ = try await dualStackManager(client, host: 6, prefix: prefix).acquireRecord()
            let second = try await dualStackManager(client, host: 5, prefix: prefix).acquireRecord()
            #expect(second.key == first.key)
            #expect(second.lease.ipv6Subnet == first.lease.ipv6Subnet && second.subnet == first.subnet)
            #expect(second.origin == .existing)
            #expect(second.etcdLease != first.etcdLease)
            #expect(try await etcd.subnetKeys(prefix: prefix).count == 2)
        }
    }

    @Test func previousSubnetEnvHalvesAreAskedForTogether() async throws {
        try await withNetwork(dualStackConfig) { _, client, prefix in
            let previous = try SubnetEnv.parse(
                "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.77.1/24\nFLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00:0:0:4d::1/64\n"
            )
            let lease = try await dualStackManager(client, host: 5, prefix: prefix) {
                $0.previousSubnet = previous.subnet
                $0.previousIPv6Subnet = previous.ipv6Subnet
            }.acquireRecord()
            #expect(lease.origin == .requested)
            #expect(lease.key == "\(prefix)/subnets/10.244.77.0-24&fc00:0:0:4d::-64")
        }
    }

    @Test func ourIPv4OnlyLeaseIsReplacedOnceIPv6IsEnabledAndTheOtherWayBack() async throws {
        try await withNetwork(vxlanConfig) { etcd, client, prefix in
            let ipv4Only = try await dualStackManager(client, host: 5, prefix: prefix).acquireRecord()
            #expect(ipv4Only.lease.ipv6Subnet == nil)
            #expect(ipv4Only.key == "\(prefix)/subnets/\(ipv4Only.subnet!.network)-24")

            try await etcd.putConfig(dualStackConfig, prefix: prefix)
            let dual = try await dualStackManager(client, host: 5, prefix: prefix).acquireRecord()
            #expect(dual.lease.ipv6Subnet != nil)
            #expect(try await etcd.subnetKeys(prefix: prefix).map(\.key) == [dual.key])

            try await etcd.putConfig(vxlanConfig, prefix: prefix)
            let back = try await dualStackManager(client, host: 5, prefix: prefix).acquireRecord()
            #expect(back.lease.ipv6Subnet == nil)
            #expect(try await etcd.subnetKeys(prefix: prefix).map(\.key) == [back.key])
        }
    }

    @Test func noFreeIPv6SubnetIsOutOfIPv6SubnetsWhileIPv4OnesAreFree() async throws {
        let config =
            #"{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","IPv6SubnetMin":"fc00:0:0:7::","IPv6SubnetMax":"fc00:0:0:7::","Backend":{"Type":"vxlan"}}"#
        try await withNetwork(config) { _, client, prefix in
            let only = try await dualStackManager(client, host: 1, prefix: prefix).acquireRecord()
            #expect(only.lease.ipv6Subnet == IPv6Prefix("fc00:0:0:7::/64"))
            let error = await #expect(throws: LeaseError.self) {
                try await dualStackManager(client, host: 2, prefix: prefix).acquire()
            }
            #expect(error?.kind == .noSubnet)
            #expect(error?.description.contains("out of IPv6 subnets") == true, "\(String(describing: error))")
            #expect(error?.description.contains("IPv6SubnetMin fc00:0:0:7::") == true)
        }
    }

    @Test func renewalKeepsBothHalvesAndTheKey() async throws {
        try await withNetwork(dualStackConfig) { etcd, client, prefix in
            let clock = ManualClock()
            let manager = dualStackManager(client, host: 5, prefix: prefix, clock: clock)
            let first = try await manager.acquireRecord()
            let seen = Mutex<[LeaseChange]>([])
            let collector = Task { for await change in manager.changes { seen.withLock { $0.append(change) } } }
            defer { collector.cancel() }
            let runner = Task { await manager.run() }
            defer { runner.cancel() }
            clock.advance(by: .seconds(23 * 3600 + 1))
            #expect(await eventually { seen.withLock { $0.count } == 2 })
            guard case .renewed(let renewed) = seen.withLock({ $0.last }) else {
                Issue.record("expected a renewal, got \(seen.withLock { $0 })")
                return
            }
            #expect(renewed.subnet == first.subnet && renewed.ipv6Subnet == first.lease.ipv6Subnet)
            #expect(await manager.record?.key == first.key)
            let stored = try await etcd.subnetKeys(prefix: prefix)
            #expect(stored.map(\.key) == [first.key])
            #expect(stored.map(\.value) == [flannelDualStackValue(5)])
        }
    }

    /// weftd's own reading of the config (no test scope) takes a dual-stack vxlan network.
    @Test func weftdsOwnReadingTakesEnableIPv6() async throws {
        try await withNetwork(dualStackConfig) { _, client, prefix in
            let manager = LeaseManager(
                client: client,
                configuration: .init(attributes: dualStackAttributes(1), prefix: prefix)
            )
            let lease = try await manager.acquire()
            #expect(lease.ipv6Subnet.map { IPv6Prefix("fc00::/48")!.contains($0) } == true, "\(lease)")
        }
    }
}

@Suite(.serialized, .enabled(if: TestEtcd.isAvailable, TestEtcd.skipMessage))
struct DualStackPeerTests {
    /// Keys put with etcdctl as flanneld writes them: each peer's IPv6 half, PublicIPv6 and
    /// BackendV6Data reach the table; the IPv4 routes are published as before; our own key
    /// (both halves) is neither a route nor an IPv6 peer, and its events reach the lease keeper.
    @Test func dualStackKeysBecomeIPv4RoutesAndIPv6Peers() async throws {
        try await withNetwork(dualStackConfig) { etcd, client, prefix in
            let config = try await client.networkConfig(prefix: prefix)
            let ownKeyEvents = Mutex<[Int64]>([])
            for host in 1...2 {
                _ = try await etcd.etcdctl(
                    "put",
                    "\(prefix)/subnets/10.244.\(host).0-24&fc00:0:0:\(host)::-64",
                    flannelDualStackValue(host)
                )
            }
            let publisher = RouteTablePublisher(
                RouteSnapshot(routes: [], config: config)
            )
            var configuration = PeerWatcher.Configuration(
                network: config,
                localSubnet: cidr("10.244.1.0/24"),
                prefix: prefix
            )
            configuration.localIPv6Subnet = IPv6Prefix("fc00:0:0:1::/64")
            let watcher = PeerWatcher(
                client: client,
                configuration: configuration,
                publisher: publisher,
                onOwnKeyChange: { revision in ownKeyEvents.withLock { $0.append(revision) } }
            )
            let runner = Task { await watcher.run() }
            defer { runner.cancel() }

            #expect(await eventually { publisher.withCurrent { $0.routes.map(\.subnet) } == [cidr("10.244.2.0/24")] })
            let nextHop = NextHop(
                publicIP: IPv4Address("198.18.0.2")!,
                port: 8472,
                vtepMAC: MACAddress("0a:00:00:00:00:02")!,
                backend: .vxlan
            )
            #expect(
                await watcher.ipv6Peers() == [
                    IPv6Peer(
                        subnet: IPv6Prefix("fc00:0:0:2::/64")!,
                        nextHop: nextHop,
                        publicIPv6: IPv6Address("2001:db8::2"),
                        vtepMAC: MACAddress("0e:00:00:00:00:02")
                    )
                ]
            )

            // A third peer, and one whose IPv6 half lies outside the IPv6Network: its IPv4 route stays.
            _ = try await etcd.etcdctl(
                "put",
                "\(prefix)/subnets/10.244.3.0-24&fc00:0:0:3::-64",
                flannelDualStackValue(3)
            )
            _ = try await etcd.etcdctl("put", "\(prefix)/subnets/10.244.4.0-24&fd00::-64", flannelDualStackValue(4))
            #expect(await eventually { publisher.withCurrent { $0.routes.count } == 3 })
            #expect(
                await watcher.ipv6Peers().map(\.subnet) == [
                    IPv6Prefix("fc00:0:0:2::/64")!, IPv6Prefix("fc00:0:0:3::/64")!,
                ]
            )
            #expect(await watcher.ipv6Peers().last?.route.nextHop.publicIP == IPv4Address("198.18.0.3"))

            _ = try await etcd.etcdctl("del", "\(prefix)/subnets/10.244.2.0-24&fc00:0:0:2::-64")
            #expect(await eventually { await watcher.ipv6Peers().map(\.subnet) == [IPv6Prefix("fc00:0:0:3::/64")!] })

            // Our own dual-stack key changing is told to the lease keeper.
            _ = try await etcd.etcdctl(
                "put",
                "\(prefix)/subnets/10.244.1.0-24&fc00:0:0:1::-64",
                flannelDualStackValue(9)
            )
            #expect(await eventually { !ownKeyEvents.withLock { $0 }.isEmpty })
        }
    }
}
