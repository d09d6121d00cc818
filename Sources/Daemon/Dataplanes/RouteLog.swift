import Addressing
import Logging
import Routes
import Synchronization

/// Logs each route the watcher adds or removes, one line each ("route added 10.244.7.0/24 via
/// 198.18.0.3:8285 udp"), so an operator (and the integration tests) can follow the table.
final class RouteLog: Sendable {
    private let logger: Logger
    private let known = Mutex<[IPv4Prefix: Route]>([:])

    init(logger: Logger) {
        self.logger = logger
    }

    /// Logs the difference between `routes` (a publish's whole table) and the previous table.
    func record(_ routes: [Route]) {
        var fresh: [IPv4Prefix: Route] = [:]
        for route in routes { fresh[route.subnet] = route }
        let (added, removed) = known.withLock { known -> ([Route], [Route]) in
            defer { known = fresh }
            let added = fresh.values.filter { known[$0.subnet] != $0 }
            let removed = known.values.filter { fresh[$0.subnet] == nil }
            return (added, removed)
        }
        for route in removed.sorted(by: { $0.subnet.network < $1.subnet.network }) {
            logger.info("route removed \(route.subnet) (was via \(route.nextHop.publicIP))")
        }
        for route in added.sorted(by: { $0.subnet.network < $1.subnet.network }) {
            logger.info(
                "route added \(route.subnet) via \(route.nextHop.publicIP):\(route.nextHop.port) \(route.nextHop.backend.rawValue)"
            )
        }
    }
}
