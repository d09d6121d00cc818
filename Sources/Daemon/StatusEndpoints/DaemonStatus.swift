import Foundation
import Metrics
import Prometheus
import Status
import Synchronization
import TrafficRules

/// What the status endpoints (/metrics, /v1/routes, /v1/stats) read, on the TCP health server and
/// on the Unix socket alike.
public protocol StatusEndpoints: Sendable {
    /// nil while weftd has no dataplane (waiting for etcd, the config or a lease).
    func routes() -> RoutesReport?
    func stats() -> StatsReport?
    /// Prometheus text format 0.0.4.
    func metrics() -> String
}

/// weftd's status: the dataplane running now (set by the run loop as dataplanes come and go) and
/// the Prometheus registry.
public final class DaemonStatus: StatusEndpoints {
    private let current = Mutex<(any LeaseDataplane)?>(nil)
    private let exporter: StatusMetrics
    /// Reads the port filter's drop counter from nft at each scrape (nil without a filter); set by `LeaseTrafficRules`.
    private let portFilterDrops = Mutex<(@Sendable () -> PortFilterCounts?)?>(nil)

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

    func countPortFilterDrops(_ read: @escaping @Sendable () -> PortFilterCounts?) {
        portFilterDrops.withLock { $0 = read }
    }

    public func routes() -> RoutesReport? {
        current.withLock { $0 }?.routesReport(at: Date())
    }

    public func stats() -> StatsReport? {
        guard var report = current.withLock({ $0 })?.statsReport() else { return nil }
        if let counts = portFilterDrops.withLock({ $0 })?() {
            report.portFilter = StatsReport.Dropped(packets: counts.packets, bytes: counts.bytes)
        }
        return report
    }

    public func metrics() -> String {
        let dataplane = current.withLock { $0 }
        let portFilter = portFilterDrops.withLock { $0 }?()
        return exporter.render(
            routes: dataplane?.routesReport(at: Date()),
            stats: dataplane?.statsReport(),
            portFilter: portFilter
        )
    }
}

/// When each route-table generation was published, for /v1/routes' age and the age gauge.
final class PublicationTimes: Sendable {
    private let last: Mutex<(generation: UInt64, at: Date)>

    /// Generation 0, the empty table a dataplane starts with, dates from `start`.
    init(start: Date = Date()) {
        last = Mutex((0, start))
    }

    func record(generation: UInt64, at date: Date = Date()) {
        last.withLock { $0 = (generation, date) }
    }

    /// When `generation` was published; a newer one than recorded is being published right now
    /// (the publisher swaps the table before the watcher's callback runs).
    func publishedAt(generation: UInt64, now: Date) -> Date {
        let recorded = last.withLock { $0 }
        return generation > recorded.generation ? now : recorded.at
    }
}
