import Addressing

/// A received outer IPv4/UDP datagram taken apart: the fields replay and tests need, and views
/// into the frame's own bytes (nothing is copied).
public struct OuterDatagram {
    public var source: IPv4Address
    public var destination: IPv4Address
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    /// The UDP length field as sent (header included). A GSO super-frame carries the whole
    /// super-datagram's length here; split `payload` by the gso_size.
    public var udpLength: Int
    /// The outer IPv4 datagram: header through the end of its total length (or of the capture).
    public var ip: PacketBuffer
    /// UDP header and payload: what the UDP checksum covers.
    public var udp: PacketBuffer
    /// The UDP payload: the VXLAN header or, for the udp backend, the inner IPv4 packet.
    public var payload: PacketBuffer

    /// How far to trust the outer lengths.
    public enum Lengths: Sendable {
        /// The IPv4 total length bounds the datagram (bytes past it are Ethernet padding) and the
        /// UDP length bounds the payload.
        case strict
        /// For veth captures holding GSO/GRO super-frames: an IPv4 total length of 0 means "up to
        /// the captured end", and the payload runs to the end of the IP datagram whatever the UDP
        /// length says (at least the 8 bytes of UDP header must be there).
        case superFrames
    }

    public enum Parse {
        case datagram(OuterDatagram)
        case drop(DropReason)
    }

    /// Parses a captured frame. Drops: `.truncated` when a header is cut short, the IPv4
    /// reasons of `IPv4.validate`, `.badTotalLength` for a UDP length below 8, and
    /// `.notOurTraffic` for anything that is not unfragmented IPv4/UDP (ARP, IPv6, TCP, outer
    /// fragments — Weft does not reassemble).
    public static func parse(_ frame: PacketBuffer, link: LinkLayer, lengths: Lengths = .strict) -> Parse {
        var packet = frame
        if let offset = link.protocolOffset {
            guard packet.length >= link.headerLength else { return .drop(.truncated) }
            var etherType = packet.load16(offset)
            guard packet.consume(link.headerLength) else { return .drop(.truncated) }
            if etherType == EtherType.vlan {
                guard packet.length >= 4 else { return .drop(.truncated) }
                etherType = packet.load16(2)
                packet.consume(4)
            }
            guard etherType == EtherType.ipv4 else { return .drop(.notOurTraffic) }
        } else {
            guard packet.length >= 1 else { return .drop(.truncated) }
            guard packet[0] >> 4 != 6 else { return .drop(.notOurTraffic) }
        }

        switch IPv4.validate(packet) {
        case nil:
            IPv4.trim(&packet)
        case .badTotalLength? where lengths == .superFrames && packet.load16(2) == 0:
            // Every earlier check passed (validate goes in order): the datagram is what was captured.
            break
        case let reason?:
            return .drop(reason)
        }
        let header = IPv4Header(packet)
        guard header.protocol == IPProtocol.udp, !header.isFragment else { return .drop(.notOurTraffic) }

        var udp = packet
        udp.consume(header.headerLength)
        guard udp.length >= OuterHeaders.udpHeaderLength else { return .drop(.truncated) }
        let udpLength = Int(udp.load16(4))
        switch lengths {
        case .strict:
            guard udpLength >= OuterHeaders.udpHeaderLength else { return .drop(.badTotalLength) }
            guard udpLength <= udp.length else { return .drop(.truncated) }
            udp.length = udpLength
        case .superFrames:
            break
        }
        var payload = udp
        payload.consume(OuterHeaders.udpHeaderLength)
        return .datagram(
            OuterDatagram(
                source: header.source,
                destination: header.destination,
                sourcePort: udp.load16(0),
                destinationPort: udp.load16(2),
                udpLength: udpLength,
                ip: packet,
                udp: udp,
                payload: payload
            )
        )
    }

    /// The UDP checksum field is non-zero (zero means the sender computed none).
    public var hasChecksum: Bool { udp.load16(6) != 0 }

    /// The UDP checksum verifies over the pseudo-header, header and payload, or is absent. A frame
    /// captured on the sending host before checksum offload carries only the pseudo-header sum
    /// and fails here; so does a super-frame.
    public var hasValidChecksum: Bool {
        guard hasChecksum else { return true }
        let pseudo = InternetChecksum.pseudoHeaderSum(
            source: source.networkOrder,
            destination: destination.networkOrder,
            protocol: IPProtocol.udp,
            length: udp.length
        )
        return InternetChecksum.isValid(udp.start, count: udp.length, initial: pseudo)
    }
}
