import Addressing
import ArgumentParser
import Engine
import Foundation
import Packets
import Routes

/// `weft dataplane`: the engine alone, on a static route table, for benchmarks and tests. The
/// benchmark harness relies on its output: one `ready engine=<kind> workers=<n>` line on stdout
/// once packets flow, and after SIGTERM or SIGINT one JSON object of counters on stdout.
struct Dataplane: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the udp-backend dataplane on a static route table until SIGTERM or SIGINT.",
        discussion: """
            Creates the TUN (one queue per worker), gives it <subnet network>/32 and MTU \
            <underlay MTU> - 28, routes --network into it, and moves packets to and from the \
            peers given by --peer. Prints `ready engine=<kind> workers=<n>` on stdout when \
            running; on SIGTERM or SIGINT stops, removes the TUN and prints the counters as one \
            JSON object on stdout: drops by reason, traffic, per-peer traffic. Log lines go to \
            standard error.
            """)

    @Option(help: "TUN device name.") var tun = "flannel0"
    @Option(help: "flannel's Network, routed into the TUN.") var network: IPv4Prefix
    @Option(help: "This host's subnet (lease).") var subnet: IPv4Prefix
    @Option(name: .customLong("public-ip"), help: "Address the UDP sockets bind: this host's PublicIP.")
    var publicIP: IPv4Address
    @Option(help: "UDP port, ours and the peers'.") var port: UInt16 = 8285
    @Option(help: "uring, mmsg or auto (io_uring when available).") var engine: EngineConfiguration.Selection = .auto
    @Option(help: "Packets per batch (1: one packet per syscall, like flannel's udp proxy).") var batch = 64
    @Option(help: "Worker threads, each with its own TUN queue and socket.") var workers = 1
    @Option(help: ArgumentHelp("A peer's subnet and PublicIP; repeat per peer.", valueName: "subnet=public-ip"))
    var peer: [PeerRoute] = []
    @Option(name: .customLong("underlay-mtu"), help: "MTU of the interface the datagrams leave by.")
    var underlayMTU = 1500
    @Flag(help: "TUN offloads + UDP GSO/GRO: 64 KB TCP super-packets in, one segmented send out (uring engine).")
    var offloads = false

    func run() throws {
        try reportingFailures { try runEngine() }
    }

    private func runEngine() throws {
        let configuration = EngineConfiguration(
            tunName: tun, network: network, localSubnet: subnet, publicIP: publicIP, port: port, engine: engine,
            workers: workers, batchSize: batch, underlayMTU: underlayMTU, offloads: offloads)
        let routes = peer.map {
            Route(subnet: $0.subnet, nextHop: NextHop(publicIP: $0.publicIP, port: port, backend: .udp))
        }
        // Blocked before the workers exist so they inherit the mask and sigwait below gets the signal.
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGTERM)
        sigaddset(&signals, SIGINT)
        pthread_sigmask(SIG_BLOCK, &signals, nil)

        let dataplane = Engine(configuration: configuration, routes: routes) { line in
            FileHandle.standardError.write(Data("weft dataplane: \(line)\n".utf8))
        }
        let kind = try dataplane.start()
        FileHandle.standardOutput.write(Data("ready engine=\(kind.rawValue) workers=\(workers)\n".utf8))

        var received: Int32 = 0
        while sigwait(&signals, &received) != 0 {}
        dataplane.stop()
        let report = Self.report(dataplane.counters.snapshot(), kind: kind, workers: workers,
                                 failures: dataplane.workerFailures)
        FileHandle.standardOutput.write(report + Data("\n".utf8))
    }

    /// The counters as one JSON object, every reason and counter present (zeros included) so a
    /// reader can rely on the keys: {"engine", "workers", "drops": {reason: n}, "traffic":
    /// {counter: n}, "peers": {public IP: {sent_packets, sent_bytes, received_packets,
    /// received_bytes}}, "unattributed": {…}, "worker_failures": [message]}.
    static func report(_ statistics: EngineStatistics, kind: EngineKind, workers: Int, failures: [EngineError]) -> Data {
        func traffic(_ peer: PeerTraffic) -> [String: UInt64] {
            ["sent_packets": peer.sentPackets, "sent_bytes": peer.sentBytes,
             "received_packets": peer.receivedPackets, "received_bytes": peer.receivedBytes]
        }
        let object: [String: Any] = [
            "engine": kind.rawValue,
            "workers": workers,
            "drops": Dictionary(uniqueKeysWithValues: DropReason.allCases.map { ($0.description, statistics.drops[$0]) }),
            "traffic": Dictionary(uniqueKeysWithValues: WorkerCounters.Traffic.allCases.map { ($0.description, statistics[$0]) }),
            "peers": Dictionary(uniqueKeysWithValues: statistics.peers.map { ($0.key.description, traffic($0.value)) }),
            "unattributed": traffic(statistics.unattributed),
            "worker_failures": failures.map(\.description),
        ]
        // Only strings, integers, arrays and dictionaries: serialization cannot fail.
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
    }
}

/// `--peer 10.244.2.0/24=198.18.0.2`.
struct PeerRoute: ExpressibleByArgument {
    let subnet: IPv4Prefix
    let publicIP: IPv4Address

    init?(argument: String) {
        let parts = argument.split(separator: "=", omittingEmptySubsequences: false)
        guard parts.count == 2, let subnet = IPv4Prefix(parts[0]), let publicIP = IPv4Address(parts[1]) else { return nil }
        self.subnet = subnet
        self.publicIP = publicIP
    }
}

extension EngineConfiguration.Selection: ExpressibleByArgument {}
