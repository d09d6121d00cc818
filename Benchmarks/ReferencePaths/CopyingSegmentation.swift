import Packets

/// What `Segmentation.segment` did: where it put the segments, or why it dropped the packet.
public enum SegmentationResult: Equatable, Hashable, Sendable {
    case segmented(SegmentLayout)
    case dropped(DropReason)
}

/// The copying segmenter: every segment's headers and payload written into one output region.
/// The engine sends with `Segmentation.segmentHeaders`, which writes only headers and gathers the
/// payloads where they lie; this one stays beside the benchmarks as the baseline that measures
/// what not copying saves, and as a second, simpler cut the tests check the zero-copy one against.
extension Segmentation {
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
        _ packet: PacketBuffer,
        header: VirtioNetHeader,
        into output: UnsafeMutableRawPointer,
        capacity: Int,
        gap: Int = 0,
        stride: Int? = nil
    ) -> SegmentationResult {
        precondition(gap >= 0 && capacity >= 0, "segment: gap \(gap) and capacity \(capacity) must not be negative")
        let bytes = UnsafeRawPointer(packet.start)
        let parsed: SuperPacket
        switch SuperPacket.parse(packet, header: header) {
        case .dropped(let reason): return .dropped(reason)
        case .single:
            // IPv4 total length, bytes 2-3, big-endian.
            let totalLength = Int(UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
            return copySingle(
                bytes,
                totalLength: totalLength,
                header: header,
                into: output,
                capacity: capacity,
                gap: gap,
                stride: stride
            )
        case .superPacket(let superPacket): parsed = superPacket
        }
        let headersLength = parsed.headersLength
        let layout = SegmentLayout(
            count: parsed.count,
            gap: gap,
            stride: stride ?? gap + headersLength + parsed.segmentPayload,
            segmentLength: headersLength + min(parsed.segmentPayload, parsed.payloadLength),
            lastSegmentLength: headersLength + parsed.lastPayload
        )
        if parsed.count > 1 {
            guard layout.stride >= gap + layout.segmentLength else { return .dropped(.oversize) }
        }
        guard layout.byteCount <= capacity else { return .dropped(.oversize) }

        for index in 0..<parsed.count {
            let segment = output + layout.offset(ofSegment: index)
            let payloadLength = layout.length(ofSegment: index) - headersLength
            (segment + headersLength).copyMemory(
                from: bytes + headersLength + index * parsed.segmentPayload,
                byteCount: payloadLength
            )
            parsed.writeHeaders(
                ofSegment: index,
                to: segment,
                payload: segment + headersLength,
                payloadLength: payloadLength
            )
        }
        return .segmented(layout)
    }

    static func copySingle(
        _ bytes: UnsafeRawPointer,
        totalLength: Int,
        header: VirtioNetHeader,
        into output: UnsafeMutableRawPointer,
        capacity: Int,
        gap: Int,
        stride: Int?
    ) -> SegmentationResult {
        let layout = SegmentLayout(
            count: 1,
            gap: gap,
            stride: stride ?? gap + totalLength,
            segmentLength: totalLength,
            lastSegmentLength: totalLength
        )
        guard layout.byteCount <= capacity else { return .dropped(.oversize) }
        let segment = output + gap
        segment.copyMemory(from: bytes, byteCount: totalLength)
        if let reason = completeChecksum(segment, length: totalLength, header: header) { return .dropped(reason) }
        return .segmented(layout)
    }
}
