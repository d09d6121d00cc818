import Foundation
import Status

extension Dataplane: LeaseDataplane {
    var mtu: Int { tunMTU }
    var summary: String {
        let routedDirectly = direct?.directSubnets.map { ", \($0.count) peer(s) routed directly" } ?? ""
        return
            "engine \(engine.kind?.rawValue ?? "stopped"), \(engine.configuration.workers) worker(s), \(engine.configuration.tunName) MTU \(tunMTU)\(routedDirectly)"
    }

    func routesReport(at now: Date) -> RoutesReport {
        DataplaneReports.routes(
            engine.publisher,
            times: publications,
            backend: backend,
            direct: direct?.directSubnets,
            ipv6: ipv6?.report,
            at: now
        )
    }

    func awaitFirstReconcile() async -> Bool { await firstPublication.wait() }

    func statsReport() -> StatsReport {
        DataplaneReports.stats(
            engine.counters.snapshot(),
            engine: engine.kind?.rawValue ?? "stopped",
            workers: engine.configuration.workers,
            backend: backend,
            publisher: engine.publisher
        )
    }
}
