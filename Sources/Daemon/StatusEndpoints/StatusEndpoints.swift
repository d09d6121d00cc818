import Status

/// What the status endpoints (/metrics, /v1/routes, /v1/stats) read, on the TCP health server and
/// on the Unix socket alike.
public protocol StatusEndpoints: Sendable {
    /// nil while weftd has no dataplane (waiting for etcd, the config or a lease).
    func routes() -> RoutesReport?
    func stats() -> StatsReport?
    /// Prometheus text format 0.0.4.
    func metrics() -> String
}
