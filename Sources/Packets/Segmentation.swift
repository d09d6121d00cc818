/// Where a segmenter put the segments in an output region: segment `i` starts at
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

/// Where `Segmentation.segmentHeaders` put a super-packet's segments: segment `i`'s headers (IP +
/// TCP/UDP, fixed up and checksummed) at `headerOffset(ofSegment: i)` of the output region behind
/// `gap` untouched bytes for the caller's encapsulation; its payload where it lies in the
/// super-packet, at `payloadOffset(ofSegment: i)`. Gathered in order (gap + headers, payload, gap +
/// headers, payload, …), the pieces are a run of equal UDP payloads of `datagramLength` bytes but
/// the last: what one `sendmsg` with UDP_SEGMENT = `datagramLength` sends, without copying a byte.
public struct GatheredSegments: Equatable, Hashable, Sendable {
    public let count: Int
    public let gap: Int
    public let headersLength: Int
    /// Payload bytes of every segment but the last (the last when there is only one).
    public let segmentPayload: Int
    public let lastPayload: Int

    @inlinable
    public init(count: Int, gap: Int, headersLength: Int, segmentPayload: Int, lastPayload: Int) {
        self.count = count
        self.gap = gap
        self.headersLength = headersLength
        self.segmentPayload = segmentPayload
        self.lastPayload = lastPayload
    }

    @inlinable public var headerStride: Int { gap + headersLength }
    /// Offset in the output region of segment `index`'s gap; its headers follow the gap.
    @inlinable public func headerOffset(ofSegment index: Int) -> Int { index * headerStride }
    /// Offset in the super-packet of segment `index`'s payload.
    @inlinable public func payloadOffset(ofSegment index: Int) -> Int { headersLength + index * segmentPayload }
    @inlinable public func payloadLength(ofSegment index: Int) -> Int {
        index == count - 1 ? lastPayload : segmentPayload
    }
    /// UDP payload of every datagram but the last: the UDP_SEGMENT size.
    @inlinable public var datagramLength: Int { gap + headersLength + segmentPayload }
    /// Bytes of the output region used.
    @inlinable public var headerBytes: Int { count * headerStride }

    /// How many segments one UDP_SEGMENT send may carry (see `SegmentLayout.segmentsPerSend`).
    @inlinable
    public func segmentsPerSend(payloadLimit: Int = 65_507, segmentLimit: Int = 64) -> Int {
        SegmentLayout(
            count: count,
            gap: gap,
            stride: datagramLength,
            segmentLength: headersLength + segmentPayload,
            lastSegmentLength: headersLength + lastPayload
        )
        .segmentsPerSend(payloadLimit: payloadLimit, segmentLimit: segmentLimit)
    }
}

public enum HeaderSegmentationResult: Equatable, Hashable, Sendable {
    case segmented(GatheredSegments)
    case dropped(DropReason)
}

/// Software segmentation of the super-packets a TUN with IFF_VNET_HDR hands out (DESIGN.md §3),
/// into MTU-sized inner packets laid out for one UDP_SEGMENT send. Pure and allocation-free: the
/// output region is the caller's.
public enum Segmentation {
    /// Cuts a super-packet without copying its payload: writes only each segment's headers into
    /// `output` (`capacity` bytes), behind `gap` untouched bytes, and checksums each over its
    /// payload where it lies in `packet`, which must stay as it is until the segments are sent.
    /// NONE is not a super-packet and is dropped as `badVirtioHeader`: send it as it is, after
    /// `completeChecksum`.
    ///
    /// TCP segments are cut to fit `innerMTU` (`PathFit.segmentPayload`) when the sender's MSS
    /// would not: a byte stream may be cut anywhere. UDP datagrams keep their size (each is a
    /// message); whether they fit is the caller's to check.
    ///
    /// IPv4 (TCPV4, UDP_L4) and IPv6 (TCPV6, UDP_L4) alike. An IPv6 super-packet with extension
    /// headers is dropped as `ipv6ExtensionHeaders` rather than segmented: a routing header would
    /// change the address the checksums cover, and Linux's own TCP and UDP send none unless an
    /// application asks for them (IPV6_RTHDR, IPV6_HOPOPTS).
    public static func segmentHeaders(
        _ packet: PacketBuffer,
        header: VirtioNetHeader,
        into output: UnsafeMutableRawPointer,
        capacity: Int,
        gap: Int = 0,
        innerMTU: Int = .max
    ) -> HeaderSegmentationResult {
        precondition(
            gap >= 0 && capacity >= 0,
            "segmentHeaders: gap \(gap) and capacity \(capacity) must not be negative"
        )
        var parsed: SuperPacket
        switch SuperPacket.parse(packet, header: header) {
        case .dropped(let reason): return .dropped(reason)
        case .single: return .dropped(.badVirtioHeader)
        case .superPacket(let superPacket): parsed = superPacket
        }
        if parsed.isTCP && innerMTU < parsed.headersLength + parsed.segmentPayload {
            guard
                let payload = PathFit.segmentPayload(
                    gsoSize: parsed.segmentPayload,
                    headersLength: parsed.headersLength,
                    innerMTU: innerMTU
                )
            else { return .dropped(.oversize) }
            parsed = parsed.cut(segmentPayload: payload)
        }
        let layout = GatheredSegments(
            count: parsed.count,
            gap: gap,
            headersLength: parsed.headersLength,
            segmentPayload: min(parsed.segmentPayload, parsed.payloadLength),
            lastPayload: parsed.lastPayload
        )
        guard layout.headerBytes <= capacity else { return .dropped(.oversize) }
        for index in 0..<parsed.count {
            let payload = UnsafeRawPointer(packet.start) + layout.payloadOffset(ofSegment: index)
            parsed.writeHeaders(
                ofSegment: index,
                to: output + layout.headerOffset(ofSegment: index) + gap,
                payload: payload,
                payloadLength: layout.payloadLength(ofSegment: index)
            )
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

    package static func completeChecksum(
        _ bytes: UnsafeMutableRawPointer,
        length: Int,
        header: VirtioNetHeader
    ) -> DropReason? {
        guard header.flags.contains(.needsChecksum) else { return nil }
        let start = Int(header.checksumStart)
        let field = start + Int(header.checksumOffset)
        guard start >= GSOFields.ipMinimumHeader, field + 2 <= length else { return .badVirtioHeader }
        let checksum = InternetChecksum.checksum(bytes + start, count: length - start)
        GSOFields.storeChecksum(bytes, field, checksum == 0 ? 0xFFFF : checksum)
        return nil
    }

}

/// A validated TCPV4, TCPV6 or UDP_L4 super-packet: what segmenting it needs. Package-visible for
/// the copying segmenter the benchmarks and tests compare against (Benchmarks/ReferencePaths).
package struct SuperPacket {
    typealias F = GSOFields
    package enum Parsed {
        case superPacket(SuperPacket)
        /// NONE: one packet, not to be segmented.
        case single
        case dropped(DropReason)
    }

    let bytes: UnsafeRawPointer
    package let isTCP: Bool
    let ip: CheckedIPHeader
    package let headersLength: Int
    package let segmentPayload: Int
    package let count: Int
    /// Behind a 40-byte IPv6 fixed header (no extension headers); IPv4 otherwise.
    package var isIPv6: Bool { ip.isIPv6 }
    var ipHeaderLength: Int { ip.headerLength }
    package var payloadLength: Int { ip.totalLength - headersLength }
    package var lastPayload: Int { payloadLength - (count - 1) * segmentPayload }

    init(bytes: UnsafeRawPointer, isTCP: Bool, ip: CheckedIPHeader, headersLength: Int, segmentPayload: Int) {
        self.bytes = bytes
        self.isTCP = isTCP
        self.ip = ip
        self.headersLength = headersLength
        self.segmentPayload = segmentPayload
        let payloadLength = ip.totalLength - headersLength
        count = payloadLength == 0 ? 1 : (payloadLength + segmentPayload - 1) / segmentPayload
    }

    /// The same packet cut into payloads of `segmentPayload` bytes (sequence numbers follow).
    func cut(segmentPayload: Int) -> SuperPacket {
        SuperPacket(bytes: bytes, isTCP: isTCP, ip: ip, headersLength: headersLength, segmentPayload: segmentPayload)
    }

    /// The super-packet `header` describes; nil for NONE (a single packet); the drop reason when
    /// the packet or the header is malformed.
    package static func parse(_ packet: PacketBuffer, header: VirtioNetHeader) -> Parsed {
        let bytes = UnsafeRawPointer(packet.start)
        if let reason = header.validate(packetLength: packet.length) { return .dropped(reason) }
        let ip: CheckedIPHeader
        switch CheckedIPHeader.read(packet) {
        case .dropped(let reason): return .dropped(reason)
        case .valid(let checked): ip = checked
        }

        let isTCP: Bool
        switch header.gsoType.kind {
        case .none: return .single
        case .tcpV4 where !ip.isIPv6, .tcpV6 where ip.isIPv6: isTCP = true
        case .udpL4: isTCP = false
        default: return .dropped(.badVirtioHeader)  // UFO, or TCP of the other IP version.
        }
        guard !(ip.isIPv6 && IPv6NextHeader.isExtensionHeader(ip.proto)) else {
            return .dropped(.ipv6ExtensionHeaders)
        }
        guard !ip.isFragment(bytes), ip.proto == (isTCP ? F.protocolTCP : F.protocolUDP) else {
            return .dropped(.badVirtioHeader)
        }

        let headersLength: Int
        switch ip.transportHeaderLength(bytes, isTCP: isTCP) {
        case .dropped(let reason): return .dropped(reason)
        case .valid(let length): headersLength = ip.headerLength + length
        }
        guard Int(header.headerLength) >= headersLength, Int(header.headerLength) <= ip.totalLength else {
            return .dropped(.badVirtioHeader)
        }
        if header.flags.contains(.needsChecksum) {
            guard Int(header.checksumStart) == ip.headerLength,
                Int(header.checksumOffset) == (isTCP ? F.tcpChecksum : F.udpChecksum)
            else { return .dropped(.badVirtioHeader) }
        }
        return .superPacket(
            SuperPacket(
                bytes: bytes,
                isTCP: isTCP,
                ip: ip,
                headersLength: headersLength,
                segmentPayload: Int(header.gsoSize)
            )
        )
    }

    /// Writes segment `index`'s headers at `segment`: an IPv4 header with total length, ID =
    /// original + index (wrapping) and a fresh header checksum, or an IPv6 header with its payload
    /// length (IPv6 has neither ID nor header checksum); for TCP, sequence = original +
    /// index·MSS, FIN and PSH on the last segment only, CWR on the first only; for UDP, its length;
    /// then the transport checksum over the headers and `payloadLength` bytes at `payload`.
    @inline(__always)
    package func writeHeaders(
        ofSegment index: Int,
        to segment: UnsafeMutableRawPointer,
        payload: UnsafeRawPointer,
        payloadLength: Int
    ) {
        segment.copyMemory(from: bytes, byteCount: headersLength)
        let length = headersLength + payloadLength
        let transportLength = length - ipHeaderLength
        if isIPv6 {
            F.store16(segment, F.ip6PayloadLength, UInt16(transportLength))
        } else {
            F.store16(segment, F.ipTotalLength, UInt16(length))
            F.store16(
                segment,
                F.ipIdentification,
                F.load16(bytes, F.ipIdentification) &+ UInt16(truncatingIfNeeded: index)
            )
            F.refreshIPChecksum(segment, headerLength: ipHeaderLength)
        }

        let transport = segment + ipHeaderLength
        let checksumField: Int
        if isTCP {
            var flags = F.load8(bytes, ipHeaderLength + F.tcpFlags)
            if index != count - 1 { flags &= ~(F.tcpFIN | F.tcpPSH) }
            if index != 0 { flags &= ~F.tcpCWR }
            F.store32(
                transport,
                F.tcpSequence,
                F.load32(bytes, ipHeaderLength + F.tcpSequence) &+ UInt32(truncatingIfNeeded: index * segmentPayload)
            )
            transport.storeBytes(of: flags, toByteOffset: F.tcpFlags, as: UInt8.self)
            checksumField = F.tcpChecksum
        } else {
            F.store16(transport, F.udpLength, UInt16(transportLength))
            checksumField = F.udpChecksum
        }
        F.storeChecksum(transport, checksumField, 0)
        // Headers are whole 32-bit words, so the payload's sum continues theirs.
        let pseudo = F.pseudoHeaderSum(
            segment,
            isIPv6: isIPv6,
            protocol: isTCP ? F.protocolTCP : F.protocolUDP,
            length: transportLength
        )
        let headersSum = InternetChecksum.sum(transport, count: headersLength - ipHeaderLength, initial: pseudo)
        let checksum = InternetChecksum.checksum(payload, count: payloadLength, initial: headersSum)
        // UDP sends 0 as "no checksum", so a computed 0 goes out as its equivalent 0xFFFF.
        F.storeChecksum(transport, checksumField, !isTCP && checksum == 0 ? 0xFFFF : checksum)
    }
}
