import Addressing
import Config
import Routes

/// The peer table and the last route table published from it: what every subnet manager's peer
/// watcher does between reading its store and handing the engine a snapshot.
public struct PeerRoutes: Sendable {
    /// Fed by the watcher (put, remove, replace).
    public var table: PeerTable
    /// Records currently skipped, by reason, as of the last `publishIfChanged`.
    public private(set) var skipped: [PeerSkipReason: Int] = [:]
    /// The routes of the last publish; nil before the first.
    public private(set) var published: [Route]?
    /// The IPv6 peers of the last publish.
    public private(set) var publishedIPv6: [IPv6Peer] = []
    public private(set) var generation: UInt64 = 0

    public init(config: NetworkConfig) {
        table = PeerTable(config: config)
    }

    /// Publishes a snapshot into `publisher` when the routes or the IPv6 peers differ from the
    /// last ones published (or when `force`). Returns the publication, if one was made, and each skip reason whose
    /// count grew since the last call, for the watcher to log.
    public mutating func publishIfChanged(
        to publisher: RouteTablePublisher,
        localSubnet: IPv4Prefix?,
        localIPv6Subnet: IPv6Prefix? = nil,
        revision: Int64,
        now: () -> Duration,
        force: Bool = false
    )
        -> (publication: RoutePublication?, newlySkipped: [(reason: PeerSkipReason, count: Int)])
    {
        let (routes, skippedNow) = table.routes(localSubnet: localSubnet)
        var grown: [(reason: PeerSkipReason, count: Int)] = []
        if skippedNow != skipped {
            for reason in PeerSkipReason.allCases {
                if let count = skippedNow[reason], count > skipped[reason] ?? 0 { grown.append((reason, count)) }
            }
            skipped = skippedNow
        }
        let ipv6Peers = table.config.ipv6 == nil ? [] : table.ipv6Peers(localSubnet: localIPv6Subnet)
        guard force || routes != published || ipv6Peers != publishedIPv6 else { return (nil, grown) }
        generation += 1
        publisher.publish(
            RouteSnapshot(routes: routes, config: table.config, localSubnet: localSubnet, generation: generation)
        )
        published = routes
        publishedIPv6 = ipv6Peers
        let publication = RoutePublication(
            generation: generation,
            revision: revision,
            routes: routes,
            ipv6Peers: ipv6Peers,
            publishedAt: now()
        )
        return (publication, grown)
    }
}

extension RouteSnapshotOf where Family == IPv4Routing {
    /// The IPv4 table of `config`'s network; an IPv6-only network's is empty (nothing is IPv4 there).
    public init(routes: [Route], config: NetworkConfig, localSubnet: IPv4Prefix? = nil, generation: UInt64 = 0) {
        let ipv4 = config.ipv4
        self.init(
            routes: ipv4 == nil ? [] : routes,
            network: ipv4?.network ?? IPv4Prefix(IPv4Address(0), length: 32),
            subnetLength: ipv4?.subnetLength ?? 32,
            localSubnet: localSubnet,
            generation: generation
        )
    }
}
