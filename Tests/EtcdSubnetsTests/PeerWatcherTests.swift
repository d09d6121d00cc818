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

private final class Observed: Sendable {
    let publications = Mutex<[PeerWatcher.Publication]>([])
    let ownKeyEvents = Mutex<[Int64]>([])
}

private func makeWatcher(
    _ client: EtcdClient,
    config: NetworkConfig,
    prefix: String,
    localSubnet: IPv4Prefix?,
    backoff: Backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(1)),
    observed: Observed = Observed(),
    clock: SystemClock = SystemClock(),
    beforeWatch: (@Sendable (Int64) async -> Void)? = nil
) -> (PeerWatcher, RouteTablePublisher) {
    let publisher = RouteTablePublisher(
        RouteSnapshot(routes: [], config: config)
    )
    var configuration = PeerWatcher.Configuration(network: config, localSubnet: localSubnet, prefix: prefix)
    configuration.backoff = backoff
    let watcher = PeerWatcher(
        client: client,
        configuration: configuration,
        publisher: publisher,
        clock: clock,
        log: { _, _ in },
        onOwnKeyChange: { revision in observed.ownKeyEvents.withLock { $0.append(revision) } },
        onPublish: { publication in observed.publications.withLock { $0.append(publication) } },
        beforeWatch: beforeWatch
    )
    return (watcher, publisher)
}

private func routes(_ publisher: RouteTablePublisher) -> [Route] { publisher.withCurrent { Array($0.routes) } }
private func subnets(_ publisher: RouteTablePublisher) -> Set<IPv4Prefix> { Set(routes(publisher).map(\.subnet)) }

@Suite(.serialized, .enabled(if: TestEtcd.isAvailable, TestEtcd.skipMessage))
struct PeerWatcherTests {
    @Test func etcdctlPutAppearsInThePublishedTableAndDeleteRemovesIt() async throws {
        try await withNetwork { etcd, client, prefix in
            let config = try await client.networkConfig(prefix: prefix)
            _ = try await etcd.etcdctl(
                "put",
                "\(prefix)/subnets/10.244.1.0-24",
                flannelVXLANValue(publicIP: "198.18.0.1", mac: "0a:00:00:00:00:01")
            )
            _ = try await etcd.etcdctl(
                "put",
                "\(prefix)/subnets/10.244.2.0-24",
                flannelVXLANValue(publicIP: "198.18.0.2", mac: "0a:00:00:00:00:02")
            )
            let observed = Observed()
            let (watcher, publisher) = makeWatcher(
                client,
                config: config,
                prefix: prefix,
                localSubnet: cidr("10.244.1.0/24"),
                observed: observed
            )
            let runner = Task { await watcher.run() }
            defer { runner.cancel() }

            // Listed at start; our own lease is not a route.
            #expect(await eventually { subnets(publisher) == [cidr("10.244.2.0/24")] })

            _ = try await etcd.etcdctl(
                "put",
                "\(prefix)/subnets/10.244.3.0-24",
                flannelVXLANValue(publicIP: "198.18.0.3", mac: "0a:00:00:00:00:03")
            )
            #expect(await eventually { subnets(publisher) == [cidr("10.244.2.0/24"), cidr("10.244.3.0/24")] })
            let expected = NextHop(
                publicIP: IPv4Address("198.18.0.3")!,
                port: 8472,
                vtepMAC: MACAddress("0a:00:00:00:00:03")!,
                backend: .vxlan
            )
            #expect(publisher.withCurrent { $0.lookup(IPv4Address("10.244.3.77")!) } == expected)
            #expect(publisher.withCurrent { $0.lookup(IPv4Address("10.244.1.5")!) } == nil)

            _ = try await etcd.etcdctl("del", "\(prefix)/subnets/10.244.3.0-24")
            #expect(await eventually { subnets(publisher) == [cidr("10.244.2.0/24")] })
            #expect(publisher.withCurrent { $0.lookup(IPv4Address("10.244.3.77")!) } == nil)

            // Generations count up with each publish.
            let generations = observed.publications.withLock { $0.map(\.generation) }
            #expect(generations == Array(1...UInt64(generations.count)))
            #expect(publisher.withCurrent { $0.generation } == generations.last)
            #expect(observed.ownKeyEvents.withLock { $0 }.isEmpty)
        }
    }

    @Test func malformedRecordsAreSkippedAndCountedWhileGoodOnesStay() async throws {
        try await withNetwork(#"{"Network":"10.244.0.0/16","Backend":{"Type":"udp","Port":9000}}"#) {
            etcd,
            client,
            prefix in
            let config = try await client.networkConfig(prefix: prefix)
            let directory = "\(prefix)/subnets"
            _ = try await etcd.etcdctl(
                "put",
                "\(directory)/10.244.2.0-24",
                #"{"PublicIP":"198.18.0.2","PublicIPv6":null}"#
            )
            let (watcher, publisher) = makeWatcher(
                client,
                config: config,
                prefix: prefix,
                localSubnet: cidr("10.244.1.0/24")
            )
            let runner = Task { await watcher.run() }
            defer { runner.cancel() }
            #expect(await eventually { routes(publisher).count == 1 })

            _ = try await etcd.etcdctl(
                "put",
                "\(directory)/not-a-subnet",
                #"{"PublicIP":"198.18.0.9","PublicIPv6":null}"#
            )
            _ = try await etcd.etcdctl("put", "\(directory)/10.244.3.0-24", "{PublicIP: 198.18.0.3}")
            _ = try await etcd.etcdctl("put", "\(directory)/10.244.4.0-24", #"{"PublicIPv6":null}"#)
            _ = try await etcd.etcdctl(
                "put",
                "\(directory)/10.99.5.0-24",
                #"{"PublicIP":"198.18.0.5","PublicIPv6":null}"#
            )
            _ = try await etcd.etcdctl(
                "put",
                "\(directory)/10.244.0.0-23",
                #"{"PublicIP":"198.18.0.6","PublicIPv6":null}"#
            )
            _ = try await etcd.etcdctl(
                "put",
                "\(directory)/10.244.7.0-24",
                #"{"PublicIP":"198.18.0.7","PublicIPv6":null}"#
            )
            #expect(await eventually { routes(publisher).count == 2 })
            let expectedSkips: [PeerSkipReason: Int] = [
                .badKey: 1, .badJSON: 1, .missingPublicIP: 1, .outsideNetwork: 1, .overlapsLocal: 1,
            ]
            #expect(await eventually { await watcher.statistics.skipped == expectedSkips })
            #expect(
                routes(publisher) == [
                    Route(
                        subnet: cidr("10.244.2.0/24"),
                        nextHop: NextHop(publicIP: IPv4Address("198.18.0.2")!, port: 9000, backend: .udp)
                    ),
                    Route(
                        subnet: cidr("10.244.7.0/24"),
                        nextHop: NextHop(publicIP: IPv4Address("198.18.0.7")!, port: 9000, backend: .udp)
                    ),
                ]
            )

            // Fixing a record turns it into a route; the count follows.
            _ = try await etcd.etcdctl(
                "put",
                "\(directory)/10.244.3.0-24",
                #"{"PublicIP":"198.18.0.3","PublicIPv6":null}"#
            )
            #expect(await eventually { routes(publisher).count == 3 })
            #expect(await watcher.statistics.skipped[.badJSON] == nil)
        }
    }

    @Test func ownKeyEventsGoToTheLeaseManagerWhichReacquires() async throws {
        try await withNetwork { etcd, client, prefix in
            var leaseConfiguration = LeaseManager.Configuration(
                attributes: vxlanAttributes("198.18.0.1", mac: "0a:00:00:00:00:01"),
                prefix: prefix
            )
            leaseConfiguration.retryInterval = .milliseconds(100)
            let manager = LeaseManager(client: client, configuration: leaseConfiguration, clock: ManualClock())
            let lease = try await manager.acquireRecord()
            let publisher = RouteTablePublisher(
                RouteSnapshot(routes: [], config: lease.config)
            )
            let watcher = PeerWatcher(
                client: client,
                configuration: .init(network: lease.config, localSubnet: lease.subnet, prefix: prefix),
                publisher: publisher,
                onOwnKeyChange: { await manager.noticeOwnKeyChange(revision: $0) }
            )
            let runners = [Task { await manager.run() }, Task { await watcher.run() }]
            defer { for runner in runners { runner.cancel() } }
            #expect(await eventually { await watcher.statistics.publishes == 1 })

            _ = try await etcd.etcdctl("lease", "revoke", "\(try #require(lease.etcdLease))")
            // Back under a new etcd lease, with no clock movement: only the watch event can have told it.
            #expect(
                try await eventually {
                    let kv = try await client.get(lease.key).kvs.first
                    return kv != nil && kv?.lease != lease.etcdLease
                }
            )
            // The manager records the lease after etcd has the key, so the key may show first.
            #expect(await eventually { await manager.record?.etcdLease.map { $0 != lease.etcdLease } == true })
            #expect(await manager.current?.subnet == lease.subnet)
            #expect(routes(publisher).isEmpty)
        }
    }

    @Test func compactionPastTheWatchRevisionIsRecoveredByRelisting() async throws {
        try await withNetwork { etcd, client, prefix in
            let config = try await client.networkConfig(prefix: prefix)
            let directory = "\(prefix)/subnets"
            _ = try await etcd.etcdctl(
                "put",
                "\(directory)/10.244.2.0-24",
                flannelVXLANValue(publicIP: "198.18.0.2", mac: "0a:00:00:00:00:02")
            )
            _ = try await etcd.etcdctl(
                "put",
                "\(directory)/10.244.3.0-24",
                flannelVXLANValue(publicIP: "198.18.0.3", mac: "0a:00:00:00:00:03")
            )
            let firstWatch = Mutex(true)
            // Between the listing and the first watch, peers change and history is compacted away.
            let (watcher, publisher) = makeWatcher(
                client,
                config: config,
                prefix: prefix,
                localSubnet: nil,
                beforeWatch: { _ in
                    guard
                        firstWatch.withLock({
                            let first = $0
                            $0 = false
                            return first
                        })
                    else { return }
                    do {
                        _ = try await client.delete("\(directory)/10.244.2.0-24")
                        try await client.put(
                            "\(directory)/10.244.3.0-24",
                            flannelVXLANValue(publicIP: "198.18.0.33", mac: "0a:00:00:00:00:33")
                        )
                        let revision = try await client.put(
                            "\(directory)/10.244.4.0-24",
                            flannelVXLANValue(publicIP: "198.18.0.4", mac: "0a:00:00:00:00:04")
                        )
                        try await client.compact(revision: revision)
                    } catch {
                        Issue.record("setting up the compaction: \(error)")
                    }
                }
            )
            let runner = Task { await watcher.run() }
            defer { runner.cancel() }

            let expected: [Route] = [
                Route(
                    subnet: cidr("10.244.3.0/24"),
                    nextHop: NextHop(
                        publicIP: IPv4Address("198.18.0.33")!,
                        port: 8472,
                        vtepMAC: MACAddress("0a:00:00:00:00:33")!,
                        backend: .vxlan
                    )
                ),
                Route(
                    subnet: cidr("10.244.4.0/24"),
                    nextHop: NextHop(
                        publicIP: IPv4Address("198.18.0.4")!,
                        port: 8472,
                        vtepMAC: MACAddress("0a:00:00:00:00:04")!,
                        backend: .vxlan
                    )
                ),
            ]
            #expect(await eventually { routes(publisher) == expected })
            #expect(await watcher.statistics.relists == 1)
            // And it keeps watching after the re-list.
            _ = try await etcd.etcdctl("del", "\(directory)/10.244.4.0-24")
            #expect(await eventually { routes(publisher) == [expected[0]] })
        }
    }

    @Test func etcdRestartedOnTheSameDataDirIsResumedWithoutLosingOrRepeatingEvents() async throws {
        try await withNetwork(client: {
            $0.requestTimeout = .seconds(1)
            $0.passes = 1
        }) { etcd, client, prefix in
            let config = try await client.networkConfig(prefix: prefix)
            let directory = "\(prefix)/subnets"
            let (watcher, publisher) = makeWatcher(client, config: config, prefix: prefix, localSubnet: nil)
            let runner = Task { await watcher.run() }
            defer { runner.cancel() }
            #expect(await eventually { await watcher.statistics.publishes == 1 })

            var expected: Set<IPv4Prefix> = []
            var events = 0
            for n in 2...4 {
                _ = try await etcd.etcdctl(
                    "put",
                    "\(directory)/10.244.\(n).0-24",
                    flannelVXLANValue(publicIP: "198.18.0.\(n)", mac: "0a:00:00:00:00:0\(n)")
                )
                expected.insert(cidr("10.244.\(n).0/24"))
                events += 1
            }
            #expect(await eventually { subnets(publisher) == expected })

            await etcd.halt()
            try await Task.sleep(for: .seconds(3))
            try await etcd.resume()
            for n in 5...7 {
                _ = try await etcd.etcdctl(
                    "put",
                    "\(directory)/10.244.\(n).0-24",
                    flannelVXLANValue(publicIP: "198.18.0.\(n)", mac: "0a:00:00:00:00:0\(n)")
                )
                expected.insert(cidr("10.244.\(n).0/24"))
                events += 1
            }
            _ = try await etcd.etcdctl("del", "\(directory)/10.244.2.0-24")
            expected.remove(cidr("10.244.2.0/24"))
            events += 1

            #expect(await eventually(timeout: .seconds(20)) { subnets(publisher) == expected })
            let statistics = await watcher.statistics
            #expect(statistics.reconnects >= 1)
            #expect(statistics.relists == 0)
            #expect(statistics.duplicateEventsIgnored == 0)
            #expect(statistics.eventsApplied == events)
        }
    }

    /// Delay from just before an etcd put to the publish it causes, over 100 leases. Printed, not
    /// asserted: wall-clock figures depend on the machine and its load.
    @Test func putToPublishDelay() async throws {
        try await withNetwork { etcd, client, prefix in
            let config = try await client.networkConfig(prefix: prefix)
            let observed = Observed()
            let clock = SystemClock()
            let (watcher, _) = makeWatcher(
                client,
                config: config,
                prefix: prefix,
                localSubnet: nil,
                observed: observed,
                clock: clock
            )
            let runner = Task { await watcher.run() }
            defer { runner.cancel() }
            #expect(await eventually { observed.publications.withLock { $0.count } == 1 })

            // The watcher stamps each publish with the same clock, so polling adds nothing to the figure.
            var delays: [Duration] = []
            for n in 0..<100 {
                let subnet = "10.244.\(n + 1).0-24"
                let start = clock.now
                let revision = try await client.put(
                    "\(prefix)/subnets/\(subnet)",
                    flannelVXLANValue(publicIP: "198.18.1.\(n + 1)", mac: "0a:00:00:00:01:01")
                )
                #expect(await eventually { observed.publications.withLock { $0.last?.revision ?? 0 } >= revision })
                let published = try #require(observed.publications.withLock { $0.first { $0.revision >= revision } })
                delays.append(published.publishedAt - start)
            }
            delays.sort()
            let p50 = delays[delays.count / 2]
            let p99 = delays[delays.count * 99 / 100]
            let batchDelays = await watcher.statistics.publishDelays.sorted()
            print(
                "put→publish over \(delays.count) leases: p50 \(p50), p99 \(p99) ; watch batch→publish p50 \(batchDelays[batchDelays.count / 2])"
            )
            #expect(observed.publications.withLock { $0.last?.routes.count } == 100)
        }
    }
}
