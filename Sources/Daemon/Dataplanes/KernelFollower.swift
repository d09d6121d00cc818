import Addressing
import ControlPlane
import Foundation
import Routes
import Status
import Synchronization

/// What both kernel dataplanes (host-gw, the kernel vxlan device) run: a peer watcher into a table
/// of their own, read only for /v1/routes since the kernel forwards from its own entries; each
/// publication reconciled by a `KernelKeeper`; the keeper's resync; the wait for the first reconcile.
/// The watcher and the resync run in `run`, as child tasks of whoever runs the dataplane.
final class KernelFollower<Held: KernelReconciling & ~Copyable>: Sendable {
    let keeper: KernelKeeper<Held>
    private let backend: Backend
    private let publisher: RouteTablePublisher
    private let publications: PublicationTimes
    /// A dual-stack lease's IPv6 side for /v1/routes; nil on an IPv4-only one.
    private let ipv6: IPv6Side?
    private let firstReconcile: FirstPublication
    private let watcher: any PeerWatching

    /// `firstReconcile` is the one `keeper` was made with and fires; `onRoutes` sees each
    /// publication before the keeper reconciles it.
    init(
        lease: AcquiredLease,
        backend: Backend,
        context: DaemonContext,
        subnets: any SubnetManager,
        leaseKeeper: any LeaseKeeper,
        keeper: KernelKeeper<Held>,
        firstReconcile: FirstPublication,
        onRoutes: @escaping @Sendable ([Route]) -> Void = { _ in }
    ) {
        let publisher = lease.emptyPublisher()
        let publications = PublicationTimes()
        let ipv6 = IPv6Side(lease, underlay: .ipv6)
        let watcher = PeerFollowing.watcher(
            for: lease,
            context: context,
            subnets: subnets,
            keeper: leaseKeeper,
            publisher: publisher,
            publications: publications,
            onPublication: { publication in
                onRoutes(publication.routes)
                ipv6?.record(publication.ipv6Peers)
                keeper.reconcile(publication.routes, ipv6: publication.ipv6Peers)
            }
        )
        self.keeper = keeper
        self.backend = backend
        self.publisher = publisher
        self.publications = publications
        self.ipv6 = ipv6
        self.firstReconcile = firstReconcile
        self.watcher = watcher
    }

    /// Watches the peers and resyncs until the calling task is cancelled; what the keeper put in
    /// the kernel stays then.
    func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.watcher.run() }
            group.addTask { await self.keeper.runResyncs() }
        }
    }

    /// Returns true once the first publication is in the kernel, false if the calling task was
    /// cancelled before that (SIGTERM while etcd is away, say).
    func awaitFirstReconcile() async -> Bool { await firstReconcile.wait() }

    /// `kernel` the dataplane's own entries; `direct` the subnets DirectRouting routes directly.
    func routesReport(
        at now: Date,
        kernel: RoutesReport.KernelEntries? = nil,
        direct: Set<IPv4Prefix>? = nil
    ) -> RoutesReport {
        DataplaneReports.routes(
            publisher,
            times: publications,
            backend: backend,
            dataplane: "kernel",
            kernel: kernel,
            direct: direct,
            ipv6: ipv6?.report,
            at: now
        )
    }

    /// No engine: the kernel forwards, and nothing in weftd sees a packet to count.
    func statsReport() -> StatsReport {
        let local = publisher.withCurrent { $0.localSubnet }
        return StatsReport(
            engine: "kernel",
            workers: 0,
            backend: backend.rawValue,
            localSubnet: local.map { "\($0)" } ?? "",
            traffic: [:],
            drops: [:],
            peers: []
        )
    }
}
