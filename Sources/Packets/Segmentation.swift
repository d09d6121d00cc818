/// Where `Segmentation.segment` put the segments in the output region: segment `i` starts at
/// `i * stride + gap` and is `segmentLength` bytes long, except the last, `lastSegmentLength`.
/// The `gap` bytes in front of each segment are left untouched for the caller's encapsulation
/// (22 bytes of VXLAN header + inner Ethernet, or 0 for the udp backend).
///
/// With the packed stride (`gap + segmentLength`), the region from offset 0 is a run of equal
/// UDP payloads (gap + segment) with only the last one shorter: exactly what one `sendmsg` with
/// UDP_SEGMENT = `stride` sends. A run longer than the kernel takes in one send is sent in groups
/// of `segmentsPerSend(...)` segments, each group starting at `k * stride`.
public struct SegmentLayout: Equatable, Hashable, Sendable {
    public let count: Int
    public let gap: Int
    public let stride: Int
    /// Length of every segment but the last (the last when there is only one).
    public let segmentLength: Int
    public let lastSegmentLength: Int

    @inlinable
    public init(count: Int, gap: Int, stride: Int, segmentLength: Int, lastSegmentLength: Int) {
        self.count = count
        self.gap = gap
        self.stride = stride
        self.segmentLength = segmentLength
        self.lastSegmentLength = lastSegmentLength
    }

    /// Offset in the output region of segment `index`'s first byte (its IP header).
    @inlinable public func offset(ofSegment index: Int) -> Int { index * stride + gap }

    @inlinable public func length(ofSegment index: Int) -> Int {
        index == count - 1 ? lastSegmentLength : segmentLength
    }

    /// Bytes of the output region used, from offset 0 to the end of the last segment.
    @inlinable public var byteCount: Int { (count - 1) * stride + gap + lastSegmentLength }

    /// True when every gap + segment but the last fills its stride exactly, as UDP_SEGMENT needs.
    @inlinable public var isPacked: Bool { count == 1 || stride == gap + segmentLength }

    /// How many segments one UDP_SEGMENT send may carry: at most `segmentLimit` datagrams
    /// (the kernel's UDP_MAX_SEGMENTS, 64 before Linux 6.11) and `payloadLimit` bytes of UDP payload
    /// in total (65,535 − 20 − 8 over IPv4).
    @inlinable
    public func segmentsPerSend(payloadLimit: Int = 65_507, segmentLimit: Int = 64) -> Int {
        stride > 0 ? max(1, min(segmentLimit, payloadLimit / stride)) : 1
    }
}

public enum SegmentationResult: Equatable, Hashable, Sendable {
    case segmented(SegmentLayout)
    case dropped(DropReason)
}

/// Software segmentation of the super-packets a TUN with IFF_VNET_HDR hands out (DESIGN.md §3),
/// into MTU-sized inner packets laid out for one UDP_SEGMENT send. Pure and allocation-free: the
/// output region is the caller's.
public enum Segmentation {
    /// Cuts the IPv4 packet `packet`, described by `header` (as read from the TUN), into segments
    /// written back to back into `output` (`capacity` bytes), each behind `gap` untouched bytes and
    /// `stride` bytes apart (default: packed, `gap + headers + gsoSize`). `output` must not overlap
    /// the packet.
    ///
    /// - TCPV4 (with or without the ECN bit): each segment gets the IP header with total length,
    ///   ID = original + i (wrapping) and a fresh header checksum; the TCP header with sequence =
    ///   original + i·MSS, FIN and PSH kept on the last segment only, CWR on the first only, and a
    ///   full checksum (pseudo-header + header + payload).
    /// - UDP_L4 (USO): the same IP fix-ups; each segment's UDP length and full checksum.
    /// - NONE: one segment, a copy of the packet; with NEEDS_CSUM its checksum is completed.
    ///   (`completeChecksum` does the same in place, without the copy.)
    ///
    /// `hdr_len` is checked against the headers but not used: Linux sets it to the linear length of
    /// its buffer, which can run past the headers into the payload.
    public static func segment(
        _ packet: PacketBuffer, header: VirtioNetHeader,
        into output: UnsafeMutableRawPointer, capacity: Int, gap: Int = 0, stride: Int? = nil
    ) -> SegmentationResult {
        precondition(gap >= 0 && capacity >= 0, "segment: gap \(gap) and capacity \(capacity) must not be negative")
        typealias F = GSOFields
        let bytes = UnsafeRawPointer(packet.start)
        if let reason = header.validate(packetLength: packet.length) { return .dropped(reason) }

        guard packet.length >= F.ipMinimumHeader else { return .dropped(.truncated) }
        let versionIHL = F.load8(bytes, F.ipVersionIHL)
        guard versionIHL >> 4 == 4 else { return .dropped(.wrongVersion) }
        let ipHeaderLength = Int(versionIHL & 0x0F) * 4
        guard ipHeaderLength >= F.ipMinimumHeader, ipHeaderLength <= packet.length else { return .dropped(.badIHL) }
        let totalLength = Int(F.load16(bytes, F.ipTotalLength))
        guard totalLength >= ipHeaderLength, totalLength <= packet.length else { return .dropped(.badTotalLength) }

        let isTCP: Bool
        switch header.gsoType.kind {
        case .none:
            return copySingle(bytes, totalLength: totalLength, header: header, into: output, capacity: capacity, gap: gap, stride: stride)
        case .tcpV4: isTCP = true
        case .udpL4: isTCP = false
        default: return .dropped(.badVirtioHeader)  // UFO and TCPv6 are not offloads of an IPv4 overlay.
        }
        guard F.load8(bytes, F.ipProtocol) == (isTCP ? F.protocolTCP : F.protocolUDP) else { return .dropped(.badVirtioHeader) }
        guard F.load16(bytes, F.ipFlagsFragment) & F.ipMoreFragmentsOrOffset == 0 else { return .dropped(.badVirtioHeader) }

        let transportHeaderLength: Int
        if isTCP {
            guard ipHeaderLength + F.tcpMinimumHeader <= totalLength else { return .dropped(.truncated) }
            transportHeaderLength = Int(F.load8(bytes, ipHeaderLength + F.tcpDataOffset) >> 4) * 4
            guard transportHeaderLength >= F.tcpMinimumHeader else { return .dropped(.badTCPHeader) }
            guard ipHeaderLength + transportHeaderLength <= totalLength else { return .dropped(.truncated) }
        } else {
            transportHeaderLength = F.udpHeader
            guard ipHeaderLength + transportHeaderLength <= totalLength else { return .dropped(.truncated) }
        }
        let headersLength = ipHeaderLength + transportHeaderLength
        guard Int(header.headerLength) >= headersLength, Int(header.headerLength) <= totalLength else {
            return .dropped(.badVirtioHeader)
        }
        if header.flags.contains(.needsChecksum) {
            guard Int(header.checksumStart) == ipHeaderLength,
                  Int(header.checksumOffset) == (isTCP ? F.tcpChecksum : F.udpChecksum)
            else { return .dropped(.badVirtioHeader) }
        }

        let segmentPayload = Int(header.gsoSize)
        let payloadLength = totalLength - headersLength
        let count = payloadLength == 0 ? 1 : (payloadLength + segmentPayload - 1) / segmentPayload
        let layout = SegmentLayout(
            count: count, gap: gap, stride: stride ?? gap + headersLength + segmentPayload,
            segmentLength: headersLength + min(segmentPayload, payloadLength),
            lastSegmentLength: headersLength + payloadLength - (count - 1) * segmentPayload)
        if count > 1 {
            guard layout.stride >= gap + layout.segmentLength else { return .dropped(.oversize) }
        }
        guard layout.byteCount <= capacity else { return .dropped(.oversize) }

        let identification = F.load16(bytes, F.ipIdentification)
        let sequence = isTCP ? F.load32(bytes, ipHeaderLength + F.tcpSequence) : 0
        let tcpFlags = isTCP ? F.load8(bytes, ipHeaderLength + F.tcpFlags) : 0
        for index in 0..<count {
            let segment = output + layout.offset(ofSegment: index)
            let length = layout.length(ofSegment: index)
            let transportLength = length - ipHeaderLength
            segment.copyMemory(from: bytes, byteCount: headersLength)
            (segment + headersLength).copyMemory(
                from: bytes + headersLength + index * segmentPayload, byteCount: length - headersLength)

            F.store16(segment, F.ipTotalLength, UInt16(length))
            F.store16(segment, F.ipIdentification, identification &+ UInt16(truncatingIfNeeded: index))
            F.refreshIPChecksum(segment, headerLength: ipHeaderLength)

            let transport = segment + ipHeaderLength
            let checksumField: Int
            if isTCP {
                var flags = tcpFlags
                if index != count - 1 { flags &= ~(F.tcpFIN | F.tcpPSH) }
                if index != 0 { flags &= ~F.tcpCWR }
                F.store32(transport, F.tcpSequence, sequence &+ UInt32(truncatingIfNeeded: index * segmentPayload))
                transport.storeBytes(of: flags, toByteOffset: F.tcpFlags, as: UInt8.self)
                checksumField = F.tcpChecksum
            } else {
                F.store16(transport, F.udpLength, UInt16(transportLength))
                checksumField = F.udpChecksum
            }
            F.storeChecksum(transport, checksumField, 0)
            let pseudo = F.pseudoHeaderSum(segment, protocol: isTCP ? F.protocolTCP : F.protocolUDP, length: transportLength)
            let checksum = InternetChecksum.checksum(transport, count: transportLength, initial: pseudo)
            // UDP sends 0 as "no checksum", so a computed 0 goes out as its equivalent 0xFFFF.
            F.storeChecksum(transport, checksumField, !isTCP && checksum == 0 ? 0xFFFF : checksum)
        }
        return .segmented(layout)
    }

    /// Completes, in place, the checksum a TUN left partial (NEEDS_CSUM): the field at
    /// `checksumStart + checksumOffset` holds the pseudo-header sum, and the region from
    /// `checksumStart` to the end of the packet is summed over it, as Linux's skb_checksum_help
    /// does (a result of 0 is stored as 0xFFFF). Nothing to do, and `nil`, without NEEDS_CSUM.
    public static func completeChecksum(_ packet: PacketBuffer, header: VirtioNetHeader) -> DropReason? {
        completeChecksum(packet.start, length: packet.length, header: header)
    }

    static func completeChecksum(_ bytes: UnsafeMutableRawPointer, length: Int, header: VirtioNetHeader) -> DropReason? {
        guard header.flags.contains(.needsChecksum) else { return nil }
        let start = Int(header.checksumStart)
        let field = start + Int(header.checksumOffset)
        guard start >= GSOFields.ipMinimumHeader, field + 2 <= length else { return .badVirtioHeader }
        let checksum = InternetChecksum.checksum(bytes + start, count: length - start)
        GSOFields.storeChecksum(bytes, field, checksum == 0 ? 0xFFFF : checksum)
        return nil
    }

    private static func copySingle(
        _ bytes: UnsafeRawPointer, totalLength: Int, header: VirtioNetHeader,
        into output: UnsafeMutableRawPointer, capacity: Int, gap: Int, stride: Int?
    ) -> SegmentationResult {
        let layout = SegmentLayout(
            count: 1, gap: gap, stride: stride ?? gap + totalLength, segmentLength: totalLength, lastSegmentLength: totalLength)
        guard layout.byteCount <= capacity else { return .dropped(.oversize) }
        let segment = output + gap
        segment.copyMemory(from: bytes, byteCount: totalLength)
        if let reason = completeChecksum(segment, length: totalLength, header: header) { return .dropped(reason) }
        return .segmented(layout)
    }
}
