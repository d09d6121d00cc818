import Addressing
import Config
import Etcd
import EtcdTestSupport
import Foundation
import Routes
import Synchronization
import TestSupport
import Testing
import Timing

@testable import ControlPlane
@testable import EtcdSubnets

/// What a peer watcher tells the daemon about etcd going away and coming back wrong.
private final class Told: Sendable {
    let freshness = Mutex<[PeerWatcher.Freshness]>([])
    let rechecks = Mutex(0)
    let logs = Mutex<[String]>([])

    func lines(containing text: String) -> [String] { logs.withLock { $0.filter { $0.contains(text) } } }
}

private func watcher(
    _ client: EtcdClient,
    config: NetworkConfig,
    prefix: String,
    told: Told
) -> (PeerWatcher, RouteTablePublisher) {
    let publisher = RouteTablePublisher(
        RouteSnapshot(routes: [], config: config)
    )
    var configuration = PeerWatcher.Configuration(network: config, localSubnet: cidr("10.244.1.0/24"), prefix: prefix)
    configuration.backoff = Backoff(initial: .milliseconds(100), maximum: .milliseconds(500))
    let watcher = PeerWatcher(
        client: client,
        configuration: configuration,
        publisher: publisher,
        log: { _, line in told.logs.withLock { $0.append(line) } },
        onFreshness: { freshness in told.freshness.withLock { $0.append(freshness) } },
        onRecheckLease: { told.rechecks.withLock { $0 += 1 } }
    )
    return (watcher, publisher)
}

private func isConfirmed(_ freshness: PeerWatcher.Freshness) -> Bool {
    if case .confirmed = freshness { true } else { false }
}

private func subnets(_ publisher: RouteTablePublisher) -> Set<IPv4Prefix> {
    Set(publisher.withCurrent { $0.routes.map(\.subnet) })
}

private func fastWatch(_ configuration: inout EtcdClient.Configuration) {
    configuration.watchProgressInterval = .milliseconds(300)
    configuration.watchSilenceLimit = .seconds(2)
    configuration.requestTimeout = .seconds(2)
    configuration.passes = 1
}

@Suite(.serialized, .enabled(if: TestEtcd.isAvailable, TestEtcd.skipMessage))
struct PeerWatcherFaultTests {
    /// etcd frozen (connections open, nothing answers): the episode is told once, with the
    /// reason, while the routes stay; once etcd answers again it is confirmed, our key is
    /// rechecked, and a change made meanwhile arrives.
    @Test func aSilentEtcdIsToldOncePerEpisodeAndTheTableComesBack() async throws {
        try await withNetwork(client: fastWatch) { etcd, client, prefix in
            let config = try await client.networkConfig(prefix: prefix)
            _ = try await etcd.etcdctl(
                "put",
                "\(prefix)/subnets/10.244.2.0-24",
                flannelVXLANValue(publicIP: "198.18.0.2", mac: "0a:00:00:00:00:02")
            )
            let told = Told()
            let (peers, publisher) = watcher(client, config: config, prefix: prefix, told: told)
            let runner = Task { await peers.run() }
            defer { runner.cancel() }
            #expect(await eventually { subnets(publisher) == [cidr("10.244.2.0/24")] })
            #expect(await eventually { told.freshness.withLock { $0.count == 1 && $0.first.map(isConfirmed) == true } })

            etcd.freeze()
            #expect(await eventually(timeout: .seconds(20)) { told.freshness.withLock { $0.count } == 2 })
            // Several reconnections fail while it is frozen: still one episode.
            try await Task.sleep(for: .seconds(4))
            etcd.thaw()
            let episode = told.freshness.withLock { $0 }
            guard case .unconfirmed(let reason)? = episode.dropFirst().first else {
                Issue.record("expected an unconfirmed episode, got \(episode)")
                return
            }
            #expect(reason.contains("no events and no progress"), "\(reason)")
            #expect(episode.count == 2, "\(episode)")
            #expect(told.lines(containing: "no longer confirmed current").count == 1)
            #expect(subnets(publisher) == [cidr("10.244.2.0/24")], "the routes stay while etcd is away")

            _ = try await etcd.etcdctl(
                "put",
                "\(prefix)/subnets/10.244.3.0-24",
                flannelVXLANValue(publicIP: "198.18.0.3", mac: "0a:00:00:00:00:03")
            )
            #expect(
                await eventually(timeout: .seconds(20)) {
                    subnets(publisher) == [cidr("10.244.2.0/24"), cidr("10.244.3.0/24")]
                }
            )
            #expect(await eventually { told.freshness.withLock { $0.last.map(isConfirmed) == true } })
            #expect(told.lines(containing: "confirmed current again").count == 1)
            #expect(told.rechecks.withLock { $0 } >= 1, "our key is rechecked after the watch came back")
        }
    }

    /// etcd restarted from nothing with only the config put back, and a newcomer's lease written:
    /// the watcher notices the store went back, has our lease rechecked, and follows the new
    /// store (the old peer is gone, the newcomer is there) instead of waiting above its revisions.
    @Test func anEtcdThatLostItsDataIsNoticedAndFollowed() async throws {
        try await withNetwork(client: fastWatch) { etcd, client, prefix in
            let config = try await client.networkConfig(prefix: prefix)
            for index in 2...6 {
                _ = try await etcd.etcdctl(
                    "put",
                    "\(prefix)/subnets/10.244.\(index).0-24",
                    flannelVXLANValue(publicIP: "198.18.0.\(index)", mac: "0a:00:00:00:00:0\(index)")
                )
            }
            let told = Told()
            let (peers, publisher) = watcher(client, config: config, prefix: prefix, told: told)
            let runner = Task { await peers.run() }
            defer { runner.cancel() }
            #expect(await eventually { subnets(publisher).count == 5 })

            try await etcd.wipe()
            try await etcd.putConfig(vxlanConfig, prefix: prefix)
            _ = try await etcd.etcdctl(
                "put",
                "\(prefix)/subnets/10.244.9.0-24",
                flannelVXLANValue(publicIP: "198.18.0.9", mac: "0a:00:00:00:00:09")
            )

            #expect(
                await eventually(timeout: .seconds(30)) { subnets(publisher) == [cidr("10.244.9.0/24")] },
                "\(subnets(publisher))"
            )
            #expect(told.lines(containing: "etcd's store went back").count == 1, "\(told.logs.withLock { $0 })")
            #expect(await peers.statistics.storeResets == 1)
            #expect(told.rechecks.withLock { $0 } >= 1)
        }
    }
}

extension PeerWatcherFaultTests {
    /// A listing without our key asks for our lease to be re-asserted, whatever the revisions
    /// say: a store rebuilt while weftd watched can reach the revision weftd last saw again, and
    /// then only our key's absence gives it away (seen in the full suite: weftd's key stayed gone
    /// until the renewal, a day later).
    @Test func aListingWithoutOurKeyHasTheLeaseReasserted() async throws {
        try await withNetwork(client: fastWatch) { etcd, client, prefix in
            let config = try await client.networkConfig(prefix: prefix)
            _ = try await etcd.etcdctl(
                "put",
                "\(prefix)/subnets/10.244.2.0-24",
                flannelVXLANValue(publicIP: "198.18.0.2", mac: "0a:00:00:00:00:02")
            )
            let told = Told()
            let (peers, publisher) = watcher(client, config: config, prefix: prefix, told: told)
            let runner = Task { await peers.run() }
            defer { runner.cancel() }
            #expect(await eventually { subnets(publisher) == [cidr("10.244.2.0/24")] })
            #expect(await eventually { told.rechecks.withLock { $0 } >= 1 }, "\(told.logs.withLock { $0 })")
            #expect(
                told.lines(containing: "our lease key for 10.244.1.0/24 is missing from etcd's listing")
                    .count == 1,
                "\(told.logs.withLock { $0 })"
            )
        }
    }
}

@Suite(.serialized, .enabled(if: TestEtcd.isAvailable, TestEtcd.skipMessage))
struct LeaseRecheckTests {
    /// After etcd lost its data, `recheck` re-asserts our lease at once, on the same subnet, by a
    /// compare-first write; without it the key would come back only at the renewal (23 h).
    @Test func recheckReassertsTheSameSubnetInAStoreThatLostIt() async throws {
        try await withNetwork { etcd, client, prefix in
            let manager = LeaseManager(
                client: client,
                configuration: .init(
                    attributes: vxlanAttributes("198.18.0.1", mac: "0a:00:00:00:00:01"),
                    prefix: prefix
                )
            )
            let lease = try await manager.acquireRecord()
            let runner = Task { await manager.run() }
            defer { runner.cancel() }

            try await etcd.wipe()
            try await etcd.putConfig(vxlanConfig, prefix: prefix)
            // Nothing happens on its own for a while: the renewal is a day away.
            try await Task.sleep(for: .seconds(1))
            #expect(try await etcd.subnetKeys(prefix: prefix).isEmpty)

            await manager.recheck()
            #expect(
                await eventually(timeout: .seconds(20)) {
                    (try? await etcd.subnetKeys(prefix: prefix).map(\.key)) == [lease.key]
                }
            )
            let stored = try await etcd.subnetKeys(prefix: prefix)
            #expect(stored.first?.value == flannelVXLANValue(publicIP: "198.18.0.1", mac: "0a:00:00:00:00:01"))
            #expect(await manager.current?.subnet == lease.subnet)
        }
    }
}
