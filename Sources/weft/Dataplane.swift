import Addressing
import ArgumentParser
import Daemon
import Engine
import Foundation
import Netlink
import Packets
import Routes

/// `weft dataplane`: the engine alone, on a static route table, for benchmarks and tests. The
/// benchmark harness relies on its output: one `ready engine=<kind> workers=<n>` line on stdout
/// once packets flow, and after SIGTERM or SIGINT one JSON object of counters on stdout.
struct Dataplane: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the udp- or vxlan-backend dataplane on a static route table until SIGTERM or SIGINT.",
        discussion: """
            Creates the TUN (one queue per worker), gives it <subnet network>/32 and MTU \
            <underlay MTU> - 28 (udp) or - 50 (vxlan), routes --network into it, and moves packets \
            to and from the peers given by --peer. vxlan frames each packet as flannel.1 does \
            (VNI, inner Ethernet from --vtep-mac to the peer's VtepMAC), so kernel flannel nodes \
            are peers too. Prints `ready engine=<kind> workers=<n>` on stdout when \
            running; on SIGTERM or SIGINT stops, removes the TUN and prints the counters as one \
            JSON object on stdout: drops by reason, traffic, per-peer traffic. Log lines go to \
            standard error. With --vxlan-dataplane kernel the kernel's vxlan device moves the \
            packets instead: created and given each peer's neighbour, FDB entry and onlink route \
            as weftd does, `ready engine=kernel workers=0` once they are in place, and on the \
            signal the device is deleted and the report names its entries and counters. \
            With --ipv6-network and --ipv6-subnet the engine carries inner IPv6 too, over the same \
            IPv4 underlay: the TUN also gets <IPv6 subnet network>/128 and the IPv6 network, and \
            --ipv6-peer routes a peer's IPv6 subnet to its PublicIP (Weft's engine only). With \
            --backend vxlan and --public-ipv6, inner IPv6 crosses the IPv6 underlay instead, as \
            flannel's flannel-v6.<vni> carries it: each worker also binds [--public-ipv6]:port, \
            and a peer given as --ipv6-peer fc00:0:0:2::/64=198.18.0.2,[2001:db8::2],<its v6 \
            VtepMAC> is sent to over IPv6 (outer IPv6 + UDP, 70 bytes in all, so the IPv6 \
            network's route on the TUN gets MTU <underlay MTU> - 70); a peer without a bracketed \
            address is still reached over IPv4. The peer's IPv4 PublicIP names it in the counters.
            """
    )

    @Option(
        help:
            "Device name, the TUN's or the kernel vxlan device's (default: flannel's, as weftd names it: flannel0 for udp, flannel.<vni> for vxlan)."
    )
    var tun: String?
    @Option(help: "flannel's Network, routed into the TUN.") var network: IPv4Prefix
    @Option(help: "This host's subnet (lease).") var subnet: IPv4Prefix
    @Option(name: .customLong("public-ip"), help: "Address the UDP sockets bind: this host's PublicIP.")
    var publicIP: IPv4Address
    @Option(help: "udp or vxlan.") var backend: Backend = .udp
    @Option(help: "UDP port, ours and the peers' (default: 8285 for udp, 8472 for vxlan).") var port: UInt16?
    @Option(help: "vxlan: the VNI stamped on and required of every frame.") var vni: UInt32 = 1
    @Option(name: .customLong("vtep-mac"), help: "vxlan: this host's VtepMAC (as its lease publishes it).")
    var vtepMAC: MACAddress?
    @Option(
        name: .customLong("source-ports"),
        help: "vxlan: outer UDP source ports per worker, picked by inner flow (0: send from --port)."
    )
    var sourcePorts = EngineConfiguration.defaultSourcePortCount
    @Option(help: "uring, mmsg or auto (io_uring when available).") var engine: EngineConfiguration.Selection = .auto
    @Option(help: "Packets per batch (1: one packet per syscall, like flannel's udp proxy).") var batch = 64
    @Option(help: "Worker threads, each with its own TUN queue and socket.") var workers = 1
    @Option(
        help: ArgumentHelp(
            "A peer's subnet and PublicIP, and for vxlan its VtepMAC; repeat per peer.",
            valueName: "subnet=public-ip[,vtep-mac]"
        )
    )
    var peer: [PeerRoute<IPv4Prefix>] = []
    @Option(
        name: .customLong("ipv6-network"),
        help: "flannel's IPv6Network: the overlay carries inner IPv6 too, over the IPv4 underlay (engine only)."
    )
    var ipv6Network: IPv6Prefix?
    @Option(name: .customLong("ipv6-subnet"), help: "This host's IPv6 subnet (lease); needs --ipv6-network.")
    var ipv6Subnet: IPv6Prefix?
    @Option(
        name: .customLong("ipv6-peer"),
        help: ArgumentHelp(
            "A peer's IPv6 subnet and its (IPv4) PublicIP, for vxlan its VtepMAC, and with --public-ipv6 its PublicIPv6 in brackets (then the VtepMAC is its BackendV6Data one); repeat per peer.",
            valueName: "ipv6-subnet=public-ip[,[public-ipv6]][,vtep-mac]"
        )
    )
    var ipv6Peer: [PeerRoute<IPv6Prefix>] = []
    @Option(
        name: .customLong("public-ipv6"),
        help:
            "vxlan with --ipv6-network: this host's PublicIPv6; inner IPv6 crosses the IPv6 underlay to peers given one (flannel-v6)."
    )
    var publicIPv6: IPv6Address?
    @Option(
        name: .customLong("ipv6-vtep-mac"),
        help: "vxlan with --public-ipv6: this host's BackendV6Data VtepMAC (default: --vtep-mac)."
    )
    var ipv6VtepMAC: MACAddress?
    @Option(name: .customLong("underlay-mtu"), help: "MTU of the interface the datagrams leave by.")
    var underlayMTU = 1500
    @Flag(help: "TUN offloads + UDP GSO/GRO: 64 KB TCP super-packets in, one segmented send out (uring engine).")
    var offloads = false
    @Option(
        name: .customLong("vxlan-dataplane"),
        help:
            "vxlan: weft (Weft's engine on a TUN) or kernel (the kernel's vxlan device, programmed as weftd's default does; the engine options do not apply)."
    )
    var vxlanDataplane: DaemonOptions.VXLANDataplane = .weft
    @Option(
        name: .customLong("busy-poll"),
        help: ArgumentHelp(
            "How long each worker keeps polling after traffic before it sleeps (0: off).",
            valueName: "microseconds"
        )
    )
    var busyPoll = 0

    func run() throws {
        try reportingFailures {
            if vxlanDataplane == .kernel { try runKernelVXLAN() } else { try runEngine() }
        }
    }

    private func runEngine() throws {
        let configuration = try configuration()
        let routes = try self.routes(port: configuration.port)
        let ipv6Routes = try self.ipv6Routes(port: configuration.port)
        // Blocked before the workers exist so they inherit the mask and sigwait below gets the signal.
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGTERM)
        sigaddset(&signals, SIGINT)
        pthread_sigmask(SIG_BLOCK, &signals, nil)

        let log: Engine.Log = { line in FileHandle.standardError.write(Data("weft dataplane: \(line)\n".utf8)) }
        let dataplane = Engine(configuration: configuration, routes: routes, ipv6Routes: ipv6Routes, log: log)
        let kind = try dataplane.start()
        try configuration.link.configure(warn: log)
        FileHandle.standardOutput.write(Data("ready engine=\(kind.rawValue) workers=\(workers)\n".utf8))

        var received: Int32 = 0
        while sigwait(&signals, &received) != 0 {}
        dataplane.stop()
        let report = Self.report(
            dataplane.counters.snapshot(),
            kind: kind,
            workers: workers,
            failures: dataplane.workerFailures
        )
        FileHandle.standardOutput.write(report + Data("\n".utf8))
    }

    func configuration() throws -> EngineConfiguration {
        if backend == .vxlan, vtepMAC == nil {
            throw CommandFailure("--backend vxlan needs --vtep-mac: the MAC this host's lease publishes as VtepMAC")
        }
        if backend == .udp, vtepMAC != nil { throw CommandFailure("--vtep-mac is for --backend vxlan only") }
        switch (ipv6Network, ipv6Subnet) {
        case (.some, nil):
            throw CommandFailure("--ipv6-network needs --ipv6-subnet: this host's IPv6 lease, as fc00:0:0:1::/64")
        case (nil, .some):
            throw CommandFailure("--ipv6-subnet needs --ipv6-network: flannel's IPv6Network, as fc00::/48")
        case (nil, nil) where !ipv6Peer.isEmpty:
            throw CommandFailure("--ipv6-peer needs --ipv6-network and --ipv6-subnet: this host's IPv6 half")
        default: break
        }
        let defaultPort = backend == .vxlan ? VXLAN.defaultPort : UDPBackend.defaultPort
        return EngineConfiguration(
            tunName: tun ?? FlannelDevice.name(vxlan: backend == .vxlan, vni: vni),
            network: network,
            localSubnet: subnet,
            publicIP: publicIP,
            port: port ?? defaultPort,
            backend: backend,
            vni: vni,
            vtepMAC: vtepMAC ?? MACAddress(0),
            engine: engine,
            workers: workers,
            batchSize: batch,
            underlayMTU: underlayMTU,
            sourcePortCount: sourcePorts,
            offloads: offloads,
            busyPoll: .microseconds(busyPoll),
            ipv6Network: ipv6Network,
            ipv6Subnet: ipv6Subnet,
            publicIPv6: publicIPv6,
            ipv6VtepMAC: ipv6VtepMAC
        )
    }

    /// The static route table: every peer on `port`, with its VtepMAC for vxlan.
    func routes(port: UInt16) throws -> [Route] {
        try peer.map { peer in
            if let publicIPv6 = peer.publicIPv6 {
                throw CommandFailure(
                    "--peer \(peer.subnet): an IPv6 underlay address ([\(publicIPv6)]) is for --ipv6-peer"
                )
            }
            return Route(subnet: peer.subnet, nextHop: try nextHop(peer, flag: "--peer", port: port))
        }
    }

    /// The IPv6 routes: each peer's IPv6 subnet to its IPv4 PublicIP, as `routes`, and to its
    /// PublicIPv6 when one is given in brackets (vxlan's IPv6 underlay).
    func ipv6Routes(port: UInt16) throws -> [IPv6Route] {
        try ipv6Peer.map { peer in
            let hop = try nextHop(peer, flag: "--ipv6-peer", port: port)
            guard let publicIPv6 = peer.publicIPv6 else { return IPv6Route(subnet: peer.subnet, nextHop: hop) }
            guard backend == .vxlan else {
                throw CommandFailure(
                    "--ipv6-peer \(peer.subnet): an IPv6 underlay ([\(publicIPv6)]) is for --backend vxlan only"
                )
            }
            return IPv6Route(subnet: peer.subnet, nextHop: hop, publicIPv6: publicIPv6, vtepMAC: hop.vtepMAC)
        }
    }

    private func nextHop(_ peer: PeerRoute<some IPPrefix>, flag: String, port: UInt16) throws -> NextHop {
        switch (backend, peer.vtepMAC) {
        case (.vxlan, nil):
            throw CommandFailure(
                "\(flag) \(peer.subnet)=\(peer.publicIP): --backend vxlan needs the peer's VtepMAC "
                    + "(\(flag) \(peer.subnet)=\(peer.publicIP),aa:bb:cc:dd:ee:ff)"
            )
        case (.udp, .some(let mac)):
            throw CommandFailure(
                "\(flag) \(peer.subnet)=\(peer.publicIP),\(mac): a VtepMAC is for --backend vxlan only"
            )
        default:
            return NextHop(
                publicIP: peer.publicIP,
                port: port,
                vtepMAC: peer.vtepMAC ?? MACAddress(0),
                backend: backend
            )
        }
    }

    /// The counters as one JSON object, every reason and counter present (zeros included) so a
    /// reader can rely on the keys: {"engine", "workers", "drops": {reason: n}, "traffic":
    /// {counter: n}, "peers": {public IP: {sent_packets, sent_bytes, received_packets,
    /// received_bytes}}, "unattributed": {…}, "worker_failures": [message]}.
    static func report(_ statistics: EngineStatistics, kind: EngineKind, workers: Int, failures: [EngineError]) -> Data
    {
        func traffic(_ peer: PeerTraffic) -> [String: UInt64] {
            [
                "sent_packets": peer.sentPackets, "sent_bytes": peer.sentBytes,
                "received_packets": peer.receivedPackets, "received_bytes": peer.receivedBytes,
            ]
        }
        let object: [String: Any] = [
            "engine": kind.rawValue,
            "workers": workers,
            "drops": Dictionary(
                uniqueKeysWithValues: DropReason.allCases.map { ($0.description, statistics.drops[$0]) }
            ),
            "traffic": Dictionary(
                uniqueKeysWithValues: WorkerCounters.Traffic.allCases.map { ($0.description, statistics[$0]) }
            ),
            "peers": Dictionary(uniqueKeysWithValues: statistics.peers.map { ($0.key.description, traffic($0.value)) }),
            "unattributed": traffic(statistics.unattributed),
            "worker_failures": failures.map(\.description),
        ]
        // Only strings, integers, arrays and dictionaries: serialization cannot fail.
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
    }
}

/// `--peer 10.244.2.0/24=198.18.0.2` (udp) or `--peer 10.244.2.0/24=198.18.0.2,aa:bb:cc:dd:ee:ff`
/// (vxlan); `--ipv6-peer fc00:0:0:2::/64=198.18.0.2[,…]` the same with an IPv6 subnet, and
/// `--ipv6-peer fc00:0:0:2::/64=198.18.0.2,[2001:db8::2],aa:bb:cc:dd:ee:ff` with the peer's
/// PublicIPv6 (vxlan's IPv6 underlay).
struct PeerRoute<Subnet: IPPrefix>: ExpressibleByArgument {
    let subnet: Subnet
    let publicIP: IPv4Address
    let publicIPv6: IPv6Address?
    let vtepMAC: MACAddress?

    init?(argument: String) {
        let parts = argument.split(separator: "=", omittingEmptySubsequences: false)
        guard parts.count == 2, let subnet = Subnet(String(parts[0])) else { return nil }
        var target = parts[1].split(separator: ",", omittingEmptySubsequences: false)[...]
        guard target.count <= 3, let publicIP = IPv4Address(target.removeFirst()) else { return nil }
        if let bracketed = target.first, bracketed.hasPrefix("["), bracketed.hasSuffix("]") {
            guard let address = IPv6Address(bracketed.dropFirst().dropLast()) else { return nil }
            publicIPv6 = address
            target.removeFirst()
        } else {
            publicIPv6 = nil
        }
        guard target.count <= 1 else { return nil }
        if let text = target.first {
            guard let mac = MACAddress(text) else { return nil }
            vtepMAC = mac
        } else {
            vtepMAC = nil
        }
        self.subnet = subnet
        self.publicIP = publicIP
    }
}

extension EngineConfiguration.Selection: ExpressibleByArgument {}
extension DaemonOptions.VXLANDataplane: ExpressibleByArgument {}
