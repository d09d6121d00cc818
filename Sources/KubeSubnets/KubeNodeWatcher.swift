import Addressing
import Config
import ControlPlane
import KubeModel
import Routes
import Timing

/// The other nodes' leases, followed as client-go's reflector follows Nodes (reference §3.7):
/// list, then watch from the list's resourceVersion with bookmarks and a server timeout; a watch
/// that ends is resumed from the last resourceVersion without a relist; an expired one (410)
/// relists and applies the difference, so a node deleted while we were away is removed. Only
/// nodes with kube-subnet-manager "true" count, ours never; a node whose annotations stop
/// parsing drops out with one line naming it and the field.
///
/// Freshness: confirmed while a watch is open; from the first failure to the next open watch it
/// is not, told once to the log and to `events.freshness`. The route table is never cleared
/// because the API server is away.
actor KubeNodeWatcher: PeerWatching {
    /// Reconnect backoff, as client-go's (up to about 30 s).
    static let backoff = Backoff(initial: .milliseconds(800), maximum: .seconds(30))

    private let manager: KubeSubnetManager
    private let keeper: any LeaseKeeper
    private let publisher: RouteTablePublisher
    private let log: LogHandler
    private let events: PeerWatchEvents
    private let clock = SystemClock()
    private let localSubnet: IPv4Prefix?
    /// Our IPv6 podCIDR (a dual-stack or IPv6-only lease): never an IPv6 peer.
    private let localIPv6Subnet: IPv6Prefix?
    private var routes: PeerRoutes
    private var mirror = NodeMirror()
    private var view: PeerLeaseView?
    private var freshness = FreshnessEpisodes()

    init(
        manager: KubeSubnetManager,
        network: NetworkConfig,
        localSubnet: IPv4Prefix?,
        localIPv6Subnet: IPv6Prefix? = nil,
        keeper: any LeaseKeeper,
        publisher: RouteTablePublisher,
        log: @escaping LogHandler,
        events: PeerWatchEvents
    ) {
        self.manager = manager
        self.keeper = keeper
        self.publisher = publisher
        self.log = log
        self.events = events
        self.localSubnet = localSubnet
        self.localIPv6Subnet = localIPv6Subnet
        routes = PeerRoutes(config: network)
    }

    /// The peers' IPv6 halves as last seen, for an IPv6 dataplane.
    func ipv6Peers() -> [IPv6Peer] {
        routes.table.ipv6Peers(localSubnet: localIPv6Subnet)
    }

    func run() async {
        var attempt = 0
        var needsList = true
        var generator = SystemRandomNumberGenerator()
        while !Task.isCancelled {
            do throws(KubeError) {
                let name = try await manager.nodeNames.name()
                if view == nil {
                    let config = routes.table.config
                    let reader = PeerLeaseReader(
                        keys: manager.keys,
                        ownNodeName: name,
                        ipv4: config.ipv4 != nil,
                        ipv6: config.ipv6 != nil
                    )
                    view = PeerLeaseView(reader: reader)
                }
                if needsList {
                    try await list(ownName: name)
                    needsList = false
                }
                var outcome = WatchEnd.serverClosed
                try await manager.api.watch(
                    .watchNodes(
                        resourceVersion: mirror.lastResourceVersion,
                        timeoutSeconds: APIRequest.watchTimeoutSeconds(using: &generator)
                    ),
                    opened: { confirm() },
                    handle: { event in
                        switch mirror.apply(event) {
                        case .changes(let changes):
                            await apply(changes, ownName: name)
                            attempt = 0
                            return true
                        case .progressed:
                            return true
                        case .relist(let status):
                            outcome = .expired(status.message ?? "resource version expired")
                            return false
                        case .backOff(let delay, _):
                            outcome = .throttled(delay)
                            return false
                        }
                    }
                )
                switch outcome {
                case .serverClosed:
                    continue  // client-go: watch again from the last resourceVersion, no relist
                case .expired(let why):
                    log(.info, "node watch expired (\(why)); listing the nodes again")
                    needsList = true
                case .throttled(let delay):
                    unconfirm("the API server is throttling the node watch")
                    try? await clock.sleep(for: delay)
                }
            } catch {
                if Task.isCancelled { break }
                if error.kind == .api(code: 410) {
                    log(
                        .info,
                        "node watch from resourceVersion \(mirror.lastResourceVersion) is too old; listing the nodes again"
                    )
                    needsList = true
                    continue
                }
                unconfirm(error.description)
                let delay = error.retryAfter ?? Self.backoff.delay(attempt: attempt)
                attempt += 1
                log(attempt > 3 ? .warning : .info, "node watch interrupted: \(error); retrying in \(delay)")
                do { try await clock.sleep(for: delay) } catch { break }
            }
        }
    }

    private enum WatchEnd {
        case serverClosed
        case expired(String)
        case throttled(Duration)
    }

    /// A full list (following continue tokens) replaces the mirror; its difference is applied.
    private func list(ownName: String) async throws(KubeError) {
        var items: [Node] = []
        var continueToken: String?
        var resourceVersion = ""
        var expiredOnce = false
        while true {
            let body: [UInt8]
            do {
                body = try await manager.api.call(
                    .listNodes(resourceVersion: mirror.listResourceVersion, continueToken: continueToken)
                )
            } catch  where error.kind == .api(code: 410) && !expiredOnce {
                // Too old for the list too (or an expired continue token): start over with a quorum read.
                mirror.listExpired()
                expiredOnce = true
                items = []
                continueToken = nil
                continue
            }
            let page = try APIDecoding.nodeList(body)
            items += page.items
            resourceVersion = page.metadata.resourceVersion ?? resourceVersion
            continueToken = page.metadata.continue.flatMap { $0.isEmpty ? nil : $0 }
            if continueToken == nil { break }
        }
        let relisted = mirror.hasSynced
        let changes = mirror.replace(items, resourceVersion: resourceVersion)
        if relisted {
            log(
                .info,
                "re-listed \(items.count) nodes at resourceVersion \(resourceVersion): \(changes.added.count) added, \(changes.removed.count) removed, \(changes.updated.count) changed"
            )
        }
        await apply(changes, ownName: ownName, force: routes.published == nil)
    }

    private func apply(_ changes: NodeChanges, ownName: String, force: Bool = false) async {
        if changes.updated.contains(where: { $0.new.name == ownName && ownLeaseChanged($0.old, $0.new) })
            || changes.removed.contains(where: { $0.name == ownName })
        {
            await keeper.noticeOwnRecordChange(version: Int64(mirror.lastResourceVersion) ?? 0)
        }
        // Mutated in place: a copy out of `view` would copy every lease per event (copy-on-write).
        guard let peers = view?.apply(changes) else { return }
        for line in peers.skipped { log(.info, line) }
        for lease in peers.added {
            routes.table.put(
                lease.nodeName,
                .lease(subnet: lease.subnet, attributes: lease.attributes, ipv6Subnet: lease.ipv6Subnet)
            )
        }
        for replacement in peers.replaced {
            if replacement.old.nodeName != replacement.new.nodeName { routes.table.remove(replacement.old.nodeName) }
            routes.table.put(
                replacement.new.nodeName,
                .lease(
                    subnet: replacement.new.subnet,
                    attributes: replacement.new.attributes,
                    ipv6Subnet: replacement.new.ipv6Subnet
                )
            )
        }
        for lease in peers.removed { routes.table.remove(lease.nodeName) }
        publishIfChanged(force: force)
    }

    /// Our node's podCIDR or flannel annotations changed (not a kubelet heartbeat).
    private func ownLeaseChanged(_ old: Node, _ new: Node) -> Bool {
        guard old.spec == new.spec else { return true }
        let keys = manager.keys
        let ours = [
            keys.backendData, keys.backendType, keys.publicIP, keys.kubeSubnetManager, keys.publicIPOverwrite,
            keys.backendV6Data, keys.publicIPv6, keys.publicIPv6Overwrite,
        ]
        return ours.contains { old.annotations[$0] != new.annotations[$0] }
    }

    private func publishIfChanged(force: Bool = false) {
        let (publication, newlySkipped) = routes.publishIfChanged(
            to: publisher,
            localSubnet: localSubnet,
            localIPv6Subnet: localIPv6Subnet,
            revision: Int64(mirror.lastResourceVersion) ?? 0,
            now: { clock.now },
            force: force
        )
        for (reason, count) in newlySkipped { log(.info, "skipping \(count) node lease(s): \(reason)") }
        if let publication { events.published(publication) }
    }

    private func confirm() {
        guard let confirmation = freshness.confirm(at: clock.now) else { return }
        if case .again(let after) = confirmation {
            log(
                .info,
                "route table confirmed current again at resourceVersion \(mirror.lastResourceVersion) after \(after) unconfirmed"
            )
        }
        events.freshness(.confirmed(revision: Int64(mirror.lastResourceVersion) ?? 0))
    }

    private func unconfirm(_ reason: String) {
        guard freshness.unconfirm(at: clock.now) else { return }
        log(
            .warning,
            "route table no longer confirmed current: \(reason). Forwarding with the last table until the node watch answers again"
        )
        events.freshness(.unconfirmed(reason: reason))
    }
}
