import Addressing
import Config
import ControlPlane
import Etcd
import Routes
import Timing

/// Follows the other hosts' leases under `<prefix>/subnets/` and publishes a route-table
/// snapshot whenever the routes change: lists once, then watches from the listing's revision + 1.
/// A broken watch resumes from the last revision seen + 1 after a capped, jittered backoff; a
/// compacted one re-lists and applies the difference. Malformed records are skipped and counted
/// by reason; the rest stay.
///
/// Freshness: the table is "confirmed current" while a watch is open and answering (events, or
/// the progress the etcd client asks for every few seconds). From the first failure to the next
/// confirmation it is not, and that episode is told once to the log and to `onFreshness`; the
/// dataplane keeps forwarding with the last table meanwhile.
///
/// A store that went back (its cluster ID changed, or a fresh read's revision is below one
/// already seen: etcd lost its data or was restored from an older backup) is relisted and
/// `onRecheckLease` runs, so our own lease is re-asserted at once instead of at its renewal;
/// it runs after every re-opened watch too, since our key may have gone while we were away.
public actor PeerWatcher: PeerWatching {
    public struct Configuration: Sendable {
        /// --etcd-prefix.
        public var prefix: String
        /// The config the routes are built under (backend, port, Network, SubnetLen).
        public var network: NetworkConfig
        /// Our own subnet: never a route; a record overlapping it is skipped.
        public var localSubnet: IPv4Prefix?
        /// Our own IPv6 subnet (a dual-stack lease): never an IPv6 peer.
        public var localIPv6Subnet: IPv6Prefix?
        /// Reconnect backoff (flannel: 100 ms doubling to 5 s).
        public var backoff = Backoff()

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
        /// Times the store was found to have gone back (lost data, an older backup).
        public var storeResets = 0
        /// Records currently skipped, by reason.
        public var skipped: [PeerSkipReason: Int] = [:]
        /// Routes in the last published snapshot.
        public var routes = 0
        /// The revision the table reflects.
        public var revision: Int64 = 0
        /// From receiving a watch batch (or listing) to the publish it caused; the last 1,024.
        public var publishDelays: [Duration] = []
    }

    /// Whether the table can be taken as etcd's current view, told to `onFreshness` on each change.
    public typealias Freshness = RouteFreshness
    /// Told to the `onPublish` observer after each publish.
    public typealias Publication = RoutePublication

    private let client: EtcdClient
    private let configuration: Configuration
    private let publisher: RouteTablePublisher
    private let clock: any ControlPlaneClock
    private let log: LogHandler
    private let etcdErrors = ControlPlaneMetrics.etcdErrors("watch")
    private let onPublish: (@Sendable (Publication) -> Void)?
    private let onOwnKeyChange: (@Sendable (Int64) async -> Void)?
    private let onFreshness: (@Sendable (Freshness) -> Void)?
    private let onRecheckLease: (@Sendable () async -> Void)?
    private let storeResets = ControlPlaneMetrics.storeResets()
    /// Test seam: runs before each watch is opened, with the revision it will start from.
    let beforeWatch: (@Sendable (Int64) async -> Void)?

    private var routes: PeerRoutes
    /// Whether the table is confirmed current, as episodes told once each.
    private var freshness = FreshnessEpisodes()
    /// The highest store revision any answer carried, and the cluster that gave it: a fresh read
    /// below it, or another cluster, means the store went back.
    private var highestRevision: Int64 = 0
    private var clusterID: Int64 = 0
    public private(set) var statistics = Statistics()

    /// - Parameters:
    ///   - publisher: receives a new snapshot whenever the routes change.
    ///   - onOwnKeyChange: called with the revision of every event on our own key; wire it to
    ///     `LeaseManager.noticeOwnKeyChange` so a deleted lease is noticed at once.
    ///   - onPublish: observes each publish (metrics, tests).
    ///   - onFreshness: told when the table stops or starts again being confirmed current.
    ///   - onRecheckLease: our key may be gone (a re-opened watch, a store that went back); wire it
    ///     to `LeaseManager.recheck` so the lease is re-asserted now.
    public init(
        client: EtcdClient,
        configuration: Configuration,
        publisher: RouteTablePublisher,
        clock: any ControlPlaneClock = SystemClock(),
        log: @escaping LogHandler = { _, _ in },
        onOwnKeyChange: (@Sendable (Int64) async -> Void)? = nil,
        onPublish: (@Sendable (Publication) -> Void)? = nil,
        onFreshness: (@Sendable (Freshness) -> Void)? = nil,
        onRecheckLease: (@Sendable () async -> Void)? = nil
    ) {
        self.init(
            client: client,
            configuration: configuration,
            publisher: publisher,
            clock: clock,
            log: log,
            onOwnKeyChange: onOwnKeyChange,
            onPublish: onPublish,
            onFreshness: onFreshness,
            onRecheckLease: onRecheckLease,
            beforeWatch: nil
        )
    }

    init(
        client: EtcdClient,
        configuration: Configuration,
        publisher: RouteTablePublisher,
        clock: any ControlPlaneClock,
        log: @escaping LogHandler,
        onOwnKeyChange: (@Sendable (Int64) async -> Void)?,
        onPublish: (@Sendable (Publication) -> Void)?,
        onFreshness: (@Sendable (Freshness) -> Void)? = nil,
        onRecheckLease: (@Sendable () async -> Void)? = nil,
        beforeWatch: (@Sendable (Int64) async -> Void)?
    ) {
        self.client = client
        self.configuration = configuration
        self.publisher = publisher
        self.clock = clock
        self.log = log
        self.onOwnKeyChange = onOwnKeyChange
        self.onPublish = onPublish
        self.onFreshness = onFreshness
        self.onRecheckLease = onRecheckLease
        self.beforeWatch = beforeWatch
        routes = PeerRoutes(config: configuration.network)
    }

    private var subnetsPrefix: String { EtcdPath.subnets(prefix: configuration.prefix) + "/" }
    /// Whether `key` is our lease's: the key of a dual-stack lease names its IPv6 subnet too,
    /// and no other key can hold our IPv4 subnet; an IPv6-only lease is known by its IPv6 subnet.
    private func isOwnKey(_ key: String) -> Bool {
        guard key.hasPrefix(subnetsPrefix), let parsed = LeaseKey(parsing: key) else { return false }
        if let localSubnet = configuration.localSubnet { return parsed.subnet == localSubnet }
        guard let localIPv6Subnet = configuration.localIPv6Subnet else { return false }
        return parsed.subnet == nil && parsed.ipv6Subnet == localIPv6Subnet
    }

    /// Our lease's subnets for log lines; nil when the watcher has none (a read-only watcher).
    private var ownSubnets: String? {
        guard configuration.localSubnet != nil || configuration.localIPv6Subnet != nil else { return nil }
        return LeaseKey(subnet: configuration.localSubnet, ipv6Subnet: configuration.localIPv6Subnet).subnets
    }

    /// The peers' IPv6 halves as last seen, for an IPv6 dataplane.
    public func ipv6Peers() -> [IPv6Peer] {
        routes.table.ipv6Peers(localSubnet: configuration.localIPv6Subnet)
    }

    /// Lists, watches and republishes until the task is cancelled.
    public func run() async {
        var revision: Int64?
        // Reset only by a delivered batch, so a server that fails every watch at once (or keeps
        // reporting compaction) meets a growing wait, never a hot loop.
        var attempt = 0
        var compactedLast = false
        // A watch or listing failed since the last open watch: our key is checked once re-opened.
        var interrupted = false
        while !Task.isCancelled {
            do {
                var listedNow = false
                if revision == nil {
                    revision = try await list()
                    if revision == nil { continue }
                    listedNow = true
                }
                let from = (revision ?? 0) + 1
                await beforeWatch?(from)
                let watch = try await client.watch(prefix: subnetsPrefix, fromRevision: from)
                if watch.clusterID != 0, clusterID != 0, watch.clusterID != clusterID {
                    watch.cancel()
                    await storeWentBack(
                        "the watch is answered by another etcd cluster (ID \(hex(watch.clusterID)), was \(hex(clusterID)))"
                    )
                    revision = nil
                    continue
                }
                if watch.createdRevision < (revision ?? 0) {
                    // Behind what we applied: a lagging member, or a store that went back (also
                    // between our listing and this watch). A fresh (linearizable) listing tells
                    // which; a member that keeps lagging meets a growing wait, not a hot loop.
                    watch.cancel()
                    log(
                        .info,
                        "etcd created the watch at revision \(watch.createdRevision), below the \(revision ?? 0) already applied; listing again to check the store"
                    )
                    revision = nil
                    if listedNow {
                        do { try await clock.sleep(for: configuration.backoff.delay(attempt: attempt)) } catch { break }
                        attempt += 1
                    }
                    continue
                }
                confirm()
                if interrupted {
                    interrupted = false
                    await onRecheckLease?()
                }
                try await withTaskCancellationHandler {
                    for try await batch in watch {
                        let receivedAt = clock.now
                        highestRevision = max(highestRevision, batch.revision)
                        if !batch.isProgress {
                            await apply(batch.events, revision: &revision)
                            publishIfChanged(receivedAt: receivedAt)
                        }
                        confirm()
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
                    log(
                        .info,
                        "watch of \(subnetsPrefix) from revision \(revision.map { $0 + 1 } ?? 0) hit compaction at \(compactedAt); listing again"
                    )
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
                interrupted = true
                unconfirm(error.description)
                etcdErrors.increment()
                let delay = configuration.backoff.delay(attempt: attempt)
                attempt += 1
                statistics.reconnects += 1
                log(
                    attempt > 3 ? .warning : .info,
                    "watch of \(subnetsPrefix) interrupted: \(error); resuming from revision \(revision.map { $0 + 1 } ?? 0) in \(delay)"
                )
                do { try await clock.sleep(for: delay) } catch { break }
            } catch {
                // Only cancellation reaches here: everything the client throws is an EtcdError.
                break
            }
        }
    }

    /// Replaces the table with a fresh listing and publishes if the routes changed; returns its
    /// revision, or nil when the listing showed that the store went back (list again).
    private func list() async throws(EtcdError) -> Int64? {
        let listing = try await client.range(prefix: subnetsPrefix)
        if listing.clusterID != 0, clusterID != 0, listing.clusterID != clusterID {
            await storeWentBack("another etcd cluster answers (ID \(hex(listing.clusterID)), was \(hex(clusterID)))")
            return nil
        }
        if listing.revision < highestRevision {
            await storeWentBack("its revision went back from \(highestRevision) to \(listing.revision)")
            return nil
        }
        if listing.clusterID != 0 { clusterID = listing.clusterID }
        highestRevision = max(highestRevision, listing.revision)
        let receivedAt = clock.now
        let difference = routes.table.replace(with: listing.kvs)
        if statistics.revision != 0 {
            log(
                .info,
                "re-listed \(listing.kvs.count) leases at revision \(listing.revision): \(difference.added) added, \(difference.removed) removed, \(difference.changed) changed"
            )
        }
        statistics.revision = listing.revision
        publishIfChanged(receivedAt: receivedAt, force: routes.published == nil)
        if let ownSubnets, !listing.kvs.contains(where: { isOwnKey($0.key) }) {
            // Our key is gone, whatever the revisions say: a store restored or rebuilt can reach
            // the revision we last saw again, so only its content shows it went back.
            log(
                .warning,
                "our lease key for \(ownSubnets) is missing from etcd's listing at revision \(listing.revision); re-asserting it"
            )
            await onRecheckLease?()
        }
        return listing.revision
    }

    /// etcd's data is not what we followed: forget its revisions and cluster, have our lease
    /// re-asserted, and list again (the caller does).
    private func storeWentBack(_ why: String) async {
        log(
            .warning,
            "etcd's store went back: \(why); its data was lost or restored from an older backup. Listing the leases again and re-asserting ours"
        )
        statistics.storeResets += 1
        storeResets.increment()
        highestRevision = 0
        clusterID = 0
        await onRecheckLease?()
    }

    private func confirm() {
        guard let confirmation = freshness.confirm(at: clock.now) else { return }
        if case .again(let after) = confirmation {
            log(
                .info,
                "route table confirmed current again at revision \(statistics.revision) after \(after) unconfirmed"
            )
        }
        onFreshness?(.confirmed(revision: statistics.revision))
    }

    private func unconfirm(_ reason: String) {
        guard freshness.unconfirm(at: clock.now) else { return }
        log(
            .warning,
            "route table no longer confirmed current: \(reason). Forwarding with the table of revision \(statistics.revision) until the watch answers again"
        )
        onFreshness?(.unconfirmed(reason: reason))
    }

    private func hex(_ id: Int64) -> String { String(UInt64(bitPattern: id), radix: 16) }

    private func apply(_ batch: [WatchEvent], revision: inout Int64?) async {
        for event in batch {
            if let seen = revision, event.revision <= seen {
                statistics.duplicateEventsIgnored += 1
                continue
            }
            revision = event.revision
            statistics.revision = event.revision
            statistics.eventsApplied += 1
            routes.table.apply(event)
            if isOwnKey(event.kv.key), let onOwnKeyChange {
                await onOwnKeyChange(event.revision)
            }
        }
    }

    private func publishIfChanged(receivedAt: Duration, force: Bool = false) {
        let (publication, newlySkipped) = routes.publishIfChanged(
            to: publisher,
            localSubnet: configuration.localSubnet,
            localIPv6Subnet: configuration.localIPv6Subnet,
            revision: statistics.revision,
            now: { clock.now },
            force: force
        )
        for (reason, count) in newlySkipped {
            log(.info, "skipping \(count) record(s) under \(subnetsPrefix): \(reason)")
        }
        statistics.skipped = routes.skipped
        guard let publication else { return }
        statistics.publishes += 1
        statistics.routes = publication.routes.count
        if statistics.publishDelays.count == 1_024 { statistics.publishDelays.removeFirst() }
        statistics.publishDelays.append(publication.publishedAt - receivedAt)
        onPublish?(publication)
    }
}
