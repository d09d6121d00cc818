import Foundation
import Metrics
import Prometheus
import Status
import Synchronization
import TrafficRules

/// weftd's status: the dataplane running now (set by the run loop as dataplanes come and go) and
/// the Prometheus registry.
public final class DaemonStatus: StatusEndpoints {
    private let current = Mutex<(any LeaseDataplane)?>(nil)
    private let exporter: StatusMetrics
    /// The port filter's drop counts as nft last gave them, at each resync and rules change, in
    /// `table ip weft` and `table ip6 weft` (each nil without a filter there): a scrape does not
    /// wait for nft. Set by `LeaseTrafficRules`.
    private let portFilterDrops = Mutex<(@Sendable () -> PortFilterDrops)?>(nil)

    typealias PortFilterDrops = (ipv4: PortFilterCounts?, ipv6: PortFilterCounts?)

    /// `registry` is the one swift-metrics reports into for this process (see `processRegistry`).
    public init(registry: PrometheusCollectorRegistry = DaemonStatus.processRegistry) {
        exporter = StatusMetrics(registry: registry)
    }

    /// The process's registry, made the swift-metrics backend on first use: the control plane's
    /// Counter(label:) values land in it. swift-metrics takes one bootstrap per process.
    public static let processRegistry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()

    func attach(_ dataplane: any LeaseDataplane) {
        current.withLock { $0 = dataplane }
    }

    func detach() {
        current.withLock { $0 = nil }
    }

    func countPortFilterDrops(_ read: @escaping @Sendable () -> PortFilterDrops) {
        portFilterDrops.withLock { $0 = read }
    }

    public func routes() -> RoutesReport? {
        current.withLock { $0 }?.routesReport(at: Date())
    }

    public func stats() -> StatsReport? {
        guard var report = current.withLock({ $0 })?.statsReport() else { return nil }
        let drops = portFilterDrops.withLock { $0 }?()
        report.portFilter = drops?.ipv4.map { StatsReport.Dropped(packets: $0.packets, bytes: $0.bytes) }
        report.portFilterIPv6 = drops?.ipv6.map { StatsReport.Dropped(packets: $0.packets, bytes: $0.bytes) }
        return report
    }

    public func metrics() -> String {
        let dataplane = current.withLock { $0 }
        let drops = portFilterDrops.withLock { $0 }?()
        return exporter.render(
            routes: dataplane?.routesReport(at: Date()),
            stats: dataplane?.statsReport(),
            portFilter: drops?.ipv4,
            ipv6PortFilter: drops?.ipv6
        )
    }
}
