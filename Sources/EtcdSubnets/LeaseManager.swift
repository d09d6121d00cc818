import Addressing
import Config
import ControlPlane
import Etcd
import Timing

/// Takes and keeps this host's subnet lease in etcd, compatibly with flanneld (DESIGN.md §2):
/// the same keys, the same value bytes, the same order of preference, and every write that takes
/// or keeps a subnet is a transaction that compares first, so two hosts never own one subnet.
///
/// Use: `acquire()` (retry it while it throws: etcd may be down or the config not written yet),
/// then `run()` for the life of the daemon; it renews the etcd lease when less than the renew
/// margin is left and re-acquires (preferring the same subnet) when the lease is lost. Every
/// change is announced on `changes`. Feed watch events on our own key to `noticeOwnKeyChange`.
public actor LeaseManager: LeaseKeeper {
    public struct Configuration: Sendable {
        /// --etcd-prefix.
        public var prefix: String
        /// Our lease value; its PublicIP identifies our reservation and our earlier lease.
        public var attributes: LeaseAttributes
        /// The subnet of the previous subnet.env (FLANNEL_SUBNET), tried before a random one.
        public var previousSubnet: IPv4Prefix?
        /// subnet.env's FLANNEL_IPV6_SUBNET, asked for together with `previousSubnet`.
        public var previousIPv6Subnet: IPv6Prefix?
        /// TTL asked for each etcd lease (flannel: 24 h).
        public var leaseTTL: Duration = .seconds(86_400)
        /// Renew when less than this is left (--subnet-lease-renew-margin, flannel: 60 min). A
        /// margin not below the TTL would renew continuously; half the TTL is used instead.
        public var renewMargin: Duration = .seconds(3_600)
        /// Wait before retrying a failed renewal or re-acquisition (flannel: 1 min).
        public var retryInterval: Duration = .seconds(60)
        /// Listings + transactions tried before giving up on a contended range (flannel's intent: 10).
        public var maximumAttempts = 10
        /// This node's identity beside its PublicIP, written to the owner key of every lease we
        /// take; nil: no owner keys, flannel's rule alone (a lease with our PublicIP is ours).
        public var node: NodeOwner?

        public init(
            attributes: LeaseAttributes,
            prefix: String = EtcdPath.defaultPrefix,
            previousSubnet: IPv4Prefix? = nil
        ) {
            self.attributes = attributes
            self.prefix = prefix
            self.previousSubnet = previousSubnet
        }

        /// What weftd asks for, kept under `prefix`.
        public init(_ request: LeaseRequest, prefix: String) {
            self.init(attributes: request.attributes, prefix: prefix, previousSubnet: request.previousSubnet)
            leaseTTL = request.ttl
            renewMargin = request.renewMargin
            node = request.node
            previousIPv6Subnet = request.previousIPv6Subnet
        }
    }

    /// Our lease as etcd holds it; the lease's own fields read through (`record.subnet`).
    @dynamicMemberLookup
    public struct Record: Sendable, Equatable {
        public var lease: AcquiredLease
        /// `<prefix>/subnets/<a.b.c.d>-<len>`.
        public var key: String
        /// The etcd lease the key is attached to; nil for a reservation, which has no TTL.
        public var etcdLease: LeaseID?
        /// modRevision of the key as we last wrote or checked it: watch events on our own key at
        /// or below it are echoes of our own writes.
        public var revision: Int64
        /// The exact value in etcd: our LeaseAttributes JSON, byte for byte as flannel writes it.
        public var value: String

        public subscript<Value>(dynamicMember field: KeyPath<AcquiredLease, Value>) -> Value { lease[keyPath: field] }
    }

    public nonisolated let changes: AsyncStream<LeaseChange>
    private let changeSink: AsyncStream<LeaseChange>.Continuation

    private let client: EtcdClient
    private let configuration: Configuration
    private let clock: any ControlPlaneClock
    private let log: LogHandler
    private let renewals = ControlPlaneMetrics.leaseRenewals()
    private let etcdErrors = ControlPlaneMetrics.etcdErrors("lease")

    /// The lease we hold; nil before the first acquisition and between a loss and re-acquisition.
    public private(set) var record: Record?
    public var current: AcquiredLease? { record?.lease }
    /// Failed re-acquisitions in a row, pacing the next try.
    private var reacquisitions = 0
    /// The subnet held before the last loss, asked for first when re-acquiring.
    private var lostSubnet: LeaseKey?
    /// Clock time of the next renewal or retry; nil when there is nothing to renew (a reservation).
    private var deadline: Duration?
    /// Highest revision of a watch event on our key not yet checked.
    private var pendingNotice: Int64?
    private var wakeup: CheckedContinuation<Void, Never>?
    /// The acquisition under way: a caller of `acquire()` and the `run()` loop share it instead
    /// of racing each other for two subnets.
    private var acquisition: Task<Result<Record, LeaseError>, Never>?
    private var isRunning = false

    public init(
        client: EtcdClient,
        configuration: Configuration,
        clock: any ControlPlaneClock = SystemClock(),
        log: @escaping LogHandler = { _, _ in }
    ) {
        self.client = client
        self.configuration = configuration
        self.clock = clock
        self.log = log
        (changes, changeSink) = AsyncStream.makeStream(of: LeaseChange.self)
    }

    private var value: String { configuration.attributes.json }
    private var subnetsPrefix: String { EtcdPath.subnets(prefix: configuration.prefix) + "/" }

    // MARK: Acquisition

    /// Reads the network config and takes a subnet: our reservation, else our existing lease,
    /// else the previous subnet.env subnet if free, else a random free one. Announced as `.acquired`.
    @discardableResult
    public func acquire() async throws(LeaseError) -> AcquiredLease {
        try await acquireRecord().lease
    }

    /// `acquire()`, returning the record etcd holds for the lease (key, etcd lease, revision).
    @discardableResult
    public func acquireRecord() async throws(LeaseError) -> Record {
        if let record { return record }
        if let acquisition { return try await acquisition.value.get() }
        // An IPv6-only network's previous lease is its IPv6 subnet alone.
        let previous =
            configuration.previousSubnet != nil || configuration.previousIPv6Subnet != nil
            ? LeaseKey(subnet: configuration.previousSubnet, ipv6Subnet: configuration.previousIPv6Subnet) : nil
        let preferred = [lostSubnet, previous].compactMap { $0 }
        let task = Task { () async -> Result<Record, LeaseError> in
            do throws(LeaseError) {
                return .success(try await take(preferring: preferred))
            } catch {
                return .failure(error)
            }
        }
        acquisition = task
        let result = await task.value
        acquisition = nil
        if case .success(let lease) = result { install(lease) }
        return try result.get()
    }

    private func install(_ lease: Record) {
        if let lostSubnet, lostSubnet != lease.lease.leaseKey {
            log(
                .warning,
                "lease subnet CHANGED from \(lostSubnet.subnets) to \(lease.lease.leaseKey.subnets) (\(lease.key)): containers addressed from \(lostSubnet.subnets) lose connectivity until restarted"
            )
        }
        lostSubnet = nil
        record = lease
        scheduleRenewal(ttl: lease.lease.ttl)
        log(
            .info,
            "acquired \(lease.lease.leaseKey.subnets) (\(lease.lease.origin)) at \(lease.key), etcd lease \(lease.etcdLease.map { "\($0)" } ?? "none (reservation)")"
        )
        changeSink.yield(.acquired(lease.lease))
    }

    private func take(preferring preferred: [LeaseKey]) async throws(LeaseError) -> Record {
        let config = try await client.networkConfig(prefix: configuration.prefix)
        // Granted once and reused across lost races; revoked if no write ends up using it.
        var granted: Lease?
        var generator = SystemRandomNumberGenerator()
        do throws(LeaseError) {
            for _ in 0..<max(1, configuration.maximumAttempts) {
                let listing = try await etcd { () throws(EtcdError) in try await client.range(prefix: subnetsPrefix) }
                let leases = listing.kvs.compactMap(ListedLease.init)
                let (choice, stale) = SubnetChoice.choose(
                    listing: leases,
                    config: config,
                    attributes: configuration.attributes,
                    requested: preferred,
                    using: &generator
                )
                for kv in stale {
                    log(
                        .info,
                        "deleting our lease \(kv.key): it no longer fits the subnet fields or EnableIPv6 of the config"
                    )
                    _ = try await etcd { () throws(EtcdError) in
                        try await client.transaction(
                            compare: [.modRevision(kv.key, equals: kv.modRevision)],
                            success: [.delete(key: kv.key)]
                        )
                    }
                }
                let outcome: Record?
                switch choice {
                case .outOfSubnets:
                    // Only chosen when the network has IPv4.
                    let ipv4 = config.ipv4!
                    throw LeaseError(
                        .outOfSubnets(
                            network: ipv4.network,
                            subnetMin: ipv4.subnetMin,
                            subnetMax: ipv4.subnetMax,
                            subnets: config.subnets?.count ?? 0,
                            prefix: configuration.prefix
                        )
                    )
                case .outOfIPv6Subnets(let ipv6):
                    throw LeaseError(
                        .outOfIPv6Subnets(
                            network: ipv6.network,
                            subnetMin: ipv6.subnetMin,
                            subnetMax: ipv6.subnetMax,
                            prefix: configuration.prefix
                        )
                    )
                case .reservation(let kv, let subnets):
                    outcome = try await keepReservation(kv, subnets: subnets, config: config)
                case .existing(let kv, let subnets):
                    try await refuseIfAnotherNodeOwns(subnets, kv: kv)
                    let lease = try await grant(&granted)
                    outcome = try await write(
                        subnets,
                        lease: lease,
                        config: config,
                        origin: .existing,
                        compare: .modRevision(kv.key, equals: kv.modRevision)
                    )
                    if outcome != nil, let old = kv.lease, old != lease.id {
                        // The key has moved to the new lease; the old one holds nothing now.
                        try? await client.revokeLease(old)
                    }
                case .create(let subnets, let origin):
                    let lease = try await grant(&granted)
                    outcome = try await write(
                        subnets,
                        lease: lease,
                        config: config,
                        origin: origin,
                        compare: .absent(subnets.path(prefix: configuration.prefix))
                    )
                }
                if let outcome {
                    if outcome.etcdLease == granted?.id { granted = nil }
                    if let unused = granted { try? await client.revokeLease(unused.id) }
                    return outcome
                }
                log(.debug, "another host changed the subnets while we chose one; listing again")
            }
            throw LeaseError(.contended(attempts: max(1, configuration.maximumAttempts)))
        } catch {
            if let unused = granted { try? await client.revokeLease(unused.id) }
            throw error
        }
    }

    /// flannel takes any lease with our PublicIP as ours. Two live nodes with one PublicIP (a
    /// cloned VM, a NAT, a typo) would then take it from each other forever; the owner key says
    /// which node wrote it, and another node's is refused. A lease without one (flanneld's, an
    /// older weftd's) is taken as flannel would.
    private func refuseIfAnotherNodeOwns(_ subnets: LeaseKey, kv: KeyValue) async throws(LeaseError) {
        guard let node = configuration.node else { return }
        let ownerKey = EtcdPath.owner(prefix: configuration.prefix, subnet: subnets)
        guard let record = try await etcd({ () throws(EtcdError) in try await client.get(ownerKey) }).kvs.first,
            let owner = NodeOwner(record: record.value), owner.nodeID != node.nodeID
        else { return }
        throw LeaseError(
            .ownedByAnotherNode(
                subnets: subnets.subnets,
                publicIP: configuration.attributes.hostName(ipv6Only: subnets.subnet == nil),
                ipv6Only: subnets.subnet == nil,
                key: kv.key,
                ownerKey: ownerKey,
                owner: owner,
                us: node
            )
        )
    }

    private func grant(_ granted: inout Lease?) async throws(LeaseError) -> Lease {
        if let granted { return granted }
        let seconds = max(1, configuration.leaseTTL.components.seconds)
        let lease = try await etcd { () throws(EtcdError) in try await client.grantLease(ttl: seconds) }
        granted = lease
        return lease
    }

    /// A reservation stays without TTL. Its value is rewritten only if ours differs (a new VtepMAC).
    private func keepReservation(
        _ kv: KeyValue,
        subnets: LeaseKey,
        config: NetworkConfig
    ) async throws(LeaseError) -> Record? {
        var lease = record(
            subnets,
            key: kv.key,
            etcdLease: nil,
            ttl: nil,
            revision: kv.modRevision,
            origin: .reservation,
            config: config
        )
        if kv.value == value { return lease }
        let result = try await etcd { () throws(EtcdError) in
            try await client.transaction(
                compare: [.modRevision(kv.key, equals: kv.modRevision)],
                success: [.put(key: kv.key, value: value, lease: nil)]
            )
        }
        guard result.succeeded else { return nil }
        lease.revision = result.revision
        return lease
    }

    /// Puts our value at `subnet`'s key, attached to `lease`, if `compare` still holds; nil when
    /// another host got there first. A timed-out transaction counts as lost: the next listing
    /// shows whether it applied (then the key is ours and is kept as `.existing`).
    private func write(
        _ subnets: LeaseKey,
        lease: Lease,
        config: NetworkConfig,
        origin: LeaseOrigin,
        compare: Compare
    ) async throws(LeaseError) -> Record? {
        let key = subnets.path(prefix: configuration.prefix)
        var writes: [TransactionOperation] = [.put(key: key, value: value, lease: lease.id)]
        if let node = configuration.node {
            writes.append(
                .put(
                    key: EtcdPath.owner(prefix: configuration.prefix, subnet: subnets),
                    value: node.record,
                    lease: lease.id
                )
            )
        }
        let result: TransactionResult
        do {
            result = try await client.transaction(compare: [compare], success: writes)
        } catch {
            etcdErrors.increment()
            if case .timedOut = error.reason { return nil }
            throw LeaseError(.etcd(error))
        }
        guard result.succeeded else { return nil }
        return record(
            subnets,
            key: key,
            etcdLease: lease.id,
            ttl: .seconds(lease.ttl),
            revision: result.revision,
            origin: origin,
            config: config
        )
    }

    private func record(
        _ subnets: LeaseKey,
        key: String,
        etcdLease: LeaseID?,
        ttl: Duration?,
        revision: Int64,
        origin: LeaseOrigin,
        config: NetworkConfig
    ) -> Record {
        Record(
            lease: AcquiredLease(
                subnet: subnets.subnet,
                ttl: ttl,
                origin: origin,
                config: config,
                attributes: configuration.attributes,
                location: key,
                ipv6Subnet: subnets.ipv6Subnet
            ),
            key: key,
            etcdLease: etcdLease,
            revision: revision,
            value: value
        )
    }

    // MARK: Keeping the lease

    /// Renews, verifies and re-acquires until the task is cancelled. Acquires first if
    /// `acquire()` was not called or failed. A second concurrent call returns at once.
    public func run() async {
        guard !isRunning else { return }
        isRunning = true
        defer { isRunning = false }
        while !Task.isCancelled {
            guard current != nil else {
                await reacquire()
                continue
            }
            await sleepUntilDeadlineOrNotice()
            if Task.isCancelled { break }
            if let revision = pendingNotice {
                pendingNotice = nil
                await verify(afterEventAt: revision)
            } else if let deadline, clock.now >= deadline {
                await renew()
            }
        }
    }

    /// A watch event on our own key at `revision`: if it is newer than our last write, the key
    /// is read back and, if it is no longer ours, the lease counts as lost.
    public func noticeOwnKeyChange(revision: Int64) {
        guard let record, revision > record.revision else { return }
        pendingNotice = max(pendingNotice ?? 0, revision)
        wake()
    }

    /// Our key may be gone (etcd's store went back, or the peer watch was away): renew now, which
    /// re-creates a missing key by a compare-first write on the same subnet, or re-acquires when
    /// etcd no longer knows our lease. Without this a lost key waits for the renewal (23 h).
    public func recheck() {
        guard record?.etcdLease != nil else { return }
        deadline = clock.now
        wake()
    }

    /// LeaseKeeper: a change of our key at an etcd revision.
    public func noticeOwnRecordChange(version: Int64) {
        noticeOwnKeyChange(revision: version)
    }

    private func reacquire() async {
        do {
            try await acquire()
            reacquisitions = 0
        } catch {
            // From 1 s doubling to the retry interval: a lost lease is wanted back in seconds (a
            // restored etcd gets its config back moments later, and a joining host could take the
            // subnet meanwhile), but a long outage costs one line a minute.
            let backoff = Backoff(
                initial: min(.seconds(1), configuration.retryInterval),
                maximum: configuration.retryInterval
            )
            let wait = backoff.ceiling(attempt: reacquisitions)
            reacquisitions += 1
            log(.warning, "cannot acquire a subnet lease: \(error); retrying in \(wait)")
            deadline = clock.now + wait
            pendingNotice = nil
            await sleepUntilDeadlineOrNotice()
        }
    }

    private func renew() async {
        guard let lease = record else { return }
        guard let id = lease.etcdLease else {
            deadline = nil
            return
        }
        do throws(EtcdError) {
            guard let ttl = try await client.keepAliveOnce(lease: id) else {
                lose("etcd lease \(id) expired or was revoked, taking \(lease.key) with it")
                return
            }
            // The etcd lease can outlive the key (someone deleted or overwrote it): check and repair.
            let kv = try await client.get(lease.key).kvs.first
            var renewed = lease
            renewed.lease.ttl = .seconds(ttl)
            if let kv {
                guard kv.lease == id else {
                    lose("\(lease.key) was taken over by etcd lease \(kv.lease.map { "\($0)" } ?? "none")")
                    return
                }
                renewed.revision = kv.modRevision
                if kv.value != value {
                    let result = try await client.transaction(
                        compare: [.modRevision(kv.key, equals: kv.modRevision)],
                        success: [.put(key: lease.key, value: value, lease: id)]
                    )
                    guard result.succeeded else {
                        lose("\(lease.key) changed while we rewrote its value")
                        return
                    }
                    renewed.revision = result.revision
                }
            } else {
                let result = try await client.transaction(
                    compare: [.absent(lease.key)],
                    success: [.put(key: lease.key, value: value, lease: id)]
                )
                guard result.succeeded else {
                    lose("\(lease.key) was deleted and taken by another host")
                    return
                }
                renewed.revision = result.revision
            }
            if let node = configuration.node {
                // Put back if someone deleted it; never over another node's.
                let ownerKey = EtcdPath.owner(prefix: configuration.prefix, subnet: lease.lease.leaseKey)
                _ = try await client.transaction(
                    compare: [.absent(ownerKey)],
                    success: [.put(key: ownerKey, value: node.record, lease: id)]
                )
            }
            record = renewed
            scheduleRenewal(ttl: renewed.lease.ttl)
            log(.debug, "renewed \(lease.lease.leaseKey.subnets): etcd lease \(id) has \(ttl) s again")
            renewals.increment()
            changeSink.yield(.renewed(renewed.lease))
        } catch {
            etcdErrors.increment()
            log(.warning, "cannot renew \(lease.key): \(error); retrying in \(configuration.retryInterval)")
            deadline = clock.now + configuration.retryInterval
        }
    }

    private func verify(afterEventAt revision: Int64) async {
        guard let lease = record, revision > lease.revision else { return }
        do throws(EtcdError) {
            let kv = try await client.get(lease.key).kvs.first
            guard let kv else {
                lose("\(lease.key) was deleted")
                return
            }
            let holder = try? LeaseAttributes.parse(kv.value)
            let ipv6Only = lease.lease.config.isIPv6Only
            guard kv.lease == lease.etcdLease,
                holder?.isSameHost(as: configuration.attributes, ipv6Only: ipv6Only) == true
            else {
                lose("\(lease.key) now belongs to \(holder?.hostName(ipv6Only: ipv6Only) ?? "an unreadable value")")
                return
            }
            record?.revision = kv.modRevision
        } catch {
            etcdErrors.increment()
            log(
                .warning,
                "cannot read back \(lease.key) after a change: \(error); checking again in \(configuration.retryInterval)"
            )
            pendingNotice = nil
            deadline = min(deadline ?? .seconds(Int64.max / 2), clock.now + configuration.retryInterval)
        }
    }

    private func lose(_ reason: String) {
        guard let lease = record else { return }
        let subnets = lease.lease.leaseKey
        log(.warning, "LOST lease \(subnets.subnets): \(reason); acquiring again, preferring \(subnets.subnets)")
        record = nil
        lostSubnet = subnets
        deadline = nil
        pendingNotice = nil
        changeSink.yield(.lost(lease.lease, reason: reason))
    }

    private func scheduleRenewal(ttl: Duration?) {
        guard let ttl else {
            deadline = nil
            return
        }
        let margin = configuration.renewMargin < ttl ? configuration.renewMargin : ttl / 2
        deadline = clock.now + ttl - margin
    }

    // MARK: Waiting

    private func sleepUntilDeadlineOrNotice() async {
        guard pendingNotice == nil else { return }
        let sleeper = deadline.map { deadline in
            Task { [clock] in
                try? await clock.sleep(for: max(.zero, deadline - clock.now))
                self.wake()
            }
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { wakeup = $0 }
        } onCancel: {
            Task { await self.wake() }
        }
        sleeper?.cancel()
    }

    private func wake() {
        wakeup?.resume()
        wakeup = nil
    }

    private func etcd<T>(_ body: () async throws(EtcdError) -> T) async throws(LeaseError) -> T {
        do {
            return try await body()
        } catch {
            etcdErrors.increment()
            throw LeaseError(.etcd(error))
        }
    }
}
