import Prometheus
import Status
import Synchronization
import TrafficRules

/// weftd's /metrics: one Prometheus registry. The control plane's counters (lease renewals, etcd
/// errors) live in it through swift-metrics (weftd bootstraps the factory); the engine's counters
/// stay the workers' lock-free atomics and are copied in from the stats report at each scrape, so
/// nothing is added per packet. Counters carry `_total`; label sets are bounded by the drop
/// reasons and the network's subnets.
final class StatusMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    /// Scrapes on the TCP and the Unix-socket server may overlap: copying in and emitting is one step.
    private let scrape = Mutex<Scrape>(Scrape())

    private struct Scrape {
        /// The engine-info series last set, removed when its labels change (a rebuilt dataplane).
        var info: Gauge?
        var infoLabels: [String] = []
    }

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    /// Prometheus text format 0.0.4 for the registry after copying `routes` and `stats` in (nil
    /// before the first dataplane: the control plane's counters only), and the port filter's
    /// drops over each underlay (nil without a filter there).
    func render(
        routes: RoutesReport?,
        stats: StatsReport?,
        portFilter: PortFilterCounts? = nil,
        ipv6PortFilter: PortFilterCounts? = nil
    ) -> String {
        scrape.withLock { state in
            if let routes { record(routes) }
            if let stats { record(stats, into: &state) }
            if let portFilter {
                setCounter(registry.makeCounter(descriptor: Self.portFilterPackets), to: portFilter.packets)
                setCounter(registry.makeCounter(descriptor: Self.portFilterBytes), to: portFilter.bytes)
            }
            if let ipv6PortFilter {
                setCounter(registry.makeCounter(descriptor: Self.ipv6PortFilterPackets), to: ipv6PortFilter.packets)
                setCounter(registry.makeCounter(descriptor: Self.ipv6PortFilterBytes), to: ipv6PortFilter.bytes)
            }
            return registry.emitToString()
        }
    }

    private func record(_ routes: RoutesReport) {
        gauge(
            "weft_route_table",
            "generation",
            "Generation of the route table in use; increases with every table the peer watcher publishes"
        )
        .set(to: Double(routes.generation))
        gauge("weft_route_table_age", "seconds", "Seconds since the route table in use was published")
            .set(to: routes.ageSeconds)
        gauge("weft_routes", "", "Peer subnets in the route table in use").set(to: Double(routes.routes.count))
    }

    private func record(_ stats: StatsReport, into state: inout Scrape) {
        let labels = [stats.engine, stats.backend]
        if state.infoLabels != labels {
            if let old = state.info { registry.unregisterGauge(old) }
            let info = registry.makeGauge(
                descriptor: Self.engineInfo,
                labels: [("engine", stats.engine), ("backend", stats.backend)]
            )
            info.set(to: 1)
            state.info = info
            state.infoLabels = labels
        }
        gauge("weft_engine_workers", "", "Packet engine worker threads (0 for host-gw: the kernel forwards)").set(
            to: Double(stats.workers)
        )

        for (name, value) in stats.traffic {
            setCounter(
                registry.makeCounter(
                    descriptor: MetricNameDescriptor(
                        metricName: "weft_" + name,
                        unitName: "total",
                        helpText: "Engine counter \(name), summed over the workers since the dataplane started"
                    )
                ),
                to: value
            )
        }
        for (reason, value) in stats.drops {
            setCounter(registry.makeCounter(descriptor: Self.drops, labels: [("reason", reason)]), to: value)
        }
        for peer in stats.peers {
            for (direction, packets, bytes) in [
                ("sent", peer.sentPackets, peer.sentBytes), ("received", peer.receivedPackets, peer.receivedBytes),
            ] {
                let labels = [("peer", peer.publicIP), ("direction", direction)]
                setCounter(registry.makeCounter(descriptor: Self.peerPackets, labels: labels), to: packets)
                setCounter(registry.makeCounter(descriptor: Self.peerBytes, labels: labels), to: bytes)
            }
            if let pathMTU = peer.pathMTU {
                registry.makeGauge(descriptor: Self.peerPathMTU, labels: [("peer", peer.publicIP)]).set(
                    to: Double(pathMTU)
                )
            }
        }
    }

    static var engineInfo: MetricNameDescriptor {
        MetricNameDescriptor(
            metricName: "weft_engine",
            unitName: "info",
            helpText: "Always 1; the labels name the packet engine in use (uring, mmsg, kernel) and the backend"
        )
    }
    static var drops: MetricNameDescriptor {
        MetricNameDescriptor(
            metricName: "weft_drops",
            unitName: "total",
            helpText: "Packets the dataplane dropped, by reason"
        )
    }
    static var peerPackets: MetricNameDescriptor {
        MetricNameDescriptor(
            metricName: "weft_peer_packets",
            unitName: "total",
            helpText: "Datagrams exchanged with a peer (its PublicIP), by direction"
        )
    }
    static var peerPathMTU: MetricNameDescriptor {
        MetricNameDescriptor(
            metricName: "weft_peer_path_mtu",
            unitName: "bytes",
            helpText: "Path MTU to a peer learned from the kernel, where it is below the interface's"
        )
    }
    static var portFilterPackets: MetricNameDescriptor {
        MetricNameDescriptor(
            metricName: "weft_port_filter_dropped_packets",
            unitName: "total",
            helpText:
                "Datagrams to the backend's UDP port from a source that is not a peer's PublicIP, dropped by nftables before any socket (--port-filter)"
        )
    }
    static var portFilterBytes: MetricNameDescriptor {
        MetricNameDescriptor(
            metricName: "weft_port_filter_dropped_bytes",
            unitName: "total",
            helpText: "Bytes of the datagrams the port filter dropped, IP headers included (--port-filter)"
        )
    }
    static var ipv6PortFilterPackets: MetricNameDescriptor {
        MetricNameDescriptor(
            metricName: "weft_port_filter_ipv6_dropped_packets",
            unitName: "total",
            helpText:
                "Datagrams to the backend's UDP port over the IPv6 underlay from a source that is not a peer's PublicIPv6, dropped by nftables before flannel-v6.<VNI> (--port-filter)"
        )
    }
    static var ipv6PortFilterBytes: MetricNameDescriptor {
        MetricNameDescriptor(
            metricName: "weft_port_filter_ipv6_dropped_bytes",
            unitName: "total",
            helpText:
                "Bytes of the datagrams the port filter dropped over the IPv6 underlay, IPv6 headers included (--port-filter)"
        )
    }
    static var peerBytes: MetricNameDescriptor {
        MetricNameDescriptor(
            metricName: "weft_peer_bytes",
            unitName: "total",
            helpText: "Payload bytes exchanged with a peer (its PublicIP), by direction"
        )
    }

    private func gauge(_ name: String, _ unit: String, _ help: String) -> Gauge {
        registry.makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: unit, helpText: help))
    }

    /// A counter takes the engine's running total: reset and add, under the scrape lock.
    private func setCounter(_ counter: Counter, to value: UInt64) {
        counter.reset()
        counter.increment(by: Int64(clamping: value))
    }
}
