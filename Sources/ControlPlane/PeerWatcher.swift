import Addressing
import Config
import Etcd
import Routes

/// Follows the other hosts' leases under `<prefix>/subnets/` and publishes a route-table
/// snapshot whenever the routes change: lists once, then watches from the listing's revision + 1.
/// A broken watch resumes from the last revision seen + 1 after a capped, jittered backoff; a
/// compacted one re-lists and applies the difference. Malformed records are skipped and counted
/// by reason; the rest stay.
public actor PeerWatcher {
    public struct Configuration: Sendable {
        /// --etcd-prefix.
        public var prefix: String
        /// The config the routes are built under (backend, port, Network, SubnetLen).
        public var network: NetworkConfig
        /// Our own subnet: never a route; a record overlapping it is skipped.
        public var localSubnet: IPv4Prefix?
        /// Reconnect backoff (flannel: 100 ms doubling to 5 s).
        public var backoff = RetryBackoff()

        public init(network: NetworkConfig, localSubnet: IPv4Prefix?, prefix: String = EtcdPath.defaultPrefix) {
            self.network = network
            self.localSubnet = localSubnet
            self.prefix = prefix
        }
    }

    public struct Statistics: Sendable, Equatable {
        /// Snapshots published.
        public var publishes = 0
        /// Watch events applied to the table (duplicates excluded).
        public var eventsApplied = 0
        /// Watch events at or below a revision already applied (a resume from the wrong revision).
        public var duplicateEventsIgnored = 0
        /// Watches re-opened after an error or a close (compactions not included).
        public var reconnects = 0
        /// Full listings after the first (after compaction).
        public var relists = 0
        /// Records currently skipped, by reason.
        public var skipped: [PeerSkipReason: Int] = [:]
        /// Routes in the last published snapshot.
        public var routes = 0
        /// The revision the table reflects.
        public var revision: Int64 = 0
        /// From receiving a watch batch (or listing) to the publish it caused; the last 1,024.
        public var publishDelays: [Duration] = []
    }

    /// Told to the `onPublish` observer after each publish.
    public struct Publication: Sendable, Equatable {
        public var generation: UInt64
        public var revision: Int64
        public var routes: [Route]
        /// `clock.now` right after the publish.
        public var publishedAt: Duration
    }

    private let client: EtcdClient
    private var configuration: Configuration
    private let publisher: RouteTablePublisher
    private let clock: any ControlPlaneClock
    private let log: LogHandler
    private let etcdErrors = ControlPlaneMetrics.etcdErrors("watch")
    private let onPublish: (@Sendable (Publication) -> Void)?
    private let onOwnKeyChange: (@Sendable (Int64) async -> Void)?
    /// Test seam: runs before each watch is opened, with the revision it will start from.
    let beforeWatch: (@Sendable (Int64) async -> Void)?

    private var table: PeerTable
    private var published: [Route]?
    private var generation: UInt64 = 0
    public private(set) var statistics = Statistics()

    /// - Parameters:
    ///   - publisher: receives a new snapshot whenever the routes change.
    ///   - onOwnKeyChange: called with the revision of every event on our own key; wire it to
    ///     `LeaseManager.noticeOwnKeyChange` so a deleted lease is noticed at once.
    ///   - onPublish: observes each publish (metrics, tests).
    public init(client: EtcdClient, configuration: Configuration, publisher: RouteTablePublisher,
                clock: any ControlPlaneClock = SystemClock(), log: @escaping LogHandler = { _, _ in },
                onOwnKeyChange: (@Sendable (Int64) async -> Void)? = nil,
                onPublish: (@Sendable (Publication) -> Void)? = nil) {
        self.init(client: client, configuration: configuration, publisher: publisher, clock: clock, log: log,
                  onOwnKeyChange: onOwnKeyChange, onPublish: onPublish, beforeWatch: nil)
    }

    init(client: EtcdClient, configuration: Configuration, publisher: RouteTablePublisher,
         clock: any ControlPlaneClock, log: @escaping LogHandler,
         onOwnKeyChange: (@Sendable (Int64) async -> Void)?, onPublish: (@Sendable (Publication) -> Void)?,
         beforeWatch: (@Sendable (Int64) async -> Void)?) {
        self.client = client
        self.configuration = configuration
        self.publisher = publisher
        self.clock = clock
        self.log = log
        self.onOwnKeyChange = onOwnKeyChange
        self.onPublish = onPublish
        self.beforeWatch = beforeWatch
        table = PeerTable(config: configuration.network)
    }

    private var subnetsPrefix: String { EtcdPath.subnets(prefix: configuration.prefix) + "/" }
    private var ownKey: String? { configuration.localSubnet.map { LeaseKey(subnet: $0).path(prefix: configuration.prefix) } }

    /// After a re-acquisition moved us to another subnet; republishes without the new one.
    public func setLocalSubnet(_ subnet: IPv4Prefix?) {
        guard subnet != configuration.localSubnet else { return }
        configuration.localSubnet = subnet
        publishIfChanged(receivedAt: clock.now)
    }

    /// Lists, watches and republishes until the task is cancelled.
    public func run() async {
        var revision: Int64?
        // Reset only by a delivered batch, so a server that fails every watch at once (or keeps
        // reporting compaction) meets a growing wait, never a hot loop.
        var attempt = 0
        var compactedLast = false
        while !Task.isCancelled {
            do {
                if revision == nil {
                    revision = try await list()
                }
                let from = (revision ?? 0) + 1
                await beforeWatch?(from)
                let watch = try await client.watch(prefix: subnetsPrefix, fromRevision: from)
                try await withTaskCancellationHandler {
                    for try await batch in watch {
                        let receivedAt = clock.now
                        await apply(batch, revision: &revision)
                        publishIfChanged(receivedAt: receivedAt)
                        attempt = 0
                        compactedLast = false
                    }
                } onCancel: {
                    watch.cancel()
                }
                if Task.isCancelled { break }
                throw EtcdError(operation: "watch \(subnetsPrefix)", endpoint: "", reason: .watchClosed)
            } catch let error as EtcdError {
                if case .compacted(let compactedAt) = error.reason {
                    log(.info, "watch of \(subnetsPrefix) from revision \(revision.map { $0 + 1 } ?? 0) hit compaction at \(compactedAt); listing again")
                    statistics.relists += 1
                    revision = nil
                    // One compaction is expected and re-listed at once; another straight after is not.
                    if compactedLast {
                        do { try await clock.sleep(for: configuration.backoff.delay(attempt: attempt)) } catch { break }
                        attempt += 1
                    }
                    compactedLast = true
                    continue
                }
                if Task.isCancelled { break }
                etcdErrors.increment()
                let delay = configuration.backoff.delay(attempt: attempt)
                attempt += 1
                statistics.reconnects += 1
                log(attempt > 3 ? .warning : .info, "watch of \(subnetsPrefix) interrupted: \(error); resuming from revision \(revision.map { $0 + 1 } ?? 0) in \(delay)")
                do { try await clock.sleep(for: delay) } catch { break }
            } catch {
                // Only cancellation reaches here: everything the client throws is an EtcdError.
                break
            }
        }
    }

    /// Replaces the table with a fresh listing and publishes if the routes changed; returns its revision.
    private func list() async throws(EtcdError) -> Int64 {
        let listing = try await client.range(prefix: subnetsPrefix)
        let receivedAt = clock.now
        let difference = table.replace(with: listing.kvs)
        if statistics.revision != 0 {
            log(.info, "re-listed \(listing.kvs.count) leases at revision \(listing.revision): \(difference.added) added, \(difference.removed) removed, \(difference.changed) changed")
        }
        statistics.revision = listing.revision
        publishIfChanged(receivedAt: receivedAt, force: published == nil)
        return listing.revision
    }

    private func apply(_ batch: [WatchEvent], revision: inout Int64?) async {
        for event in batch {
            if let seen = revision, event.revision <= seen {
                statistics.duplicateEventsIgnored += 1
                continue
            }
            revision = event.revision
            statistics.revision = event.revision
            statistics.eventsApplied += 1
            table.apply(event)
            if event.kv.key == ownKey, let onOwnKeyChange {
                await onOwnKeyChange(event.revision)
            }
        }
    }

    private func publishIfChanged(receivedAt: Duration, force: Bool = false) {
        let (routes, skipped) = table.routes(localSubnet: configuration.localSubnet)
        if skipped != statistics.skipped {
            for (reason, count) in skipped where count > statistics.skipped[reason] ?? 0 {
                log(.info, "skipping \(count) record(s) under \(subnetsPrefix): \(reason)")
            }
            statistics.skipped = skipped
        }
        guard force || routes != published else { return }
        generation += 1
        let network = configuration.network
        publisher.publish(RouteSnapshot(
            routes: routes, network: network.network, subnetLength: network.subnetLength,
            localSubnet: configuration.localSubnet, generation: generation))
        let publishedAt = clock.now
        published = routes
        statistics.publishes += 1
        statistics.routes = routes.count
        if statistics.publishDelays.count == 1_024 { statistics.publishDelays.removeFirst() }
        statistics.publishDelays.append(publishedAt - receivedAt)
        onPublish?(Publication(generation: generation, revision: statistics.revision, routes: routes, publishedAt: publishedAt))
    }
}
