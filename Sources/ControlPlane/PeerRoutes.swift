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
    public private(set) var generation: UInt64 = 0

    public init(config: NetworkConfig) {
        table = PeerTable(config: config)
    }

    /// Publishes a snapshot into `publisher` when the routes differ from the last ones published
    /// (or when `force`). Returns the publication, if one was made, and each skip reason whose
    /// count grew since the last call, for the watcher to log.
    public mutating func publishIfChanged(
        to publisher: RouteTablePublisher,
        localSubnet: IPv4Prefix?,
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
        guard force || routes != published else { return (nil, grown) }
        generation += 1
        let network = table.config
        publisher.publish(
            RouteSnapshot(
                routes: routes,
                network: network.network,
                subnetLength: network.subnetLength,
                localSubnet: localSubnet,
                generation: generation
            )
        )
        published = routes
        return (RoutePublication(generation: generation, revision: revision, routes: routes, publishedAt: now()), grown)
    }
}
