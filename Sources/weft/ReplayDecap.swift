import Addressing
import ArgumentParser
import Capture
import Forwarding
import Foundation
import Packets
import Routes

struct ReplayDecap: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decap",
        abstract: "Captured underlay frames in, the inner IPv4 and IPv6 packets Weft would write to the TUN out.",
        discussion: """
            INPUT holds frames as tcpdump writes them on the underlay (EN10MB with or without an \
            802.1Q tag, RAW, LINUX_SLL, LINUX_SLL2), pcap or pcapng. Only IPv4/UDP to --port is \
            ours; everything else counts as not_our_traffic, except IPv6/UDP to --port (a \
            flannel-v6.<VNI> device's traffic, or the engine's over its IPv6 underlay): replay has no \
            IPv6 underlay, so those frames are counted on their own line and not replayed. Inner IPv6 packets over the IPv4 \
            underlay are replayed as the engine carries them, when a lease in ROUTES.json has an \
            IPv6 subnet (10.244.1.0-24&fc00:0:0:1::-64), or always without --routes. A UDP GSO \
            super-frame (several datagrams of one UDP_SEGMENT send, seen whole on a veth) is cut \
            into its datagrams: the first one's length, from its inner IPv4 total length or IPv6 \
            payload length, is the segment size. A tunnel TSO \
            frame from a kernel VXLAN device is one datagram and gives one large inner packet, as \
            the receiving flannel.1 shows it. The outer UDP checksum is not checked: captures taken \
            on the host carry offload's partial sums. OUTPUT (link type RAW) gets the inner packets, \
            with their frame's timestamp. With --routes, anti-spoofing applies: the sender must be \
            a lease's PublicIP and the inner source inside that lease's subnet. With --public-ip \
            too, so does the relay check: the inner destination must lie in our lease's subnet \
            (not_our_subnet); without it our subnet is unknown and any destination passes.
            """
    )

    @Option(help: "udp or vxlan.") var backend: Backend
    @Option(help: "Our VNI (vxlan). Default: our lease's, else 1.") var vni: UInt32?
    @Option(
        name: .customLong("vtep-mac"),
        help:
            "Our VTEP MAC (vxlan, required): inner frames to other MACs (except broadcast) are dropped, as flannel.1 drops them. Default with --routes and --public-ip: our lease's VtepMAC."
    )
    var vtepMAC: MACAddress?
    @Option(help: "Our UDP port. Default: 8472 (vxlan), 8285 (udp).") var port: UInt16?
    @Option(help: ArgumentHelp("Leases as in etcd, for anti-spoofing.", valueName: "ROUTES.json")) var routes: String?
    @Option(name: .customLong("public-ip"), help: "This host's public IP: frames to other addresses are not ours.")
    var publicIP: IPv4Address?
    @Option(help: "flannel's Network. Default: the smallest prefix covering every lease.") var network: IPv4Prefix?
    @Option(help: "Underlay frames (pcap or pcapng).") var input: String
    @Option(help: "Inner packets (pcap, link type RAW).") var output: String

    func run() throws {
        try reportingFailures { try replay() }
    }

    private func replay() throws {
        let port = self.port ?? (backend == .vxlan ? VXLAN.defaultPort : UDPBackend.defaultPort)
        let leases = try routes.map { path throws(LeaseFile.Failure) in try LeaseFile(path: path) }
        let ours = publicIP.flatMap { leases?.lease(publicIP: $0) }
        guard let mac = vtepMAC ?? ours?.vxlan?.vtepMAC ?? (backend == .udp ? MACAddress(0) : nil) else {
            throw CommandFailure(
                "vxlan decap needs our VTEP MAC: pass --vtep-mac (or --routes and --public-ip of a lease with a VtepMAC)"
            )
        }
        // Without --routes the table is empty and only decapsulation runs.
        let table = try ReplayRoutes(
            leases: leases ?? LeaseFile(leases: []),
            path: routes ?? "",
            backend: backend,
            port: port,
            network: network,
            localSubnet: ours?.subnet,
            localIPv6Subnet: ours?.ipv6Subnet
        )
        let antiSpoofing = leases != nil
        // Without our lease, 0.0.0.0/0 and ::/0 stand in for our subnets: the relay check passes
        // everything. Our lease without an IPv6 subnet admits no inner IPv6, as the engine.
        let forwarder = Forwarder(
            backend: backend,
            vni: vni ?? ours?.vxlan.map { UInt32($0.vni) } ?? 1,
            vtepMAC: mac,
            localSubnet: ours?.subnet ?? IPv4Prefix(.any, length: 0),
            ipv6Subnet: ours.map(\.ipv6Subnet) ?? IPv6Prefix(.any, length: 0)
        )

        var reader = try CaptureReader(path: input)
        guard let link = LinkLayer(linkType: Int(reader.linkType.rawValue)) else {
            throw CommandFailure(
                "cannot replay \(input): link type \(reader.linkType) (want EN10MB, RAW, LINUX_SLL or LINUX_SLL2)"
            )
        }
        let writer = try CaptureWriter(path: output, linkType: .raw)

        let buffer = ReplayBuffer()
        var summary = ReplaySummary()
        var framesIn: UInt64 = 0
        var superFrames: UInt64 = 0
        var datagrams: UInt64 = 0
        var packetsOut: UInt64 = 0
        var ipv6Underlay: UInt64 = 0
        while let captured = try reader.next() {
            framesIn += 1
            let frame = buffer.load(captured.bytes)
            let outer: OuterDatagram
            switch OuterDatagram.parse(frame, link: link, lengths: .superFrames) {
            case let .datagram(datagram):
                outer = datagram
            case .drop(.notOurTraffic) where IPv6Underlay.isTunnelFrame(frame, link: link, port: port):
                ipv6Underlay += 1
                continue
            case let .drop(reason):
                summary.drops.count(reason)
                continue
            }
            guard outer.destinationPort == port, publicIP == nil || outer.destination == publicIP else {
                summary.drops.count(.notOurTraffic)
                continue
            }
            let payload = outer.payload
            let segmentLength = SuperDatagram.segmentLength(payload, backend: backend)
            if segmentLength < payload.length { superFrames += 1 }
            var offset = 0
            repeat {
                var segment = PacketBuffer(
                    base: payload.base,
                    headroom: payload.headroom + offset,
                    length: min(segmentLength, payload.length - offset),
                    capacity: payload.capacity
                )
                offset += segmentLength
                datagrams += 1
                let verdict: ReceiveVerdict
                if antiSpoofing {
                    verdict = forwarder.fromWire(
                        &segment,
                        sender: outer.source,
                        table: table.snapshot.table,
                        ipv6Table: table.ipv6Table
                    )
                } else {
                    verdict = decapsulate(&segment, forwarder: forwarder).map { .drop($0) } ?? .deliver
                }
                switch verdict {
                case .deliver:
                    writer.write(segment.bytes, timestamp: captured.timestamp)
                    packetsOut += 1
                case let .drop(reason):
                    summary.drops.count(reason)
                }
            } while offset < payload.length
        }
        try writer.close()
        summary.lines = [
            ("frames in", framesIn), ("gso super-frames", superFrames), ("datagrams", datagrams),
            ("packets out", packetsOut), ("ipv6 underlay (not replayed)", ipv6Underlay),
        ]
        print(summary.text, terminator: "")
        if ipv6Underlay > 0 {
            FileHandle.standardError.write(
                Data(
                    "weft: \(ipv6Underlay) frames of \(input) are UDP to port \(port) over an IPv6 underlay (a flannel-v6.<VNI> device's); replay has no IPv6 underlay (it writes IPv4 outer headers only), so they were counted, not replayed\n"
                        .utf8
                )
            )
        }
    }

    /// Decapsulation alone (no routes): inner IPv4, or inner IPv6 when IPv4's checks refuse the
    /// packet for its version (udp) or EtherType (vxlan), before changing it.
    private func decapsulate(_ packet: inout PacketBuffer, forwarder: Forwarder) -> DropReason? {
        let reason = forwarder.decapsulate(&packet)
        guard reason == (backend == .udp ? .wrongVersion : .notIPv4) else { return reason }
        return forwarder.ipv6Decapsulate(&packet)
    }
}

/// Frames a flannel-v6.<VNI> device sends: UDP to our port over an IPv6 underlay, which
/// `OuterDatagram` (IPv4 only, as the engine's sockets are) calls not_our_traffic.
enum IPv6Underlay {
    static func isTunnelFrame(_ frame: PacketBuffer, link: LinkLayer, port: UInt16) -> Bool {
        var packet = frame
        if let offset = link.protocolOffset {
            guard packet.length >= link.headerLength + 4 else { return false }
            var etherType = packet.load16(offset)
            packet.consume(link.headerLength)
            if etherType == EtherType.vlan {
                etherType = packet.load16(2)
                packet.consume(4)
            }
            guard etherType == EtherType.ipv6 else { return false }
        }
        // Only a UDP header right after the fixed header: flannel-v6 sends no extension headers.
        guard packet.length >= IPv6Header.length + OuterHeaders.udpHeaderLength, packet[0] >> 4 == 6,
            packet[6] == IPProtocol.udp
        else { return false }
        return packet.load16(IPv6Header.length + 2) == port
    }
}
