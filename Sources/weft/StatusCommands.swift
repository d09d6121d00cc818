import ArgumentParser
import Foundation
import Status

/// Where a running weftd answers: its --status-socket, given directly or derived the way weftd
/// derives it from --subnet-file.
struct StatusSocketOptions: ParsableArguments {
    @Option(help: ArgumentHelp("weftd's --status-socket (default: \(StatusSocket.standardPath)).", valueName: "path"))
    var socket: String?

    @Option(
        name: .customLong("subnet-file"),
        help: ArgumentHelp(
            "weftd's --subnet-file; the socket is weftd.sock beside it, as weftd places it.",
            valueName: "path"
        )
    )
    var subnetFile: String?

    @Flag(help: "Print JSON (sorted keys) instead of a table.")
    var json = false

    func validate() throws {
        if socket != nil && subnetFile != nil {
            throw ValidationError("give --socket or --subnet-file, not both")
        }
    }

    var path: String {
        if let socket { return socket }
        if let subnetFile { return StatusSocket.defaultPath(subnetFile: subnetFile) }
        return StatusSocket.standardPath
    }

    var client: StatusClient { StatusClient(path: path) }

    /// Prints what `fetch` asks weftd for: as JSON with --json, else as `table` lays it out.
    func show<Report: Encodable>(
        _ fetch: (StatusClient) throws -> Report,
        _ table: (Report) -> String
    ) throws {
        let report = try fetch(client)
        print(json ? try JSONOutput.render(report) : table(report), terminator: "")
    }
}

struct RoutesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "routes",
        abstract: "Show the route table a running weftd forwards with.",
        discussion:
            "Each peer subnet with its public IP, port, backend and (vxlan) VTEP MAC and, with DirectRouting, whether it is routed directly or through VXLAN, the table's generation and age, the dataplane, and with the kernel vxlan dataplane the neighbour, FDB and route entries on its device."
    )

    @OptionGroup var options: StatusSocketOptions

    func run() throws {
        try reportingFailures { try options.show({ try $0.routes() }, Self.table) }
    }

    static func table(_ report: RoutesReport) -> String {
        let dataplane = report.dataplane.map { ", \($0) dataplane" } ?? ""
        // An IPv6-only lease's report has no IPv4 network; its routes are all in the IPv6 table.
        let local =
            report.network.isEmpty
            ? "no IPv4 overlay (IPv6-only)" : "local subnet \(report.localSubnet) in \(report.network)"
        var text =
            "generation \(report.generation), published \(report.publishedAt) (\(seconds(report.ageSeconds)) ago); "
            + "\(local), backend \(report.backend)\(dataplane)\n"
        if report.network.isEmpty {
            // Nothing to list before the IPv6 table.
        } else if report.routes.isEmpty {
            text += "no peers\n"
        } else {
            // ROUTE only with DirectRouting: "direct" (a kernel route via the PublicIP) or "vxlan".
            let directRouting = report.routes.contains { $0.direct != nil }
            var table = TextTable(
                ["SUBNET", "PUBLIC IP", "PORT", "BACKEND", "VTEP MAC"] + (directRouting ? ["ROUTE"] : [])
            )
            for route in report.routes {
                let row = [
                    route.subnet, route.publicIP, route.port.map { String($0) } ?? "-", route.backend,
                    route.vtepMAC ?? "-",
                ]
                table.append(row + (directRouting ? [route.direct == true ? "direct" : "vxlan"] : []))
            }
            text += table.render()
        }
        if let kernel = report.kernel { text += kernelTable(kernel) }
        if let ipv6 = report.ipv6 { text += ipv6Table(ipv6) }
        return text
    }

    /// A dual-stack lease's IPv6 side: our IPv6 subnet and each peer's, with where it is sent.
    static func ipv6Table(_ ipv6: RoutesReport.IPv6Routes) -> String {
        let text = "IPv6: local subnet \(ipv6.localSubnet) in \(ipv6.network)\n"
        guard !ipv6.routes.isEmpty else { return text + "no IPv6 peers\n" }
        var table = TextTable(["SUBNET", "VIA", "BACKEND", "VTEP MAC"])
        for route in ipv6.routes {
            table.append([
                route.subnet, route.publicIP == "-" ? "- (no PublicIPv6)" : route.publicIP, route.backend,
                route.vtepMAC ?? "-",
            ])
        }
        return text + table.render()
    }

    /// The kernel's entries on the vxlan device, in the shapes `ip neigh`, `bridge fdb` and `ip route` print.
    static func kernelTable(_ kernel: RoutesReport.KernelEntries) -> String {
        var text = "kernel entries on \(kernel.device):\n"
        if let error = kernel.error { return text + "  cannot read them: \(error)\n" }
        for (title, lines) in [("neighbours", kernel.neighbours), ("fdb", kernel.fdb), ("routes", kernel.routes)] {
            text += "  \(title) (\(lines.count)):\n"
            for line in lines { text += "    \(line)\n" }
        }
        if let direct = kernel.direct {
            text += "  direct routes, DirectRouting (\(direct.count)):\n"
            for line in direct { text += "    \(line)\n" }
        }
        if kernel.differences.isEmpty {
            text += "  in step with the lease table\n"
        } else {
            text += "  differences from the lease table (the next reconcile, within 10 s, changes them):\n"
            for line in kernel.differences { text += "    \(line)\n" }
        }
        return text
    }

    static func seconds(_ value: Double) -> String {
        value < 10 ? String(format: "%.1f s", value) : "\(Int(value)) s"
    }
}

struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Show what a running weftd's dataplane moved and dropped.",
        discussion: "Per-peer packets and bytes both ways, the engine's totals, drops by reason, and the engine in use."
    )

    @OptionGroup var options: StatusSocketOptions

    func run() throws {
        try reportingFailures { try options.show({ try $0.stats() }, Self.table) }
    }

    static func table(_ report: StatsReport) -> String {
        guard report.engine != "kernel" else {
            return
                "engine kernel (\(report.backend): the kernel forwards, weftd counts no packets), local subnet \(report.localSubnet)\n"
        }
        var text =
            "engine \(report.engine), \(report.workers) worker(s), backend \(report.backend), local subnet \(report.localSubnet)\n\n"
        if report.peers.isEmpty {
            text += "no peer traffic yet\n"
        } else {
            var peers = TextTable(
                ["PEER", "SUBNET", "SENT PACKETS", "SENT BYTES", "RECEIVED PACKETS", "RECEIVED BYTES"],
                alignments: [.left, .left, .right, .right, .right, .right]
            )
            for peer in report.peers {
                peers.append([
                    peer.publicIP, peer.subnet ?? "-", String(peer.sentPackets), String(peer.sentBytes),
                    String(peer.receivedPackets), String(peer.receivedBytes),
                ])
            }
            text += peers.render()
        }
        var traffic = TextTable(["COUNTER", "VALUE"], alignments: [.left, .right])
        for (name, value) in report.traffic.sorted(by: { $0.key < $1.key }) where value != 0 {
            traffic.append([name, String(value)])
        }
        text += "\n" + (traffic.isEmpty ? "no traffic\n" : traffic.render())
        var drops = TextTable(["DROP REASON", "PACKETS"], alignments: [.left, .right])
        for (reason, count) in report.drops.sorted(by: { $0.key < $1.key }) where count != 0 {
            drops.append([reason, String(count)])
        }
        text += "\n" + (drops.isEmpty ? "no drops\n" : drops.render())
        if let filtered = report.portFilter {
            // The kernel dataplane's flannel.<VNI> reads the port where the engine would.
            let reader = report.engine == "kernel" ? "the vxlan device" : "the engine"
            text +=
                "\nport filter: \(filtered.packets) packet(s), \(filtered.bytes) byte(s) from addresses holding no lease dropped before \(reader)\n"
        }
        if let filtered = report.portFilterIPv6 {
            text +=
                "port filter over IPv6: \(filtered.packets) packet(s), \(filtered.bytes) byte(s) from addresses holding no lease dropped before flannel-v6\n"
        }
        return text
    }
}
