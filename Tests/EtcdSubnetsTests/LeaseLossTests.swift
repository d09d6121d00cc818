import Addressing
import Config
import ControlPlane
import Etcd
import EtcdSubnets
import EtcdTestSupport
import Foundation
import Synchronization
import TestSupport
import Testing

/// Collects a manager's changes as they come.
private final class ChangeLog: Sendable {
    private let changes = Mutex<[LeaseChange]>([])
    private let following = Mutex<Task<Void, Never>?>(nil)

    init(_ manager: LeaseManager) {
        following.withLock {
            $0 = Task { for await change in manager.changes { self.changes.withLock { $0.append(change) } } }
        }
    }

    func stop() { following.withLock { $0?.cancel() } }

    var all: [LeaseChange] { changes.withLock { $0 } }
}

@Suite(.serialized, .enabled(if: TestEtcd.isAvailable, TestEtcd.skipMessage))
struct LeaseLossTests {
    @Test func deletedKeyReportedByTheWatcherIsReacquiredAtOnce() async throws {
        try await withNetwork { etcd, client, prefix in
            var configuration = LeaseManager.Configuration(
                attributes: vxlanAttributes("198.18.0.5", mac: "0a:00:00:00:00:05"),
                prefix: prefix
            )
            configuration.retryInterval = .milliseconds(100)
            // A manual clock that never moves: only the notice can trigger anything.
            let manager = LeaseManager(client: client, configuration: configuration, clock: ManualClock())
            let changes = ChangeLog(manager)
            defer { changes.stop() }
            let first = try await manager.acquireRecord()
            let runner = Task { await manager.run() }
            defer { runner.cancel() }

            // An echo of our own write changes nothing.
            await manager.noticeOwnKeyChange(revision: first.revision)
            try await Task.sleep(for: .milliseconds(200))
            #expect(changes.all == [.acquired(first.lease)])

            _ = try await etcd.etcdctl("del", first.key)
            let deletedAt = try await client.get("\(prefix)/config").revision
            await manager.noticeOwnKeyChange(revision: deletedAt)
            #expect(await eventually { changes.all.count == 3 })
            let all = changes.all
            guard all.count == 3, case .lost(_, let reason) = all[1], case .acquired(let second) = all[2] else {
                Issue.record("expected lost then acquired, got \(all)")
                return
            }
            #expect(reason.contains("was deleted"))
            #expect(second.subnet == first.subnet)
            #expect(try await etcd.subnetKeys(prefix: prefix).map(\.key) == [first.key])
        }
    }

    @Test func keyDeletedWhileItsEtcdLeaseLivesIsPutBackAtRenewal() async throws {
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
            let changes = ChangeLog(manager)
            defer { changes.stop() }
            let first = try await manager.acquireRecord()
            let runner = Task { await manager.run() }
            defer { runner.cancel() }

            _ = try await etcd.etcdctl("del", first.key)
            clock.advance(by: .seconds(23 * 3600 + 1))
            #expect(await eventually { changes.all.count == 2 })
            guard case .renewed(let renewed) = changes.all.last else {
                Issue.record("expected a renewal, got \(changes.all)")
                return
            }
            #expect(renewed.subnet == first.subnet)
            #expect(await manager.record?.etcdLease == first.etcdLease)
            let kv = try #require(try await client.get(first.key).kvs.first)
            #expect(kv.lease == first.etcdLease)
            #expect(kv.value == flannelVXLANValue(publicIP: "198.18.0.5", mac: "0a:00:00:00:00:05"))
            #expect(await manager.record?.revision == kv.modRevision)
        }
    }

    @Test func renewalFailingWhileEtcdIsDownIsRetriedAfterTheRetryInterval() async throws {
        try await withNetwork(client: {
            $0.requestTimeout = .seconds(1)
            $0.passes = 1
        }) { etcd, client, prefix in
            let clock = ManualClock()
            let log = LogRecorder()
            var configuration = LeaseManager.Configuration(
                attributes: vxlanAttributes("198.18.0.5", mac: "0a:00:00:00:00:05"),
                prefix: prefix
            )
            configuration.retryInterval = .seconds(60)
            let manager = LeaseManager(client: client, configuration: configuration, clock: clock, log: log.handler)
            let changes = ChangeLog(manager)
            defer { changes.stop() }
            let first = try await manager.acquireRecord()
            let runner = Task { await manager.run() }
            defer { runner.cancel() }

            await etcd.halt()
            clock.advance(by: .seconds(23 * 3600 + 1))
            #expect(await eventually { log.lines(at: .warning).contains { $0.contains("cannot renew \(first.key)") } })
            try await etcd.resume()
            // Not before the retry interval has passed on the manager's clock.
            try await Task.sleep(for: .milliseconds(300))
            #expect(changes.all == [.acquired(first.lease)])
            clock.advance(by: .seconds(61))
            #expect(await eventually { changes.all.count == 2 })
            guard case .renewed = changes.all.last else {
                Issue.record("expected a renewal, got \(changes.all)")
                return
            }
            #expect(await manager.record?.etcdLease == first.etcdLease)
            #expect(try await client.timeToLive(lease: #require(first.etcdLease))?.grantedTTL == 86_400)
        }
    }

    @Test func subnetTakenByAnotherHostDuringTheLossMovesUsAndSaysSoLoudly() async throws {
        try await withNetwork { etcd, client, prefix in
            let clock = ManualClock()
            let log = LogRecorder()
            let manager = LeaseManager(
                client: client,
                configuration: .init(
                    attributes: vxlanAttributes("198.18.0.5", mac: "0a:00:00:00:00:05"),
                    prefix: prefix
                ),
                clock: clock,
                log: log.handler
            )
            let changes = ChangeLog(manager)
            defer { changes.stop() }
            let first = try await manager.acquireRecord()
            let runner = Task { await manager.run() }
            defer { runner.cancel() }

            try await client.revokeLease(#require(first.etcdLease))
            let thief = try await LeaseManager(
                client: client,
                configuration: .init(
                    attributes: vxlanAttributes("198.18.0.6", mac: "0a:00:00:00:00:06"),
                    prefix: prefix,
                    previousSubnet: first.subnet
                )
            ).acquireRecord()
            #expect(thief.subnet == first.subnet)

            clock.advance(by: .seconds(23 * 3600 + 1))
            #expect(await eventually { changes.all.count == 3 })
            guard case .acquired(let second) = changes.all.last else {
                Issue.record("expected a re-acquisition, got \(changes.all)")
                return
            }
            #expect(second.subnet != first.subnet)
            #expect(
                log.lines(at: .warning).contains { $0.contains("CHANGED from \(first.subnet!) to \(second.subnet!)") }
            )
            // The other host's lease is untouched.
            let kv = try #require(try await client.get(thief.key).kvs.first)
            #expect(kv.lease == thief.etcdLease)
            #expect(kv.modRevision == thief.revision)
        }
    }
}
