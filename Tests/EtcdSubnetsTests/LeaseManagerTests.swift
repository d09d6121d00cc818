import Addressing
import Config
import Etcd
import EtcdTestSupport
import Foundation
import Synchronization
import TestSupport
import Testing

@testable import ControlPlane
@testable import EtcdSubnets

@Suite(.serialized, .enabled(if: TestEtcd.isAvailable, TestEtcd.skipMessage))
struct LeaseManagerTests {
    @Test func threeHostsGetDistinctSubnetsStoredInFlannelsFormat() async throws {
        try await withNetwork { etcd, client, prefix in
            let hosts = [
                ("198.18.0.1", "0a:00:00:00:00:01"), ("198.18.0.2", "0a:00:00:00:00:02"),
                ("198.18.0.3", "0a:00:00:00:00:03"),
            ]
            var leases: [LeaseManager.Record] = []
            for (ip, mac) in hosts {
                let manager = LeaseManager(
                    client: client,
                    configuration: .init(attributes: vxlanAttributes(ip, mac: mac), prefix: prefix)
                )
                leases.append(try await manager.acquireRecord())
            }
            #expect(Set(leases.map(\.subnet)).count == 3)
            for lease in leases {
                #expect(lease.subnet?.length == 24)
                // SubnetMin/Max default to the second and the last /24 of the /16.
                #expect(lease.subnet!.network >= IPv4Address("10.244.1.0")!)
                #expect(lease.subnet!.network <= IPv4Address("10.244.255.0")!)
                #expect(lease.origin == .random)
            }

            let stored = try await etcd.subnetKeys(prefix: prefix)
            let expected = zip(hosts, leases).map { host, lease in
                let name = "\(lease.subnet!.network)-24"
                return ("\(prefix)/subnets/\(name)", flannelVXLANValue(publicIP: host.0, mac: host.1))
            }.sorted { $0.0 < $1.0 }
            #expect(stored.map(\.key) == expected.map(\.0))
            #expect(stored.map(\.value) == expected.map(\.1))

            // Each key hangs on its own 24 h etcd lease, as etcdctl reports it.
            for lease in leases {
                let id = try #require(lease.etcdLease)
                let report = try await etcd.etcdctl("lease", "timetolive", "\(id)", "--keys")
                #expect(report.contains("granted with TTL(86400s)"), "\(report)")
                #expect(report.contains(lease.key), "\(report)")
            }
        }
    }

    @Test func concurrentCallsOnOneManagerShareOneAcquisition() async throws {
        try await withNetwork { etcd, client, prefix in
            let manager = LeaseManager(
                client: client,
                configuration: .init(
                    attributes: vxlanAttributes("198.18.0.1", mac: "0a:00:00:00:00:01"),
                    prefix: prefix
                )
            )
            async let first = manager.acquireRecord()
            async let second = manager.acquireRecord()
            let leases = try await [first, second]
            #expect(leases[0] == leases[1])
            #expect(try await etcd.subnetKeys(prefix: prefix).count == 1)
        }
    }

    @Test func missingConfigNamesTheKeyAndTheFixAndRetryingThenSucceeds() async throws {
        try await withNetwork(nil) { etcd, client, prefix in
            let manager = LeaseManager(
                client: client,
                configuration: .init(attributes: .udp(publicIP: IPv4Address("198.18.0.1")!), prefix: prefix)
            )
            let error = await #expect(throws: LeaseError.self) { try await manager.acquire() }
            let message = error?.description ?? ""
            #expect(error?.kind == .configMissing)
            #expect(message.hasPrefix("network config not found at etcd key \(prefix)/config;"))
            #expect(message.contains("etcdctl put \(prefix)/config '{"))
            #expect(message.contains("etcdctl set"))
            #expect(!message.contains("\n"))

            // The v2 API's data lives in another key space: the v3 key is still missing.
            try await etcd.putConfig(#"{"Network":"10.5.0.0/16"}"#, prefix: prefix)
            let lease = try await manager.acquireRecord()
            #expect(IPv4Prefix("10.5.0.0/16")!.contains(try #require(lease.subnet)))
            // The udp backend writes no BackendType.
            #expect(
                try await etcd.subnetKeys(prefix: prefix).map(\.value) == [
                    #"{"PublicIP":"198.18.0.1","PublicIPv6":null}"#
                ]
            )
        }
    }

    @Test func invalidConfigIsReportedWithTheField() async throws {
        try await withNetwork(#"{"Network":"10.5.0.0/16","SubnetLen":31}"#) { etcd, client, prefix in
            let manager = LeaseManager(
                client: client,
                configuration: .init(attributes: .udp(publicIP: IPv4Address("198.18.0.1")!), prefix: prefix)
            )
            let error = await #expect(throws: LeaseError.self) { try await manager.acquire() }
            #expect(error?.description.contains("SubnetLen 31") == true, "\(String(describing: error))")
        }
    }

    @Test func reservationNamingOurPublicIPIsHonouredAndKeptWithoutTTL() async throws {
        try await withNetwork { etcd, client, prefix in
            // Reserved with an older VtepMAC, as after re-creating the VTEP device.
            let key = "\(prefix)/subnets/10.244.42.0-24"
            _ = try await etcd.etcdctl("put", key, flannelVXLANValue(publicIP: "198.18.0.9", mac: "0a:00:00:00:00:99"))
            // Another host's reservation is not ours to take.
            _ = try await etcd.etcdctl(
                "put",
                "\(prefix)/subnets/10.244.43.0-24",
                flannelVXLANValue(publicIP: "198.18.0.8", mac: "0a:00:00:00:00:98")
            )

            let manager = LeaseManager(
                client: client,
                configuration: .init(
                    attributes: vxlanAttributes("198.18.0.9", mac: "0a:00:00:00:00:09"),
                    prefix: prefix
                )
            )
            let lease = try await manager.acquireRecord()
            #expect(lease.subnet == cidr("10.244.42.0/24"))
            #expect(lease.origin == .reservation)
            #expect(lease.etcdLease == nil)
            let kv = try #require(try await client.get(key).kvs.first)
            #expect(kv.lease == nil)
            #expect(kv.value == flannelVXLANValue(publicIP: "198.18.0.9", mac: "0a:00:00:00:00:09"))
            #expect(kv.modRevision == lease.revision)
        }
    }

    @Test func anotherHostsReservationIsNeverTaken() async throws {
        try await withNetwork(
            #"{"Network":"10.244.0.0/16","SubnetMin":"10.244.7.0","SubnetMax":"10.244.7.0","Backend":{"Type":"vxlan"}}"#
        ) { etcd, client, prefix in
            let theirs = flannelVXLANValue(publicIP: "198.18.0.8", mac: "0a:00:00:00:00:98")
            _ = try await etcd.etcdctl("put", "\(prefix)/subnets/10.244.7.0-24", theirs)
            let manager = LeaseManager(
                client: client,
                configuration: .init(
                    attributes: vxlanAttributes("198.18.0.9", mac: "0a:00:00:00:00:09"),
                    prefix: prefix
                )
            )
            let error = await #expect(throws: LeaseError.self) { try await manager.acquire() }
            #expect(error?.kind == .noSubnet, "expected out of subnets, got \(String(describing: error))")
            #expect(
                error?.description.hasPrefix(
                    "out of subnets: all 1 subnets of 10.244.0.0/16 between SubnetMin 10.244.7.0 and SubnetMax 10.244.7.0"
                ) == true
            )
            #expect(try await etcd.subnetKeys(prefix: prefix).map(\.value) == [theirs])
        }
    }

    @Test func existingLeaseIsKeptOnRestartOnAFreshEtcdLease() async throws {
        try await withNetwork { etcd, client, prefix in
            let attributes = vxlanAttributes("198.18.0.5", mac: "0a:00:00:00:00:05")
            let first = try await LeaseManager(
                client: client,
                configuration: .init(attributes: attributes, prefix: prefix)
            ).acquireRecord()
            // Another host in between, so "same subnet" is not luck of the draw.
            _ = try await LeaseManager(
                client: client,
                configuration: .init(
                    attributes: vxlanAttributes("198.18.0.6", mac: "0a:00:00:00:00:06"),
                    prefix: prefix
                )
            ).acquireRecord()

            // The daemon restarts: a new manager, same PublicIP, a new VtepMAC.
            let restarted = vxlanAttributes("198.18.0.5", mac: "0a:00:00:00:00:55")
            let second = try await LeaseManager(
                client: client,
                configuration: .init(attributes: restarted, prefix: prefix)
            ).acquireRecord()
            #expect(second.subnet == first.subnet)
            #expect(second.origin == .existing)
            #expect(second.etcdLease != first.etcdLease)
            let kv = try #require(try await client.get(second.key).kvs.first)
            #expect(kv.lease == second.etcdLease)
            #expect(kv.value == flannelVXLANValue(publicIP: "198.18.0.5", mac: "0a:00:00:00:00:55"))
            // The old etcd lease, now holding nothing, was revoked.
            #expect(try await client.timeToLive(lease: #require(first.etcdLease)) == nil)
            #expect(try await etcd.subnetKeys(prefix: prefix).count == 2)
        }
    }

    @Test func previousSubnetIsReusedWhenFreeAndLeftAloneWhenHeld() async throws {
        try await withNetwork { etcd, client, prefix in
            let previous = try SubnetEnv.parse("FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.77.1/24\n").subnet
            var configuration = LeaseManager.Configuration(
                attributes: vxlanAttributes("198.18.0.5", mac: "0a:00:00:00:00:05"),
                prefix: prefix,
                previousSubnet: previous
            )
            let lease = try await LeaseManager(client: client, configuration: configuration).acquireRecord()
            #expect(lease.subnet == cidr("10.244.77.0/24"))
            #expect(lease.origin == .requested)

            // Someone else holds the subnet from our subnet.env: we take another and theirs stays.
            let other = uniquePrefix()
            try await etcd.putConfig(vxlanConfig, prefix: other)
            let theirs = flannelVXLANValue(publicIP: "198.18.0.7", mac: "0a:00:00:00:00:07")
            let theirKey = "\(other)/subnets/10.244.77.0-24"
            let granted = try await client.grantLease(ttl: 600)
            let revision = try await client.put(theirKey, theirs, lease: granted.id)
            configuration.prefix = other
            let moved = try await LeaseManager(client: client, configuration: configuration).acquireRecord()
            #expect(moved.subnet != cidr("10.244.77.0/24"))
            #expect(moved.origin == .random)
            let kv = try #require(try await client.get(theirKey).kvs.first)
            #expect(kv.value == theirs)
            #expect(kv.modRevision == revision)
            #expect(kv.lease == granted.id)
        }
    }

    /// SubnetMin == SubnetMax leaves one subnet for several hosts starting at once: exactly one
    /// may own it, every other gets the out-of-subnets error; 200 rounds on one etcd.
    @Test func concurrentAcquisitionsOfTheLastSubnetHaveExactlyOneWinner() async throws {
        try await withNetwork(
            #"{"Network":"10.244.0.0/16","SubnetMin":"10.244.9.0","SubnetMax":"10.244.9.0","Backend":{"Type":"vxlan"}}"#
        ) { etcd, client, prefix in
            let contenders = 6
            let log = LogRecorder()
            for round in 0..<200 {
                let results = await withTaskGroup(of: Result<LeaseManager.Record, LeaseError>.self) { group in
                    for host in 0..<contenders {
                        group.addTask {
                            let attributes = vxlanAttributes("198.18.1.\(host + 1)", mac: "0a:00:00:00:01:0\(host)")
                            let manager = LeaseManager(
                                client: client,
                                configuration: .init(attributes: attributes, prefix: prefix),
                                log: log.handler
                            )
                            do throws(LeaseError) {
                                return .success(try await manager.acquireRecord())
                            } catch {
                                return .failure(error)
                            }
                        }
                    }
                    return await group.reduce(into: []) { $0.append($1) }
                }
                let winners = results.compactMap { try? $0.get() }
                let failures = results.compactMap { result -> LeaseError? in
                    if case .failure(let error) = result { return error }
                    return nil
                }
                try #require(winners.count == 1, "round \(round): \(winners.count) owners")
                for failure in failures {
                    guard failure.kind == .noSubnet, failure.description.hasPrefix("out of subnets") else {
                        Issue.record("round \(round): \(failure)")
                        return
                    }
                }
                let stored = try await client.range(prefix: "\(prefix)/subnets/").kvs
                try #require(stored.count == 1)
                #expect(stored[0].lease == winners[0].etcdLease)
                #expect(stored[0].value == winners[0].value)
                // The next round starts from an empty range; the winner's lease goes with its key.
                try await client.revokeLease(#require(winners[0].etcdLease))
            }
            // The hosts really did race: some saw the subnet free, lost the transaction and listed again.
            let lostTransactions = log.lines(at: .debug).count { $0.contains("listing again") }
            print("race: \(lostTransactions) lost transactions over 200 rounds of \(contenders) hosts")
            #expect(lostTransactions > 0)
        }
    }

    @Test func revokedLeaseIsNoticedAtRenewalAndReacquiredWithTheSameSubnet() async throws {
        try await withNetwork { etcd, client, prefix in
            let clock = ManualClock()
            let log = LogRecorder()
            var configuration = LeaseManager.Configuration(
                attributes: vxlanAttributes("198.18.0.5", mac: "0a:00:00:00:00:05"),
                prefix: prefix
            )
            configuration.retryInterval = .milliseconds(100)
            let manager = LeaseManager(client: client, configuration: configuration, clock: clock, log: log.handler)
            let first = try await manager.acquireRecord()
            var changes = manager.changes.makeAsyncIterator()
            #expect(await changes.next() == .acquired(first.lease))
            let runner = Task { await manager.run() }
            defer { runner.cancel() }

            _ = try await etcd.etcdctl("lease", "revoke", "\(try #require(first.etcdLease))")
            #expect(try await etcd.subnetKeys(prefix: prefix).isEmpty)
            // Without a watcher, the loss shows at the renewal point (23 h into a 24 h lease).
            clock.advance(by: .seconds(23 * 3600))
            let lost = await changes.next()
            guard case .lost(let lostLease, let reason) = lost else {
                Issue.record("expected a loss, got \(String(describing: lost))")
                return
            }
            #expect(lostLease == first.lease)
            #expect(reason.contains("expired or was revoked"))
            guard case .acquired(let second) = await changes.next() else {
                Issue.record("expected a re-acquisition")
                return
            }
            #expect(second.subnet == first.subnet)
            #expect(second.origin == .requested)
            let held = try #require(await manager.record)
            #expect(held.lease == second)
            #expect(held.etcdLease != first.etcdLease)
            let kv = try #require(try await client.get(held.key).kvs.first)
            #expect(kv.lease == held.etcdLease)
            #expect(log.lines(at: .warning).contains { $0.contains("LOST lease \(first.subnet!)") })
            #expect(!log.lines(at: .warning).contains { $0.contains("CHANGED") })
        }
    }

    @Test func renewalHappensOnlyOnceLessThanTheMarginIsLeft() async throws {
        try await withNetwork { etcd, client, prefix in
            let clock = ManualClock()
            let manager = LeaseManager(
                client: client,
                configuration: .init(
                    attributes: vxlanAttributes("198.18.0.5", mac: "0a:00:00:00:00:05"),
                    prefix: prefix
                ),
                clock: clock
            )
            let first = try await manager.acquireRecord()
            let id = try #require(first.etcdLease)
            let seen = Mutex<[LeaseChange]>([])
            let collector = Task { for await change in manager.changes { seen.withLock { $0.append(change) } } }
            defer { collector.cancel() }
            let runner = Task { await manager.run() }
            defer { runner.cancel() }
            // 24 h TTL, 60 min margin: due at 23 h. One second short of it, nothing happens.
            clock.advance(by: .seconds(23 * 3600 - 1))
            try await Task.sleep(for: .milliseconds(1_100))
            #expect(seen.withLock { $0 } == [.acquired(first.lease)])
            // etcd's own clock has run meanwhile, so the keep-alive shows as the TTL going back up.
            let aged = try #require(await client.timeToLive(lease: id))
            #expect(aged.ttl < 86_400)
            clock.advance(by: .seconds(2))
            #expect(await eventually { seen.withLock { $0.count } == 2 })
            guard case .renewed(let renewed) = seen.withLock({ $0.last }) else {
                Issue.record("expected a renewal, got \(seen.withLock { $0 })")
                return
            }
            #expect(await manager.record?.etcdLease == id)
            #expect(renewed.subnet == first.subnet)
            let after = try #require(await client.timeToLive(lease: id))
            #expect(after.ttl > aged.ttl)
            #expect(after.grantedTTL == 86_400)
        }
    }
}
