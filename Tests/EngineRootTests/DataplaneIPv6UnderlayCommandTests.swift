import Addressing
import Engine
import Foundation
import TestSupport
import TestThreads
import Testing

/// `weft dataplane --backend vxlan --public-ipv6`: inner IPv6 over the IPv6 underlay, to a kernel
/// vxlan device made as flanneld makes flannel-v6.1 (local 2001:db8::2, the peer's v6 VtepMAC in a
/// permanent neighbour and an FDB entry to its PublicIPv6, an onlink route). Containers ping over
/// IPv6 both ways; the kernel device, which has no IPv4 underlay, counts the traffic, so its outer
/// headers were IPv6. A stranger's datagram over the IPv6 underlay is dropped as unknown_sender.
@Suite(
    .ownThread,
    .weftDataplaneRuns,
    .serialized,
    .timeLimit(.minutes(1))
)
struct DataplaneIPv6UnderlayCommandTests {
    static let publicIPv6A = IPv6Address("2001:db8::1")!
    static let publicIPv6B = IPv6Address("2001:db8::2")!
    static let publicIPv6Stranger = IPv6Address("2001:db8::3")!
    static let macA6 = MACAddress("02:00:c6:12:06:01")!
    static let macB6 = MACAddress("02:00:c6:12:06:02")!

    static let engines = Engine.uringUnavailable == nil ? ["mmsg", "uring"] : ["mmsg"]

    @Test(arguments: engines)
    func containersPing6OverTheIPv6UnderlayWithAFlannelV6Device(engine: String) throws {
        try TwoHostBed.with { bed in
            try Self.prepare(bed)
            let processA = try Self.startDataplane(on: bed, engine: engine)
            defer { processA.stop() }
            #expect(processA.readLine(milliseconds: 20_000) == "ready engine=\(engine) workers=1")

            // The IPv6 network's route on the TUN carries the IPv6 underlay's MTU: 1500 − 70.
            let (_, route) = try TwoHostBed.execute(bed.hostA, ["ip", "-6", "route", "show", "dev", "flannel.1"])
            #expect(route.contains("fc00::/48") && route.contains("mtu 1430"), "\(route)")

            // A stranger on the IPv6 underlay sends a well-formed frame for A's v6 VTEP, inner
            // source in B's subnet: the engine drops it as a stranger's (sent before the pings,
            // so it is handled long before the report).
            let frame = vxlanFrame(
                Self.udp6Packet(from: TwoHostBed.ipv6ContainerB, to: TwoHostBed.ipv6ContainerA),
                destination: Self.macA6,
                source: Self.macB6,
                etherType: 0x86DD
            )
            try bed.stranger.enter {
                let socket = try UDPSocket(ipv6: Self.publicIPv6Stranger, port: 0, reusePort: false)
                _ = try frame.withUnsafeBytes { try socket.send($0, to: Self.publicIPv6A, port: 8472) }
            }

            let there = try ping(from: bed.containerA, TwoHostBed.ipv6ContainerB, count: 3)
            #expect(there.received == 3, "\(there.output)")
            let back = try ping(from: bed.containerB, TwoHostBed.ipv6ContainerA, count: 3)
            #expect(back.received == 3, "\(back.output)")

            // The kernel device moved 3 requests and 3 replies each way; it has only the IPv6 underlay.
            let (_, device) = try TwoHostBed.execute(bed.hostB, ["ip", "-s", "-d", "link", "show", "flannel-v6.1"])
            let traffic = Self.deviceCounters(device)
            #expect(traffic.rx >= 6 && traffic.tx >= 6, "\(device)")

            let report = try processA.stopAndReport()
            // 6 echo messages each way of 104 bytes (40 + 8 + 56), each framed with 22 bytes of
            // VXLAN and inner Ethernet, counted under B's IPv4 PublicIP.
            let peer = try #require((report["peers"] as? [String: [String: Int]])?["198.18.0.2"], "\(report)")
            #expect(peer["sent_packets"] == 6 && peer["received_packets"] == 6, "\(peer)")
            #expect(peer["sent_bytes"] == 6 * 126 && peer["received_bytes"] == 6 * 126, "\(peer)")
            let drops = try #require(report["drops"] as? [String: Int])
            #expect(drops["unknown_sender"] == 1, "\(drops)")
            #expect(drops["spoofed_source"] == 0 && drops["not_our_mac"] == 0, "\(drops)")
        }
    }

    /// With offloads, TCP crosses the IPv6 underlay both ways: host A's super-packets leave cut to
    /// the underlay's MTU − 70 in UDP_SEGMENT sends. To a kernel flannel-v6.1, whose datagrams come
    /// back one by one; to a second engine with offloads, whose UDP_SEGMENT sends reach A's IPv6
    /// socket coalesced by UDP_GRO and go to the TUN as super-packets again.
    @Test(
        .enabled(if: Engine.uringUnavailable == nil, "io_uring engine: \(Engine.uringUnavailable?.description ?? "")"),
        arguments: ["kernel", "engine"]
    )
    func tcpCrossesTheIPv6UnderlayWithOffloads(peer: String) throws {
        try TwoHostBed.with { bed in
            try Self.prepare(bed, flannelV6OnB: peer == "kernel")
            // The kernel device leaves the inner checksum to the NIC; over veth nothing finishes it
            // unless the veths do (which also keeps GSO sends from crossing them whole).
            if peer == "kernel" { try bed.finishChecksumsOnTheUnderlay() }
            let processA = try Self.startDataplane(on: bed, engine: "uring", extra: ["--offloads"])
            defer { processA.stop() }
            #expect(processA.readLine(milliseconds: 20_000) == "ready engine=uring workers=1")
            let processB =
                peer == "engine"
                ? try Self.startDataplane(on: bed, hostA: false, engine: "uring", extra: ["--offloads"]) : nil
            defer { processB?.stop() }
            if let processB { #expect(processB.readLine(milliseconds: 20_000) == "ready engine=uring workers=1") }
            // Captured at a modest rate (tshark reads the whole file), then measured at full speed.
            let capture = try UnderlayCapture(bed.hostA, device: "ul0")
            _ = try iperf3(
                from: bed.containerA,
                to: bed.containerB,
                address: TwoHostBed.ipv6ContainerB,
                seconds: 1,
                streams: 2,
                bitsPerSecondPerStream: "20M"
            )
            let frames = try capture.finish()
            let there = try iperf3(from: bed.containerA, to: bed.containerB, address: TwoHostBed.ipv6ContainerB)
            let back = try iperf3(from: bed.containerB, to: bed.containerA, address: TwoHostBed.ipv6ContainerA)
            // What A sent: outer IPv6 to B's PublicIPv6 (with a good outer checksum where the veths
            // compute it: to the kernel peer), and each inner TCP flow from one source port of the
            // pool (not the bound 8472), as the kernel device spreads them.
            let fromA = frames.filter { $0.outerIPv6Source == "\(Self.publicIPv6A)" }
            #expect(fromA.count > 100, "\(frames.count) frames, \(fromA.count) from A: \(frames.prefix(3))")
            #expect(fromA.allSatisfy { $0.outerIPv6Destination == "\(Self.publicIPv6B)" && $0.destinationPort == 8472 })
            if peer == "kernel" {
                #expect(fromA.allSatisfy { $0.checksumStatus == 1 }, "\(fromA.first { $0.checksumStatus != 1 } as Any)")
            }
            var portsByFlow: [String: Set<Int>] = [:]
            for frame in fromA {
                if let flow = frame.innerIPv6Flow, let port = frame.sourcePort {
                    portsByFlow[flow, default: []].insert(port)
                }
            }
            #expect(portsByFlow.count >= 2 && portsByFlow.values.allSatisfy { $0.count == 1 }, "\(portsByFlow)")
            #expect(!portsByFlow.values.contains([8472]), "\(portsByFlow)")
            #expect(there > 0 && back > 0)
            print(
                "TCP over the IPv6 underlay with offloads, peer \(peer): A→B \(there / 1e9) Gbit/s, B→A \(back / 1e9) Gbit/s"
            )
            let report = try processA.stopAndReport()
            let traffic = try #require(report["traffic"] as? [String: Int], "\(report)")
            // Super-packets in from the TUN; from an engine, UDP_GRO receives written as super-packets.
            #expect((traffic["tun_read_bytes"] ?? 0) > (traffic["tun_read_packets"] ?? 0) * 1500, "\(traffic)")
            if peer == "engine" {
                #expect((traffic["coalesced_segments"] ?? 0) > 0, "\(traffic)")
                #expect((traffic["tun_written_packets"] ?? 0) < (traffic["wire_received_packets"] ?? 0), "\(traffic)")
            }
            #expect(traffic["send_errors"] == 0, "\(traffic)")
            let drops = try #require(report["drops"] as? [String: Int])
            #expect(drops["unknown_sender"] == 0 && drops["spoofed_source"] == 0, "\(drops)")
            #expect(drops["oversize"] == 0 && drops["exceeds_path_mtu"] == 0, "\(drops)")
            let counted = try #require((report["peers"] as? [String: [String: Int]])?["198.18.0.2"], "\(report)")
            #expect((counted["sent_packets"] ?? 0) > 1000 && (counted["received_packets"] ?? 0) > 1000, "\(counted)")
        }
    }

    /// A path to B's PublicIPv6 narrower than the interface (a route MTU of 1400 on A): the
    /// IPv6 underlay learns no path MTU, and the kernel refuses UDP_SEGMENT sends whose datagrams
    /// exceed the route. A falls back to one datagram per send, which the kernel fragments, and
    /// TCP still crosses.
    @Test(
        .enabled(if: Engine.uringUnavailable == nil, "io_uring engine: \(Engine.uringUnavailable?.description ?? "")")
    )
    func aNarrowerIPv6PathFallsBackToSendsTheKernelFragments() throws {
        try TwoHostBed.with { bed in
            try Self.prepare(bed, flannelV6OnB: false)
            try TwoHostBed.mustRun(
                bed.hostA,
                ["ip", "-6", "route", "add", "\(Self.publicIPv6B)/128", "dev", "ul0", "mtu", "1400"]
            )
            let processA = try Self.startDataplane(on: bed, engine: "uring", extra: ["--offloads"])
            defer { processA.stop() }
            let processB = try Self.startDataplane(on: bed, hostA: false, engine: "uring", extra: ["--offloads"])
            defer { processB.stop() }
            #expect(processA.readLine(milliseconds: 20_000) == "ready engine=uring workers=1")
            #expect(processB.readLine(milliseconds: 20_000) == "ready engine=uring workers=1")
            let rate = try iperf3(from: bed.containerA, to: bed.containerB, address: TwoHostBed.ipv6ContainerB)
            #expect(rate > 0)
            let report = try processA.stopAndReport()
            let traffic = try #require(report["traffic"] as? [String: Int], "\(report)")
            #expect(traffic["segmentation_fallbacks"] == 1, "\(traffic)")
            let peer = try #require((report["peers"] as? [String: [String: Int]])?["198.18.0.2"], "\(report)")
            #expect((peer["sent_packets"] ?? 0) > 1000, "\(peer)")
        }
    }

    /// The hosts' IPv6 underlay (2001:db8::1, ::2, the stranger ::3 on ul0), IPv6 in the
    /// containers, and host B's flannel-v6.1 unless B runs an engine.
    static func prepare(_ bed: TwoHostBed, flannelV6OnB: Bool = true) throws {
        try bed.enableIPv6()
        try bed.useVXLANMTU()
        for (namespace, address) in [
            (bed.hostA, publicIPv6A), (bed.hostB, publicIPv6B), (bed.stranger, publicIPv6Stranger),
        ] {
            try TwoHostBed.sysctl(
                namespace,
                "net.ipv6.conf.all.disable_ipv6=0",
                "net.ipv6.conf.ul0.disable_ipv6=0",
                "net.ipv6.conf.ul0.accept_dad=0"
            )
            try TwoHostBed.mustRun(namespace, ["ip", "-6", "addr", "add", "\(address)/64", "dev", "ul0", "nodad"])
        }
        if flannelV6OnB { try makeFlannelV6(in: bed.hostB) }
    }

    /// `weft dataplane` on host A (or B), with the other host's IPv6 subnet behind its PublicIPv6.
    static func startDataplane(
        on bed: TwoHostBed,
        hostA: Bool = true,
        engine: String,
        extra: [String] = []
    ) throws -> NamespaceProcess {
        let (n, other) = hostA ? (1, 2) : (2, 1)
        let (mac, otherMAC) = hostA ? (TwoHostBed.macA, TwoHostBed.macB) : (TwoHostBed.macB, TwoHostBed.macA)
        let (mac6, otherMAC6) = hostA ? (macA6, macB6) : (macB6, macA6)
        return try NamespaceProcess(
            hostA ? bed.hostA : bed.hostB,
            [
                weftExecutable!, "dataplane", "--engine", engine, "--backend", "vxlan", "--vni", "1",
                "--vtep-mac", "\(mac)", "--network", "10.244.0.0/16", "--subnet", "10.244.\(n).0/24",
                "--public-ip", "198.18.0.\(n)", "--peer", "10.244.\(other).0/24=198.18.0.\(other),\(otherMAC)",
                "--ipv6-network", "fc00::/48", "--ipv6-subnet", "fc00:0:0:\(n)::/64",
                "--public-ipv6", "2001:db8::\(n)", "--ipv6-vtep-mac", "\(mac6)",
                "--ipv6-peer", "fc00:0:0:\(other)::/64=198.18.0.\(other),[2001:db8::\(other)],\(otherMAC6)",
            ] + extra
        )
    }

    /// flanneld's flannel-v6.1 for B's lease fc00:0:0:2::/64 with A (fc00:0:0:1::/64 at 2001:db8::1) as peer.
    static func makeFlannelV6(in host: TestNamespace) throws {
        for command in [
            [
                "ip", "link", "add", "flannel-v6.1", "type", "vxlan", "id", "1", "local", "\(publicIPv6B)", "dev",
                "ul0",
                "dstport", "8472", "nolearning",
            ],
            ["ip", "link", "set", "flannel-v6.1", "address", "\(macB6)", "mtu", "1430"],
            ["ip", "link", "set", "flannel-v6.1", "up"],
            ["ip", "-6", "addr", "add", "fc00:0:0:2::/128", "dev", "flannel-v6.1", "nodad"],
            [
                "ip", "-6", "neigh", "add", "fc00:0:0:1::", "lladdr", "\(macA6)", "dev", "flannel-v6.1", "nud",
                "permanent",
            ],
            ["bridge", "fdb", "append", "\(macA6)", "dev", "flannel-v6.1", "dst", "\(publicIPv6A)"],
            ["ip", "-6", "route", "add", "fc00:0:0:1::/64", "via", "fc00:0:0:1::", "dev", "flannel-v6.1", "onlink"],
        ] {
            try TwoHostBed.mustRun(host, command)
        }
    }

    /// RX and TX packets from `ip -s link show`.
    static func deviceCounters(_ output: String) -> (rx: Int, tx: Int) {
        let lines = output.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        func packets(after header: String) -> Int {
            guard let index = lines.firstIndex(where: { $0.hasPrefix(header) }), index + 1 < lines.count else {
                return -1
            }
            return Int(lines[index + 1].split(separator: " ")[1]) ?? -1
        }
        return (packets(after: "RX:"), packets(after: "TX:"))
    }

    /// An IPv6/UDP packet (checksum left zero: the engine drops it before anything reads it).
    static func udp6Packet(from source: IPv6Address, to destination: IPv6Address) -> [UInt8] {
        func bytes(_ address: IPv6Address) -> [UInt8] {
            var raw = [UInt8](repeating: 0, count: 16)
            raw.withUnsafeMutableBytes { address.store(to: $0.baseAddress!) }
            return raw
        }
        let payload = Array("stranger".utf8)
        let length = 8 + payload.count
        return [0x60, 0, 0, 0, 0, UInt8(length), 17, 64] + bytes(source) + bytes(destination)
            + [0x9C, 0x40, 0x9C, 0x40, 0, UInt8(length), 0, 0] + payload
    }
}
