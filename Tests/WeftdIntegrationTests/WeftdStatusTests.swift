import Foundation
import Glibc
import Status
import TestSupport
import Testing

extension WeftdBeds {
    /// `weft routes` / `weft stats` and /metrics against three live weftd (udp backend, real etcd):
    /// one bed, traffic first, then every reading from host 1.
    @Suite(.serialized, .enabled(if: weftUnavailable == nil, "\(weftUnavailable ?? "")"))
    struct WeftdStatusTests {
        @Test(.timeLimit(.minutes(3)))
        func routesStatsAndMetricsShowTheLiveBed() throws {
            let bed = try Bed(hosts: 3)
            defer { bed.tearDown() }
            try bed.startEtcd()
            try bed.putConfig(Bed.udpConfig)
            let (daemons, subnets) = try bed.startReady([1, 2, 3])
            for index in 1...3 { try bed.addressContainer(index, subnet: subnets[index]!) }
            for other in [2, 3] {
                let line = "route added \(subnets[other]!) via \(bed.hostIP(other)):8285"
                #expect(
                    waitFor(WeftdBeds.hangGuard) { !daemons[1]!.lines(containing: line).isEmpty } != nil,
                    "weftd 1: \(line)"
                )
            }
            // Container 1 pings both others: host 1 sends to and hears from both peers.
            for other in [2, 3] {
                let result = bed.ping(from: 1, "\(Bed.split(subnets[other]!).0).2", count: 3)
                #expect(result.status == 0, "container 1 → container \(other): \(result.output)")
            }

            func weft(_ arguments: [String]) throws -> CommandResult {
                try bed.execResult(bed.host(1), [weftPath] + arguments + ["--socket", bed.statusSocket(1)])
            }

            let routesJSON = try weft(["routes", "--json"])
            try #require(routesJSON.status == 0, "\(routesJSON.output)")
            let routes = try JSONDecoder().decode(RoutesReport.self, from: Data(routesJSON.output.utf8))
            #expect(routes.localSubnet == subnets[1] && routes.backend == "udp" && routes.network == "10.244.0.0/16")
            #expect(routes.generation >= 1 && routes.ageSeconds >= 0)
            let peers = Dictionary(uniqueKeysWithValues: routes.routes.map { ($0.subnet, $0) })
            for other in [2, 3] {
                let route = peers[subnets[other]!]
                #expect(
                    route?.publicIP == bed.hostIP(other) && route?.port == 8285 && route?.backend == "udp",
                    "\(routes)"
                )
            }
            #expect(peers[subnets[1]!] == nil, "our own subnet is no route: \(routes)")

            let statsJSON = try weft(["stats", "--json"])
            try #require(statsJSON.status == 0, "\(statsJSON.output)")
            let stats = try JSONDecoder().decode(StatsReport.self, from: Data(statsJSON.output.utf8))
            #expect(
                ["uring", "mmsg"].contains(stats.engine) && stats.workers == 1 && stats.backend == "udp",
                "\(stats)"
            )
            for other in [2, 3] {
                let peer = stats.peers.first { $0.publicIP == bed.hostIP(other) }
                #expect(
                    peer?.subnet == subnets[other] && (peer?.sentPackets ?? 0) > 0 && (peer?.receivedPackets ?? 0) > 0,
                    "peer \(bed.hostIP(other)): \(stats.peers)"
                )
            }
            #expect((stats.traffic["wire_sent_packets"] ?? 0) > 0 && stats.drops["no_route"] != nil)

            // The human tables name the peers.
            let routesTable = try weft(["routes"])
            let statsTable = try weft(["stats"])
            #expect(routesTable.status == 0 && statsTable.status == 0)
            for other in [2, 3] {
                #expect(
                    routesTable.output.contains(subnets[other]!) && routesTable.output.contains(bed.hostIP(other)),
                    "\(routesTable.output)"
                )
                #expect(statsTable.output.contains(subnets[other]!), "\(statsTable.output)")
            }
            #expect(statsTable.output.contains("engine \(stats.engine), 1 worker(s)"), "\(statsTable.output)")
            print("weft routes (host 1):\n\(routesTable.output)weft stats (host 1):\n\(statsTable.output)")

            // The same socket derived from --subnet-file would collide in this bed (one directory for
            // all hosts), so the bed names it; a socket nobody serves gives weft's one line and status 1.
            let missing = "\(bed.directory)/nobody.sock"
            let absent = try bed.execResult(bed.host(1), [weftPath, "stats", "--socket", missing])
            #expect(absent.status == 1)
            #expect(
                absent.output
                    == "weft: cannot reach weftd at \(missing): No such file or directory; is weftd running? (its --status-socket)\n"
            )

            // /metrics on the health port: per-peer counts, lease renewals and etcd errors.
            let metrics = try bed.exec(
                bed.host(1),
                ["/usr/bin/curl", "-sf", "-m", "5", "http://127.0.0.1:8471/metrics"]
            )
            for other in [2, 3] {
                for direction in ["sent", "received"] {
                    let value = Self.sample(
                        metrics,
                        "weft_peer_packets_total",
                        "{peer=\"\(bed.hostIP(other))\",direction=\"\(direction)\"}"
                    )
                    #expect((value ?? 0) > 0, "\(direction) \(bed.hostIP(other)):\n\(metrics)")
                }
            }
            #expect(Self.sample(metrics, "weft_lease_renewals_total", "") != nil, "\(metrics)")
            #expect(Self.sample(metrics, "weft_etcd_errors_total", "{source=\"lease\"}") != nil, "\(metrics)")
            #expect((Self.sample(metrics, "weft_route_table_generation", "") ?? 0) >= 1, "\(metrics)")
            #expect(
                metrics.contains("# TYPE weft_drops_total counter")
                    && metrics.contains("# TYPE weft_route_table_age_seconds gauge")
            )
            #expect(
                Self.sample(metrics, "weft_engine_info", "{engine=\"\(stats.engine)\",backend=\"udp\"}") == 1,
                "\(metrics)"
            )

            // A clean stop removes the socket.
            #expect(daemons[1]!.stop() == 0)
            #expect(access(bed.statusSocket(1), F_OK) != 0, "weftd 1 left \(bed.statusSocket(1))")
        }

        /// The value of the sample `name` + `labels` (rendered as in the text format) in `text`.
        static func sample(_ text: String, _ name: String, _ labels: String) -> Double? {
            let prefix = name + labels + " "
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) else { return nil }
            return Double(line.dropFirst(prefix.count))
        }
    }
}
