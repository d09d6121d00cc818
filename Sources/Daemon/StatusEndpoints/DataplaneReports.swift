import Addressing
import Engine
import Forwarding
import Foundation
import Packets
import Routes
import Status

/// /v1/routes and /v1/stats for each kind of dataplane, read from its route publisher and, with
/// an engine, the workers' counters (relaxed loads; nothing on the packet path changes).
enum DataplaneReports {
    /// `dataplane` is "weft" (the engine) or "kernel"; `kernel` the kernel dataplane's own entries;
    /// `direct` the subnets DirectRouting routes directly (nil when it is off). A table without a
    /// local subnet is an IPv6-only lease's, which has no IPv4 table to show: its network and local
    /// subnet are empty.
    static func routes(
        _ publisher: RouteTablePublisher,
        times: PublicationTimes,
        backend: Backend,
        dataplane: String = "weft",
        kernel: RoutesReport.KernelEntries? = nil,
        direct: Set<IPv4Prefix>? = nil,
        ipv6: RoutesReport.IPv6Routes? = nil,
        at now: Date
    ) -> RoutesReport {
        let (generation, network, local, entries) = publisher.withCurrent { table in
            (table.generation, table.network, table.localSubnet, table.routes.map { entry($0, direct: direct) })
        }
        let publishedAt = times.publishedAt(generation: generation, now: now)
        return RoutesReport(
            generation: generation,
            publishedAt: timestamp(publishedAt),
            ageSeconds: max(0, now.timeIntervalSince(publishedAt)),
            network: local == nil ? "" : "\(network)",
            localSubnet: local.map { "\($0)" } ?? "",
            backend: backend.rawValue,
            dataplane: dataplane,
            routes: entries.sorted { $0.sortKey < $1.sortKey }.map(\.entry),
            kernel: kernel,
            ipv6: ipv6
        )
    }

    private static func entry(_ route: Route, direct: Set<IPv4Prefix>?) -> (sortKey: UInt32, entry: RoutesReport.Entry)
    {
        let hop = route.nextHop
        return (
            route.subnet.network.value,
            RoutesReport.Entry(
                subnet: "\(route.subnet)",
                publicIP: "\(hop.publicIP)",
                port: hop.backend == .hostGateway ? nil : hop.port,
                backend: hop.backend.rawValue,
                vtepMAC: hop.backend == .vxlan ? "\(hop.vtepMAC)" : nil,
                direct: direct.map { $0.contains(route.subnet) }
            )
        )
    }

    /// The engine's totals; each peer named by its PublicIP and, while it holds a lease, its subnet.
    static func stats(
        _ statistics: EngineStatistics,
        engine: String,
        workers: Int,
        backend: Backend,
        publisher: RouteTablePublisher
    ) -> StatsReport {
        let (local, subnets) = publisher.withCurrent { table -> (IPv4Prefix?, [IPv4Address: IPv4Prefix]) in
            var subnets: [IPv4Address: IPv4Prefix] = [:]
            for route in table.routes where subnets[route.nextHop.publicIP] == nil {
                subnets[route.nextHop.publicIP] = route.subnet
            }
            return (table.localSubnet, subnets)
        }
        var traffic: [String: UInt64] = [:]
        for counter in WorkerCounters.Traffic.allCases { traffic["\(counter)"] = statistics[counter] }
        var drops: [String: UInt64] = [:]
        for reason in DropReason.allCases { drops["\(reason)"] = statistics.drops[reason] }
        let peers = statistics.peers.keys.sorted().map { address in
            let traffic = statistics.peers[address]!
            return StatsReport.Peer(
                publicIP: "\(address)",
                subnet: subnets[address].map { "\($0)" },
                sentPackets: traffic.sentPackets,
                sentBytes: traffic.sentBytes,
                receivedPackets: traffic.receivedPackets,
                receivedBytes: traffic.receivedBytes,
                pathMTU: traffic.pathMTU > 0 ? traffic.pathMTU : nil
            )
        }
        return StatsReport(
            engine: engine,
            workers: workers,
            backend: backend.rawValue,
            localSubnet: local.map { "\($0)" } ?? "",
            traffic: traffic,
            drops: drops,
            peers: peers
        )
    }

    /// ISO 8601 in UTC with milliseconds, e.g. 2026-11-23T14:30:05.123Z.
    static func timestamp(_ date: Date) -> String {
        date.formatted(
            Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: TimeZone(identifier: "UTC")!)
        )
    }
}
