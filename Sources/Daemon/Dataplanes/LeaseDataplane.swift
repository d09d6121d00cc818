import Addressing
import Config
import Foundation
import Status

/// What WeftdRunner starts for a lease and stops when the lease moves or weftd stops: the
/// user-space `Dataplane` (udp, vxlan), the kernel-routed `HostGatewayDataplane`, or the kernel's
/// vxlan device programmed by `KernelVXLANDataplane`.
protocol LeaseDataplane: AnyObject, Sendable {
    /// The lease's subnets the dataplane was built for.
    var leaseKey: LeaseKey { get }
    /// The network config the dataplane was built with.
    var config: NetworkConfig { get }
    /// What subnet.env announces as FLANNEL_MTU.
    var mtu: Int { get }
    /// The dataplane's part of the ready line.
    var summary: String { get }
    /// GET /v1/routes: the table in use, its generation and age at `now`.
    func routesReport(at now: Date) -> RoutesReport
    /// GET /v1/stats.
    func statsReport() -> StatsReport
    /// True once the peer watcher's first publication is in effect (in the kernel, or in the
    /// engine's tables), false if the calling task was cancelled first. A dataplane is ready only
    /// then: before it, a ready node would drop the traffic of peers it has not listed yet.
    func awaitFirstReconcile() async -> Bool
    /// The dataplane's services (its peer watcher, resyncs, health checks) until the calling task
    /// is cancelled: the runner runs them as child tasks of the dataplane's generation.
    func run() async
    /// Releases what the dataplane holds, once `run` has returned.
    func stop() async
}
