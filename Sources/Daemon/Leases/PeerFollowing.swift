import ControlPlane
import Routes

/// The peer watcher a lease's dataplane runs, whatever moves the packets: the peers' leases into
/// `publisher`, changes of our own record told to the lease keeper, each publication's time kept
/// in `publications` before `onPublication` sees it, the peers' PublicIPs handed to the port
/// filter (`DaemonContext.peerAddresses`), and the table's freshness told to readiness.
enum PeerFollowing {
    static func watcher(
        for lease: AcquiredLease,
        context: DaemonContext,
        subnets: any SubnetManager,
        keeper: any LeaseKeeper,
        publisher: RouteTablePublisher,
        publications: PublicationTimes,
        onPublication: @escaping @Sendable (RoutePublication) -> Void
    ) -> any PeerWatching {
        subnets.peerWatcher(
            for: lease,
            keeper: keeper,
            publisher: publisher,
            log: Dataplane.logHandler(context.logger),
            events: PeerWatchEvents(
                published: { [peerAddresses = context.peerAddresses] in
                    publications.record(generation: $0.generation)
                    onPublication($0)
                    peerAddresses.publish($0.routes, ipv6: $0.ipv6Peers)
                },
                freshness: { [readiness = context.readiness] freshness in
                    switch freshness {
                    case .confirmed: readiness.routesConfirmed()
                    case .unconfirmed(let reason): readiness.routesUnconfirmed(reason)
                    }
                }
            )
        )
    }
}
