import CoreMetrics

/// The control plane's counters, through swift-metrics: the backend the executable bootstraps
/// (weftd: Prometheus, on /metrics) receives them; without one they cost nothing.
public enum ControlPlaneMetrics {
    /// Lease renewals that etcd accepted.
    public static func leaseRenewals() -> Counter { Counter(label: "weft_lease_renewals_total") }

    /// Failed etcd requests, by the part that made them: "lease" (acquire, renew, verify),
    /// "watch" (the peer watcher's list and watch), "config" (reading the network config).
    public static func etcdErrors(_ source: String) -> Counter {
        Counter(label: "weft_etcd_errors_total", dimensions: [("source", source)])
    }

    /// 1 while the peer watcher's table is confirmed current (an answering watch), 0 while not.
    public static func routeTableConfirmed() -> Gauge { Gauge(label: "weft_route_table_confirmed") }

    /// Episodes in which the route table could not be confirmed current (each logged once).
    public static func routeTableUnconfirmedEpisodes() -> Counter {
        Counter(label: "weft_route_table_unconfirmed_episodes_total")
    }

    /// Times etcd's store was found to have gone back (lost data, restored from an older backup).
    public static func storeResets() -> Counter { Counter(label: "weft_etcd_store_resets_total") }
}
