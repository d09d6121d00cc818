import ControlPlane
import Etcd
import Routes

extension PeerWatcher {
    /// The watcher a lease's dataplane runs, whatever moves the packets: the peers' leases under
    /// --etcd-prefix into `publisher`, changes of our own key told to the lease manager, and each
    /// publication's time kept in `publications` before `onRoutes` sees its routes.
    static func following(_ lease: AcquiredLease, context: DaemonContext, client: EtcdClient, manager: LeaseManager,
                          publisher: RouteTablePublisher, publications: PublicationTimes,
                          onRoutes: @escaping @Sendable ([Route]) -> Void) -> PeerWatcher {
        PeerWatcher(
            client: client,
            configuration: PeerWatcher.Configuration(network: lease.config, localSubnet: lease.subnet, prefix: context.options.etcdPrefix),
            publisher: publisher, log: Dataplane.logHandler(context.logger),
            onOwnKeyChange: { await manager.noticeOwnKeyChange(revision: $0) },
            onPublish: {
                publications.record(generation: $0.generation)
                onRoutes($0.routes)
            },
            onFreshness: { [readiness = context.readiness] freshness in
                switch freshness {
                case .confirmed: readiness.routesConfirmed()
                case .unconfirmed(let reason): readiness.routesUnconfirmed(reason)
                }
            },
            onRecheckLease: { await manager.recheck() })
    }
}
