import Addressing
import Engine
import Foundation
import Glibc
import Metrics
import Packets
import Prometheus
import Routes
import Status
import TestThreads
import Testing
import TrafficRules

@testable import Daemon

/// Fixed reports standing in for a dataplane, so the endpoints' rendering is checked exactly.
final class FixedStatus: StatusEndpoints {
    let routesReport: RoutesReport?
    let statsReport: StatsReport?
    let exporter = StatusMetrics(registry: PrometheusCollectorRegistry())

    init(routes: RoutesReport?, stats: StatsReport?) {
        routesReport = routes
        statsReport = stats
    }

    func routes() -> RoutesReport? { routesReport }
    func stats() -> StatsReport? { statsReport }
    func metrics() -> String { exporter.render(routes: routesReport, stats: statsReport) }

    static let sampleRoutes = RoutesReport(
        generation: 4,
        publishedAt: "2026-11-23T14:00:00.000Z",
        ageSeconds: 12.5,
        network: "10.244.0.0/16",
        localSubnet: "10.244.1.0/24",
        backend: "vxlan",
        routes: [
            RoutesReport.Entry(
                subnet: "10.244.2.0/24",
                publicIP: "198.18.0.2",
                port: 8472,
                backend: "vxlan",
                vtepMAC: "aa:bb:cc:dd:ee:02"
            ),
            RoutesReport.Entry(
                subnet: "10.244.3.0/24",
                publicIP: "198.18.0.3",
                port: 8472,
                backend: "vxlan",
                vtepMAC: "aa:bb:cc:dd:ee:03"
            ),
        ]
    )
    static let sampleStats = StatsReport(
        engine: "uring",
        workers: 2,
        backend: "vxlan",
        localSubnet: "10.244.1.0/24",
        traffic: ["tun_read_packets": 11, "wire_sent_bytes": 1400],
        drops: ["no_route": 3, "unknown_sender": 0],
        peers: [
            StatsReport.Peer(
                publicIP: "198.18.0.2",
                subnet: "10.244.2.0/24",
                sentPackets: 5,
                sentBytes: 700,
                receivedPackets: 6,
                receivedBytes: 800
            )
        ]
    )
}

/// Prometheus text: the value of the sample `name{labels}`, nil when absent.
func sample(_ text: String, _ name: String, _ labels: [(String, String)] = []) -> Double? {
    let rendered =
        labels.isEmpty ? name : name + "{" + labels.map { "\($0.0)=\"\($0.1)\"" }.joined(separator: ",") + "}"
    for line in text.split(separator: "\n") where line.hasPrefix(rendered + " ") {
        return Double(line.dropFirst(rendered.count + 1))
    }
    return nil
}

@Suite struct StatusRenderingTests {
    @Test func prometheusTextHasTheNamesTypesAndLabels() {
        let status = FixedStatus(routes: FixedStatus.sampleRoutes, stats: FixedStatus.sampleStats)
        let text = status.metrics()
        #expect(text.contains("# TYPE weft_drops_total counter\n"), "\(text)")
        #expect(sample(text, "weft_drops_total", [("reason", "no_route")]) == 3)
        #expect(sample(text, "weft_drops_total", [("reason", "unknown_sender")]) == 0)
        #expect(text.contains("# TYPE weft_tun_read_packets_total counter\n"))
        #expect(sample(text, "weft_tun_read_packets_total") == 11)
        #expect(sample(text, "weft_wire_sent_bytes_total") == 1400)
        #expect(text.contains("# TYPE weft_peer_packets_total counter\n"))
        #expect(sample(text, "weft_peer_packets_total", [("peer", "198.18.0.2"), ("direction", "sent")]) == 5)
        #expect(sample(text, "weft_peer_packets_total", [("peer", "198.18.0.2"), ("direction", "received")]) == 6)
        #expect(sample(text, "weft_peer_bytes_total", [("peer", "198.18.0.2"), ("direction", "received")]) == 800)
        #expect(text.contains("# TYPE weft_route_table_generation gauge\n"))
        #expect(sample(text, "weft_route_table_generation") == 4)
        #expect(sample(text, "weft_route_table_age_seconds") == 12.5)
        #expect(sample(text, "weft_routes") == 2)
        #expect(sample(text, "weft_engine_info", [("engine", "uring"), ("backend", "vxlan")]) == 1)
        #expect(sample(text, "weft_engine_workers") == 2)
        // Every sample line is `name[{labels}] value` under a TYPE line of its family.
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let name = String(line.prefix { $0 != "{" && $0 != " " })
            #expect(name.hasPrefix("weft_") && text.contains("# TYPE \(name) "), "\(line)")
        }
    }

    @Test func countersFollowTheEngineAndAChangedEngineReplacesTheInfoSeries() {
        let exporter = StatusMetrics(registry: PrometheusCollectorRegistry())
        var stats = FixedStatus.sampleStats
        _ = exporter.render(routes: nil, stats: stats)
        stats.drops["no_route"] = 9
        stats.engine = "mmsg"
        let text = exporter.render(routes: nil, stats: stats)
        #expect(sample(text, "weft_drops_total", [("reason", "no_route")]) == 9)
        #expect(sample(text, "weft_engine_info", [("engine", "mmsg"), ("backend", "vxlan")]) == 1)
        #expect(sample(text, "weft_engine_info", [("engine", "uring"), ("backend", "vxlan")]) == nil, "\(text)")
    }

    @Test func thePortFilterDropsAreCountersWithHelpAndFollowTheReading() {
        let exporter = StatusMetrics(registry: PrometheusCollectorRegistry())
        #expect(
            sample(exporter.render(routes: nil, stats: nil), "weft_port_filter_dropped_packets_total") == nil,
            "no filter, no series"
        )
        _ = exporter.render(routes: nil, stats: nil, portFilter: PortFilterCounts(packets: 3, bytes: 180))
        let text = exporter.render(routes: nil, stats: nil, portFilter: PortFilterCounts(packets: 10, bytes: 600))
        #expect(sample(text, "weft_port_filter_dropped_packets_total") == 10, "\(text)")
        #expect(sample(text, "weft_port_filter_dropped_bytes_total") == 600)
        #expect(text.contains("# TYPE weft_port_filter_dropped_packets_total counter\n"))
        #expect(
            text.contains(
                "# HELP weft_port_filter_dropped_packets_total Datagrams to the backend's UDP port from a source that is not a peer's PublicIP"
            )
        )
        #expect(text.contains("# HELP weft_port_filter_dropped_bytes_total "))
        #expect(sample(text, "weft_port_filter_ipv6_dropped_packets_total") == nil, "no IPv6 filter, no series")

        // The IPv6 underlay's filter (dual-stack kernel vxlan): its own series beside the IPv4 ones.
        let both = exporter.render(
            routes: nil,
            stats: nil,
            portFilter: PortFilterCounts(packets: 11, bytes: 660),
            ipv6PortFilter: PortFilterCounts(packets: 4, bytes: 400)
        )
        #expect(sample(both, "weft_port_filter_dropped_packets_total") == 11, "\(both)")
        #expect(sample(both, "weft_port_filter_ipv6_dropped_packets_total") == 4)
        #expect(sample(both, "weft_port_filter_ipv6_dropped_bytes_total") == 400)
        #expect(both.contains("# TYPE weft_port_filter_ipv6_dropped_packets_total counter\n"))
        #expect(both.contains("# HELP weft_port_filter_ipv6_dropped_bytes_total "))
    }

    @Test func controlPlaneCountersReachTheProcessRegistry() {
        // weftd's wiring: swift-metrics' Counter(label:) lands in the registry /metrics emits.
        let status = DaemonStatus()
        Counter(label: "weft_status_test_events_total", dimensions: [("source", "test")]).increment(by: 2)
        #expect(sample(status.metrics(), "weft_status_test_events_total", [("source", "test")]) == 2)
    }

    @Test func reportsRoundTripThroughJSON() throws {
        let encoder = JSONEncoder()
        let routes = try JSONDecoder().decode(RoutesReport.self, from: encoder.encode(FixedStatus.sampleRoutes))
        #expect(routes == FixedStatus.sampleRoutes)
        let stats = try JSONDecoder().decode(StatsReport.self, from: encoder.encode(FixedStatus.sampleStats))
        #expect(stats == FixedStatus.sampleStats)
        let text = String(decoding: try encoder.encode(FixedStatus.sampleRoutes.routes[0]), as: UTF8.self)
        #expect(
            text.contains(#""publicIP":"198.18.0.2""#) && text.contains(#""vtepMAC":"aa:bb:cc:dd:ee:02""#),
            "\(text)"
        )
    }

    @Test func reportsFromARealPublisherAndRealCounters() throws {
        let network = IPv4Prefix("10.244.0.0/16")!
        let local = IPv4Prefix("10.244.1.0/24")!
        let publisher = RouteTablePublisher(
            RouteSnapshot(routes: [], network: network, subnetLength: 24, localSubnet: local)
        )
        let times = PublicationTimes(start: Date(timeIntervalSinceNow: -30))
        let start = DataplaneReports.routes(publisher, times: times, backend: .vxlan, at: Date())
        #expect(start.generation == 0 && start.routes.isEmpty && start.ageSeconds >= 29, "\(start)")

        let far = Route(
            subnet: IPv4Prefix("10.244.9.0/24")!,
            nextHop: NextHop(
                publicIP: IPv4Address(198, 18, 0, 9),
                port: 8472,
                vtepMAC: MACAddress("aa:bb:cc:dd:ee:09")!,
                backend: .vxlan
            )
        )
        let near = Route(
            subnet: IPv4Prefix("10.244.2.0/24")!,
            nextHop: NextHop(
                publicIP: IPv4Address(198, 18, 0, 2),
                port: 8472,
                vtepMAC: MACAddress("aa:bb:cc:dd:ee:02")!,
                backend: .vxlan
            )
        )
        publisher.publish(
            RouteSnapshot(routes: [far, near], network: network, subnetLength: 24, localSubnet: local, generation: 1)
        )
        let now = Date()
        times.record(generation: 1, at: now.addingTimeInterval(-2))
        let routes = DataplaneReports.routes(publisher, times: times, backend: .vxlan, at: now)
        #expect(routes.generation == 1 && routes.localSubnet == "10.244.1.0/24" && routes.network == "10.244.0.0/16")
        #expect(abs(routes.ageSeconds - 2) < 0.01)
        #expect(routes.routes.map(\.subnet) == ["10.244.2.0/24", "10.244.9.0/24"])
        #expect(
            routes.routes[0]
                == RoutesReport.Entry(
                    subnet: "10.244.2.0/24",
                    publicIP: "198.18.0.2",
                    port: 8472,
                    backend: "vxlan",
                    vtepMAC: "aa:bb:cc:dd:ee:02"
                )
        )
        // With DirectRouting every entry says which way it goes; without it, none does.
        #expect(routes.routes.allSatisfy { $0.direct == nil })
        let direct = DataplaneReports.routes(
            publisher,
            times: times,
            backend: .vxlan,
            direct: [IPv4Prefix("10.244.2.0/24")!],
            at: now
        )
        #expect(direct.routes.map(\.direct) == [true, false])
        let json = String(decoding: try JSONEncoder().encode(direct.routes[0]), as: UTF8.self)
        #expect(json.contains(#""direct":true"#), "\(json)")

        let counters = EngineCounters(workerCount: 2)
        counters.workers[0].countSent(to: IPv4Address(198, 18, 0, 2), bytes: 100)
        counters.workers[1].countSent(to: IPv4Address(198, 18, 0, 2), bytes: 50, packets: 2)
        counters.workers[1].countReceived(from: IPv4Address(198, 18, 0, 7), bytes: 60)
        counters.workers[0].countDrop(.noRoute)
        counters.workers[1].countDrop(.notOurSubnet, by: 2)
        counters.workers[0].count(.tunReadPackets, by: 4)
        // Learned by both workers: the smaller one is the peer's.
        counters.workers[0].setPathMTU(1450, to: IPv4Address(198, 18, 0, 2))
        counters.workers[1].setPathMTU(1400, to: IPv4Address(198, 18, 0, 2))
        let stats = DataplaneReports.stats(
            counters.snapshot(),
            engine: "uring",
            workers: 2,
            backend: .vxlan,
            publisher: publisher
        )
        #expect(
            stats.peers == [
                StatsReport.Peer(
                    publicIP: "198.18.0.2",
                    subnet: "10.244.2.0/24",
                    sentPackets: 3,
                    sentBytes: 150,
                    receivedPackets: 0,
                    receivedBytes: 0,
                    pathMTU: 1400
                ),
                StatsReport.Peer(
                    publicIP: "198.18.0.7",
                    subnet: nil,
                    sentPackets: 0,
                    sentBytes: 0,
                    receivedPackets: 1,
                    receivedBytes: 60
                ),
            ]
        )
        let metrics = FixedStatus(routes: FixedStatus.sampleRoutes, stats: stats).metrics()
        #expect(sample(metrics, "weft_peer_path_mtu_bytes", [("peer", "198.18.0.2")]) == 1400)
        #expect(
            sample(metrics, "weft_peer_path_mtu_bytes", [("peer", "198.18.0.7")]) == nil,
            "no path MTU learned: no series"
        )
        #expect(stats.drops["no_route"] == 1 && stats.drops["ttl_expired"] == 0)
        #expect(
            Set(stats.drops.keys).isSuperset(of: ["truncated", "unknown_sender", "spoofed_source", "bad_tcp_header"])
        )
        // Every reason reaches /v1/stats and /metrics from DropReason itself, the last one added too.
        #expect(stats.drops.count == DropReason.allCases.count)
        #expect(stats.drops["not_our_subnet"] == 2)
        #expect(
            sample(
                FixedStatus(routes: FixedStatus.sampleRoutes, stats: stats).metrics(),
                "weft_drops_total",
                [("reason", "not_our_subnet")]
            ) == 2
        )
        #expect(stats.traffic["tun_read_packets"] == 4 && stats.traffic["wire_sent_packets"] == 0)
        #expect(stats.engine == "uring" && stats.workers == 2 && stats.localSubnet == "10.244.1.0/24")
    }

    @Test func statusSocketPathFollowsTheSubnetFile() throws {
        #expect(StatusSocket.defaultPath(subnetFile: "/run/flannel/subnet.env") == "/run/flannel/weftd.sock")
        #expect(StatusSocket.defaultPath(subnetFile: "/tmp/bed/subnet-1.env") == "/tmp/bed/weftd.sock")
        func path(_ arguments: [String], _ environment: [String: String] = [:]) throws -> String? {
            guard case .run(let options) = try DaemonOptions.parse(arguments: arguments, environment: environment)
            else { return "not run" }
            return options.statusSocketPath
        }
        #expect(try path([]) == "/run/flannel/weftd.sock")
        #expect(try path(["--subnet-file", "/tmp/a/subnet.env"]) == "/tmp/a/weftd.sock")
        #expect(try path(["-status-socket=/tmp/x.sock"]) == "/tmp/x.sock")
        #expect(try path(["--status-socket="]) == nil)
        #expect(try path([], ["FLANNELD_STATUS_SOCKET": "/tmp/env.sock"]) == "/tmp/env.sock")
    }
}

@Suite(.ownThread) struct StatusServerTests {
    static let loopback = IPv4Address(127, 0, 0, 1)

    static func temporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(
            "weft-status-\(getpid())-\(UUID().uuidString.prefix(8))"
        ).path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func tcpServesMetricsRoutesAndStats() throws {
        let status = FixedStatus(routes: FixedStatus.sampleRoutes, stats: FixedStatus.sampleStats)
        let server = try HealthServer(address: Self.loopback, port: 0, readiness: Readiness(), status: status)
        server.start()
        defer { server.stop() }

        let metrics = try TestSockets.get(port: server.port, "/metrics")
        #expect(metrics.status == 200 && metrics.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
        #expect(sample(metrics.body, "weft_drops_total", [("reason", "no_route")]) == 3)
        #expect(metrics.headers["content-length"] == String(metrics.body.utf8.count))

        let routes = try TestSockets.get(port: server.port, "/v1/routes")
        #expect(routes.status == 200 && routes.headers["content-type"] == "application/json")
        #expect(try JSONDecoder().decode(RoutesReport.self, from: Data(routes.body.utf8)) == FixedStatus.sampleRoutes)
        let stats = try TestSockets.get(port: server.port, "/v1/stats")
        #expect(try JSONDecoder().decode(StatsReport.self, from: Data(stats.body.utf8)) == FixedStatus.sampleStats)
        #expect(try TestSockets.get(port: server.port, "/v1/nothing").status == 404)
    }

    @Test func withoutADataplaneTheReportsAre503() throws {
        let readiness = Readiness()
        let server = try HealthServer(
            address: Self.loopback,
            port: 0,
            readiness: readiness,
            status: FixedStatus(routes: nil, stats: nil)
        )
        server.start()
        defer { server.stop() }
        let routes = try TestSockets.get(port: server.port, "/v1/routes")
        #expect(
            routes.status == 503 && routes.body.hasPrefix("weftd has no dataplane yet: waiting for the subnet lease"),
            "\(routes.body)"
        )
        #expect(try TestSockets.get(port: server.port, "/v1/stats").status == 503)
        #expect(try TestSockets.get(port: server.port, "/metrics").status == 200)
    }

    @Test func unixSocketServesTheClientWithMode0600AndGoesAwayOnStop() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/run/weftd.sock"  // the directory is made
        let status = FixedStatus(routes: FixedStatus.sampleRoutes, stats: FixedStatus.sampleStats)
        let server = try HealthServer(socketPath: path, readiness: Readiness(), status: status)
        server.start()

        var info = stat()
        #expect(stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFSOCK && info.st_mode & 0o777 == 0o600)
        let client = StatusClient(path: path)
        #expect(try client.routes() == FixedStatus.sampleRoutes)
        #expect(try client.stats() == FixedStatus.sampleStats)
        #expect(String(decoding: try client.get("/metrics"), as: UTF8.self).contains("weft_peer_packets_total"))

        // A live server's socket is not taken over.
        #expect {
            try HealthServer(socketPath: path, readiness: Readiness(), status: status)
        } throws: { "\($0)".contains("another weftd is serving there") }

        server.stop()
        #expect(access(path, F_OK) != 0, "the socket file outlived stop")
        #expect {
            try client.routes()
        } throws: { error in
            "\(error)"
                == "cannot reach weftd at \(path): No such file or directory; is weftd running? (its --status-socket)"
        }
    }

    @Test func aStaleSocketIsReplacedAndAPlainFileRefused() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/weftd.sock"
        // A crashed run's socket: bound, then closed without unlinking.
        let stale = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(stale, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        close(stale)
        try #require(bound == 0 && access(path, F_OK) == 0)
        #expect(throws: StatusClient.Failure.self) { try StatusClient(path: path).routes() }

        let server = try HealthServer(
            socketPath: path,
            readiness: Readiness(),
            status: FixedStatus(routes: FixedStatus.sampleRoutes, stats: nil)
        )
        server.start()
        #expect(try StatusClient(path: path).routes().generation == 4)
        server.stop()

        let plain = directory + "/not-a-socket"
        _ = FileManager.default.createFile(atPath: plain, contents: Data("keep me".utf8))
        #expect {
            try HealthServer(socketPath: plain, readiness: Readiness(), status: nil)
        } throws: { "\($0)".contains("exists and is not a socket") }
        #expect(try String(contentsOfFile: plain, encoding: .utf8) == "keep me")
    }
}
