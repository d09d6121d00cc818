import Addressing
import ArgumentParser
import Capture
import Forwarding
import Packets
import Routes

struct ReplayEncap: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encap",
        abstract: "Inner IPv4 and IPv6 packets in, the outer IPv4/UDP datagrams Weft would send out.",
        discussion: """
            INPUT holds inner IPv4 or IPv6 packets (link type RAW or EN10MB), as the TUN would hand \
            them to Weft; IPv6 ones go to the leases whose keys name an IPv6 subnet \
            (10.244.2.0-24&fc00:0:0:2::-64), over the same IPv4 underlay, and without one are \
            wrong_version. OUTPUT (link type RAW) gets one outer IPv4/UDP datagram per packet sent, from \
            --public-ip to the PublicIP of the lease that owns the inner destination, with the \
            input packet's timestamp. The outer IPv4 identification counts datagrams from 1, so \
            the same input always gives the same output. ROUTES.json maps flannel lease keys to \
            lease values as they sit in etcd; the lease whose PublicIP is --public-ip is ours.
            """
    )

    @Option(help: "udp or vxlan.") var backend: Backend
    @Option(
        help: ArgumentHelp("Leases as in etcd: {\"10.244.2.0-24\": {\"PublicIP\": ...}, ...}", valueName: "ROUTES.json")
    )
    var routes: String
    @Option(
        name: .customLong("public-ip"),
        help: "This host's public IP: the outer source, and the key to our own lease."
    )
    var publicIP: IPv4Address
    @Option(help: "VNI (vxlan). Default: our lease's, else 1.") var vni: UInt32?
    @Option(name: .customLong("vtep-mac"), help: "Our VTEP MAC (vxlan). Default: our lease's VtepMAC.")
    var vtepMAC: MACAddress?
    @Option(help: "Peers' UDP port. Default: 8472 (vxlan), 8285 (udp).") var port: UInt16?
    @Option(help: "flannel's Network. Default: the smallest prefix covering every lease.") var network: IPv4Prefix?
    @Option(help: "Inner packets (pcap or pcapng).") var input: String
    @Option(help: "Outer datagrams (pcap, link type RAW).") var output: String
    @Option(
        name: .customLong("tun-output"),
        help: "Also write the ICMP and ICMPv6 errors Weft would write back to the TUN."
    )
    var tunOutput: String?
    @Option(help: "The TUN's MTU: a longer inner IPv6 packet is answered with Packet Too Big. Default: no limit.")
    var mtu: Int?

    func run() throws {
        try reportingFailures { try replay() }
    }

    private func replay() throws {
        let leases = try LeaseFile(path: routes)
        guard let ours = leases.lease(publicIP: publicIP) else {
            throw CommandFailure(
                "--public-ip \(publicIP) owns no lease in \(routes): encap needs our lease for the TUN address"
            )
        }
        if let mtu, !(IPv6Header.minimumMTU...Int(UInt16.max)).contains(mtu) {
            throw CommandFailure("--mtu \(mtu) is outside 1280...65535 (IPv6's minimum MTU up to a whole datagram)")
        }
        let port = self.port ?? (backend == .vxlan ? VXLAN.defaultPort : UDPBackend.defaultPort)
        let mac = vtepMAC ?? ours.vxlan?.vtepMAC
        if backend == .vxlan && mac == nil {
            throw CommandFailure(
                "vxlan encap needs our VTEP MAC: pass --vtep-mac or give our lease a BackendData.VtepMAC"
            )
        }
        let table = try ReplayRoutes(
            leases: leases,
            path: routes,
            backend: backend,
            port: port,
            network: network,
            localSubnet: ours.subnet,
            localIPv6Subnet: ours.ipv6Subnet
        )
        let forwarder = Forwarder(
            backend: backend,
            vni: vni ?? ours.vxlan.map { UInt32($0.vni) } ?? 1,
            vtepMAC: mac ?? MACAddress(0),
            localSubnet: ours.subnet,
            ipv6Subnet: ours.ipv6Subnet,
            overlayMTU: mtu ?? Int(UInt16.max)
        )

        var reader = try CaptureReader(path: input)
        guard reader.linkType == .raw || reader.linkType == .ipv4 || reader.linkType == .ethernet else {
            throw CommandFailure(
                "cannot replay \(input): link type \(reader.linkType) (want RAW or EN10MB inner packets)"
            )
        }
        let writer = try CaptureWriter(path: output, linkType: .raw)
        let tunWriter = try tunOutput.map { path throws(CaptureError) in try CaptureWriter(path: path, linkType: .raw) }

        let buffer = ReplayBuffer()
        var summary = ReplaySummary()
        var packetsIn: UInt64 = 0
        var datagramsOut: UInt64 = 0
        var repliesToTUN: UInt64 = 0
        let isEthernet = reader.linkType == .ethernet
        while let captured = try reader.next() {
            packetsIn += 1
            var packet = buffer.load(captured.bytes)
            if isEthernet, let reason = InnerFrame.stripEthernet(&packet) {
                summary.drops.count(reason)
                continue
            }
            let sourcePort = backend == .vxlan ? VXLAN.sourcePort(forInner: packet) : port
            switch forwarder.fromTUN(&packet, table: table.snapshot.table, ipv6Table: table.ipv6Table) {
            case let .send(nextHop):
                let identification = UInt16(truncatingIfNeeded: datagramsOut + 1)
                guard
                    OuterHeaders.prepend(
                        &packet,
                        source: publicIP,
                        destination: nextHop.publicIP,
                        sourcePort: sourcePort,
                        destinationPort: nextHop.port,
                        identification: identification
                    )
                else {
                    summary.drops.count(.oversize)
                    continue
                }
                writer.write(packet.bytes, timestamp: captured.timestamp)
                datagramsOut += 1
            case .sendIPv6:
                // Not reached: replay writes IPv4 outer headers, and its forwarder has no IPv6 underlay.
                summary.drops.count(.noRoute)
            case let .replyToTUN(reason):
                summary.drops.count(reason)
                repliesToTUN += 1
                tunWriter?.write(packet.bytes, timestamp: captured.timestamp)
            case let .drop(reason):
                summary.drops.count(reason)
            }
        }
        try writer.close()
        try tunWriter?.close()
        summary.lines = [("packets in", packetsIn), ("datagrams out", datagramsOut), ("icmp to tun", repliesToTUN)]
        print(summary.text, terminator: "")
    }
}

/// Inner packets captured with an Ethernet header (tcpdump on a bridge or on flannel.1).
enum InnerFrame {
    /// Removes the Ethernet header (and one 802.1Q tag), or says why the frame holds no IPv4 or
    /// IPv6 packet.
    static func stripEthernet(_ packet: inout PacketBuffer) -> DropReason? {
        guard packet.length >= Ethernet.headerLength else { return .truncated }
        var etherType = packet.load16(12)
        packet.consume(Ethernet.headerLength)
        if etherType == EtherType.vlan {
            guard packet.length >= 4 else { return .truncated }
            etherType = packet.load16(2)
            packet.consume(4)
        }
        return etherType == EtherType.ipv4 || etherType == EtherType.ipv6 ? nil : .notIPv4
    }
}
