import Addressing
import Config
import Routes

/// Where leases live and how they are kept: flannel's subnet.Manager. weftd runs one of these
/// (etcd's, or the Kubernetes API's) and everything else (the dataplanes, traffic rules,
/// subnet.env, readiness, metrics, `weft routes`) sees only this.
///
/// Order of use: `networkConfig()` until it answers; `storedVTEPMAC` for vxlan; `leaseKeeper`,
/// whose `acquire()` is retried until it answers and whose `run()` then keeps the lease; per
/// lease, `peerWatcher` feeds the dataplane's route table; `watchConfig` reports config changes.
public protocol SubnetManager: Sendable {
    /// One line naming the store, for the log ("etcd http://198.18.0.1:2379, prefix /coreos.com/network").
    var summary: String { get }

    /// Where the network config is read, for log lines ("/coreos.com/network/config",
    /// "/etc/kube-flannel/net-conf.json").
    var configLocation: String { get }

    /// The network config as the store holds it now. A missing or invalid one is a `LeaseError`
    /// whose line says where to put it; flannel retries every second, and so should the caller.
    func networkConfig() async throws(LeaseError) -> NetworkConfig

    /// The VTEP MAC our existing lease publishes (found by `publicIP`), if any: kept across
    /// restarts so kernel peers' neighbour and FDB entries stay right (flannel's GetStoredMacAddresses).
    func storedVTEPMAC(publicIP: IPv4Address) async throws(LeaseError) -> MACAddress?

    /// A keeper for the lease `request` describes; nothing is written before its `acquire()`.
    func leaseKeeper(_ request: LeaseRequest, log: @escaping LogHandler) -> any LeaseKeeper

    /// A watcher of the other hosts' leases for the dataplane of `lease`: it publishes a route
    /// table into `publisher` whenever the routes change, tells `events`, and tells `keeper`
    /// when our own record may have changed. Not started: call its `run()`.
    func peerWatcher(
        for lease: AcquiredLease,
        keeper: any LeaseKeeper,
        publisher: RouteTablePublisher,
        log: @escaping LogHandler,
        events: PeerWatchEvents
    ) -> any PeerWatching

    /// Reports the network config as the store holds it, on start and after each change, until
    /// cancelled: a config, or why there is none usable. Store outages are not reported here.
    func watchConfig(_ report: @escaping @Sendable (Result<NetworkConfig, LeaseError>) -> Void) async

    /// Closes connections; the lease is not given up.
    func shutdown() async
}

/// What this host asks for in its lease.
public struct LeaseRequest: Sendable {
    /// The lease value: PublicIP, backend type and data.
    public var attributes: LeaseAttributes
    /// subnet.env's FLANNEL_SUBNET from the previous run, tried first where the store lets us choose.
    public var previousSubnet: IPv4Prefix?
    /// subnet.env's FLANNEL_IPV6_SUBNET from the previous run, asked for with `previousSubnet`.
    public var previousIPv6Subnet: IPv6Prefix?
    /// This node's identity beside its PublicIP (weftd's --node-id); nil: flannel's rule alone.
    public var node: NodeOwner?
    /// TTL asked for each lease, where leases expire (--subnet-lease-ttl, flannel: 24 h).
    public var ttl: Duration = .seconds(86_400)
    /// Renew when less than this is left (--subnet-lease-renew-margin, flannel: 60 min).
    public var renewMargin: Duration = .seconds(3_600)

    public init(attributes: LeaseAttributes, previousSubnet: IPv4Prefix? = nil, node: NodeOwner? = nil) {
        self.attributes = attributes
        self.previousSubnet = previousSubnet
        self.node = node
    }
}

/// Takes this host's lease and keeps it for the life of the daemon.
public protocol LeaseKeeper: Sendable {
    /// Every acquisition, renewal and loss, in order.
    var changes: AsyncStream<LeaseChange> { get }
    /// Takes the lease, or returns the one held. Retry while it throws (the store may be away,
    /// the config not written yet, no subnet assigned yet).
    func acquire() async throws(LeaseError) -> AcquiredLease
    /// Renews, verifies and re-acquires until the task is cancelled.
    func run() async
    /// Our record may be gone (a store that went back, a watch that was away): check it now
    /// instead of at the next renewal.
    func recheck() async
    /// The store shows a change of our own record at `version` (an etcd revision): if newer than
    /// our last write, read it back and count the lease lost if it is no longer ours.
    func noticeOwnRecordChange(version: Int64) async
}

/// Follows the peers' leases into a route table until cancelled. A lease that moves gets a new
/// dataplane and with it a new watcher, so a watcher's own subnets never change.
public protocol PeerWatching: Sendable {
    func run() async
}

/// What a peer watcher tells the daemon, as it happens.
public struct PeerWatchEvents: Sendable {
    /// After each publish (route log, /v1/routes times, tests).
    public var published: @Sendable (RoutePublication) -> Void
    /// When the table stops or starts again being confirmed current.
    public var freshness: @Sendable (RouteFreshness) -> Void

    public init(
        published: @escaping @Sendable (RoutePublication) -> Void = { _ in },
        freshness: @escaping @Sendable (RouteFreshness) -> Void = { _ in }
    ) {
        self.published = published
        self.freshness = freshness
    }
}

/// Whether the route table can be taken as the store's current view.
public enum RouteFreshness: Sendable, Equatable {
    /// At `version` (an etcd revision, a Kubernetes resourceVersion).
    case confirmed(revision: Int64)
    /// Since the first failure of an episode; `reason` is that failure.
    case unconfirmed(reason: String)
}

/// One route-table publish, as a peer watcher tells it.
public struct RoutePublication: Sendable, Equatable {
    public var generation: UInt64
    /// The store's version the table reflects.
    public var revision: Int64
    public var routes: [Route]
    /// The peers' IPv6 halves (`PeerTable.ipv6Peers`); empty when the network has no IPv6.
    public var ipv6Peers: [IPv6Peer]
    /// The watcher's clock right after the publish.
    public var publishedAt: Duration

    public init(
        generation: UInt64,
        revision: Int64,
        routes: [Route],
        ipv6Peers: [IPv6Peer] = [],
        publishedAt: Duration
    ) {
        self.generation = generation
        self.revision = revision
        self.routes = routes
        self.ipv6Peers = ipv6Peers
        self.publishedAt = publishedAt
    }
}
