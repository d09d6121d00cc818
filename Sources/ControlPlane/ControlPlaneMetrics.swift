import CoreMetrics

/// The control plane's counters, through swift-metrics: the backend the executable bootstraps
/// (weftd: Prometheus, on /metrics) receives them; without one they cost nothing.
enum ControlPlaneMetrics {
    /// Lease renewals that etcd accepted.
    static func leaseRenewals() -> Counter { Counter(label: "weft_lease_renewals_total") }

    /// Failed etcd requests, by the part that made them: "lease" (acquire, renew, verify),
    /// "watch" (the peer watcher's list and watch), "config" (reading the network config).
    static func etcdErrors(_ source: String) -> Counter {
        Counter(label: "weft_etcd_errors_total", dimensions: [("source", source)])
    }
}
