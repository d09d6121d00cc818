import Packets
import ReferencePaths
import TestSupport
import TestThreads
import Testing

private typealias T = GSOTest

/// Segments with the header-only segmenter and gathers each datagram (headers, then its payload
/// where it lies in the super-packet), checking on the way that it equals what the copying
/// segmenter writes; returns the segments, or nil and the drop reason.
private func segmentBothWays(
    _ original: [UInt8],
    header: VirtioNetHeader,
    gap: Int = 0,
    sourceLocation: SourceLocation = #_sourceLocation
) -> ([[UInt8]], HeaderSegmentationResult) {
    let (input, packet) = GSOTestRegion.holding(original)
    let copied = GSOTestRegion(size: 2 * original.count + 200 * (gap + 100), fill: 0xAA)
    let headers = GSOTestRegion(size: 200 * (gap + 120), fill: 0xAA)
    let (copiedResult, gatheredResult) = withExtendedLifetime(input) {
        (
            Segmentation.segment(packet, header: header, into: copied.base, capacity: copied.size, gap: gap),
            Segmentation.segmentHeaders(packet, header: header, into: headers.base, capacity: headers.size, gap: gap)
        )
    }
    guard case .segmented(let layout) = copiedResult, case .segmented(let gathered) = gatheredResult else {
        if case .dropped(let reason) = gatheredResult {
            #expect(copiedResult == .dropped(reason), "both segmenters drop alike", sourceLocation: sourceLocation)
        }
        return ([], gatheredResult)
    }
    #expect(
        input.read(16, original.count) == original,
        "the super-packet is not written to",
        sourceLocation: sourceLocation
    )
    var segments: [[UInt8]] = []
    for index in 0..<gathered.count {
        let expected = copied.read(layout.offset(ofSegment: index), layout.length(ofSegment: index))
        let segment =
            headers.read(gathered.headerOffset(ofSegment: index) + gap, gathered.headersLength)
            + input.read(16 + gathered.payloadOffset(ofSegment: index), gathered.payloadLength(ofSegment: index))
        #expect(
            T.firstDifference(segment, expected) == nil,
            "segment \(index) gathered vs copied",
            sourceLocation: sourceLocation
        )
        segments.append(segment)
    }
    return (segments, gatheredResult)
}

/// Checks IPv6 TCP segments against their super-packet field by field, with the slow checksum.
private func expectValidTCP6Segments(
    _ segments: [[UInt8]],
    of original: [UInt8],
    mss: Int,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    let headers = 40 + Int(original[52] >> 4) * 4
    let payload = Array(original[headers...])
    #expect(segments.count == max(1, (payload.count + mss - 1) / mss), sourceLocation: sourceLocation)
    var joined: [UInt8] = []
    for (index, segment) in segments.enumerated() {
        #expect(segment.count == headers + min(mss, payload.count - index * mss), sourceLocation: sourceLocation)
        #expect(
            Int(T.be16(segment, 4)) == segment.count - 40,
            "payload length of segment \(index)",
            sourceLocation: sourceLocation
        )
        #expect(T.transportChecksumValid6(segment), "TCP checksum of segment \(index)", sourceLocation: sourceLocation)
        #expect(T.be32(segment, 44) == T.be32(original, 44) &+ UInt32(index * mss), sourceLocation: sourceLocation)
        var flags = original[53]
        if index != segments.count - 1 { flags &= ~(T.fin | T.psh) }
        if index != 0 { flags &= ~T.cwr }
        #expect(segment[53] == flags, "flags of segment \(index)", sourceLocation: sourceLocation)
        // Everything else in the headers is the original's: IPv6 has no ID and no header checksum.
        for offset in 0..<headers where ![4, 5, 44, 45, 46, 47, 53, 56, 57].contains(offset) {
            #expect(
                segment[offset] == original[offset],
                "header byte \(offset) of segment \(index)",
                sourceLocation: sourceLocation
            )
        }
        joined += segment[headers...]
    }
    #expect(T.firstDifference(joined, payload) == nil, "concatenated payloads", sourceLocation: sourceLocation)
}

@Test(.computeLane, arguments: [1428, 1378, 536])
func segmentsATSO6SuperPacket(mss: Int) {
    let original = T.TCP6Spec(
        sequence: 0xFFFF_F000,
        flags: T.ack | T.psh | T.fin | T.cwr,
        trafficClass: 0xB8,
        payload: T.randomBytes(64_000, seed: UInt64(mss) + 600)
    ).build()
    for gap in [0, 22] {
        let (segments, result) = segmentBothWays(
            original,
            header: T.tso6Header(for: original, mss: mss, ecn: true),
            gap: gap
        )
        guard case .segmented(let layout) = result else {
            Issue.record("dropped: \(result)")
            return
        }
        #expect(layout.datagramLength == gap + 72 + mss, "the UDP_SEGMENT size")
        expectValidTCP6Segments(segments, of: original, mss: mss)
    }
}

@Test func aTSO6SuperPacketIsCutToThePathMTU() {
    let original = T.TCP6Spec(payload: T.randomBytes(10_000, seed: 601)).build()
    // Sender's MSS 1428 (1500-byte packets); the path carries 1280 inner bytes: 1208 of payload.
    let (input, packet) = GSOTestRegion.holding(original)
    let output = GSOTestRegion(size: 4096)
    let result = withExtendedLifetime(input) {
        Segmentation.segmentHeaders(
            packet,
            header: T.tso6Header(for: original, mss: 1428),
            into: output.base,
            capacity: output.size,
            innerMTU: 1280
        )
    }
    guard case .segmented(let layout) = result else {
        Issue.record("dropped: \(result)")
        return
    }
    #expect(layout.segmentPayload == 1280 - 72)
    #expect(layout.count == (10_000 + 1207) / 1208)
}

@Test func segmentsAUSO6SuperPacket() {
    let original = T.udp6Packet(payload: T.randomBytes(5000, seed: 602))
    let (segments, result) = segmentBothWays(original, header: T.uso6Header(gsoSize: 1200), gap: 22)
    guard case .segmented = result else {
        Issue.record("dropped: \(result)")
        return
    }
    #expect(segments.map(\.count) == [1248, 1248, 1248, 1248, 248])
    var joined: [UInt8] = []
    for (index, segment) in segments.enumerated() {
        #expect(Int(T.be16(segment, 4)) == segment.count - 40, "payload length of datagram \(index)")
        #expect(Int(T.be16(segment, 44)) == segment.count - 40, "UDP length of datagram \(index)")
        #expect(T.transportChecksumValid6(segment), "UDP checksum of datagram \(index)")
        #expect(T.be16(segment, 46) != 0, "IPv6 UDP checksums are never 0")
        #expect(Array(segment[0..<4]) == Array(original[0..<4]) && Array(segment[6..<44]) == Array(original[6..<44]))
        joined += segment[48...]
    }
    #expect(joined == Array(original[48...]))
}

@Test func dropsWhatIsNotAnIPv6SuperPacketItCanCut() {
    let good = T.TCP6Spec(payload: T.randomBytes(5000, seed: 603)).build()
    let tso6 = T.tso6Header(for: good, mss: 1428)
    func edited(_ change: (inout [UInt8]) -> Void) -> [UInt8] {
        var packet = good
        change(&packet)
        return packet
    }
    // A destination-options header (8 bytes) between the fixed header and TCP.
    let withExtension = Array(good[0..<40]) + [6, 0, 1, 4, 0, 0, 0, 0] + Array(good[40...])
    var extensionPacket = withExtension
    extensionPacket[6] = 60
    T.put16(&extensionPacket, 4, UInt16(withExtension.count - 40))
    var extensionHeader = tso6
    extensionHeader.headerLength += 8
    extensionHeader.checksumStart += 8
    let cases: [(String, [UInt8], VirtioNetHeader, DropReason)] = [
        ("extension headers", extensionPacket, extensionHeader, .ipv6ExtensionHeaders),
        (
            "TCPV4 on IPv6", good,
            {
                var h = tso6
                h.gsoType = .tcpV4
                return h
            }(), .badVirtioHeader
        ),
        (
            "UFO on IPv6", good,
            {
                var h = tso6
                h.gsoType = .udp
                h.checksumOffset = 6
                return h
            }(), .badVirtioHeader
        ),
        ("UDP next header under TCPV6", edited { $0[6] = 17 }, tso6, .badVirtioHeader),
        ("payload length past the buffer", edited { T.put16(&$0, 4, UInt16($0.count - 39)) }, tso6, .badPayloadLength),
        ("shorter than the fixed header", Array(good[0..<39]), .plain, .truncated),
        (
            "csum_start not the TCP header", good,
            {
                var h = tso6
                h.checksumStart = 20
                return h
            }(), .badVirtioHeader
        ),
        ("TCP data offset 4", edited { $0[52] = 0x40 }, tso6, .badTCPHeader),
        ("version 5", edited { $0[0] = 0x50 }, tso6, .wrongVersion),
    ]
    for (name, packet, header, expected) in cases {
        let (_, result) = segmentBothWays(packet, header: header)
        #expect(result == .dropped(expected), "\(name)")
    }
    // TCPV6 on an IPv4 packet is as inconsistent.
    let ipv4 = T.TCPSpec(payload: T.randomBytes(3000, seed: 604)).build()
    var tcpV6OnIPv4 = T.tsoHeader(for: ipv4, mss: 1398)
    tcpV6OnIPv4.gsoType = .tcpV6
    #expect(segmentBothWays(ipv4, header: tcpV6OnIPv4).1 == .dropped(.badVirtioHeader))
}

// MARK: coalescing

private struct Written {
    let index: Int
    let header: VirtioNetHeader
    let packet: [UInt8]
}

/// One batch laid out back to back, as a UDP_GRO receive leaves it, through `coalescer`.
private func coalesce(_ inputs: [[UInt8]], with coalescer: inout Coalescer) -> [Written] {
    let region = GSOTestRegion(size: inputs.map(\.count).reduce(0, +))
    var packets: [PacketBuffer] = []
    var offset = 0
    for input in inputs {
        region.write(input, at: offset)
        packets.append(
            PacketBuffer(base: region.base, headroom: offset, length: input.count, capacity: offset + input.count)
        )
        offset += input.count
    }
    let headers = GSOTestRegion(size: inputs.count * VirtioNetHeader.size)
    var writes = [CoalescedWrite](
        repeating: CoalescedWrite(packet: -1, firstPiece: 0, pieceCount: 0, byteCount: 0),
        count: inputs.count
    )
    var pieces = [GatherPiece](repeating: GatherPiece(start: headers.base, count: 0), count: 2 * inputs.count)
    let count = packets.withUnsafeMutableBufferPointer { packets in
        writes.withUnsafeMutableBufferPointer { writes in
            pieces.withUnsafeMutableBufferPointer {
                coalescer.coalesce(packets, headers: headers.base, into: writes, pieces: $0)
            }
        }
    }
    return withExtendedLifetime((region, headers)) {
        writes[0..<count].map { write in
            let gathered = pieces[write.firstPiece..<write.firstPiece + write.pieceCount]
            return Written(
                index: write.packet,
                header: VirtioNetHeader(loadingFrom: gathered.first!.start),
                packet: gathered.dropFirst().flatMap { Array(UnsafeRawBufferPointer(start: $0.start, count: $0.count)) }
            )
        }
    }
}

/// Consecutive IPv6 segments of one flow with payloads of `sizes`.
private func flow6(
    _ sizes: [Int],
    spec: T.TCP6Spec = .init(),
    seed: UInt64 = 1,
    edit: (Int, inout T.TCP6Spec) -> Void = { _, _ in }
) -> [[UInt8]] {
    var sequence = spec.sequence
    return sizes.enumerated().map { index, size in
        var segment = spec
        segment.sequence = sequence
        segment.payload = T.randomBytes(size, seed: seed &* 1000 &+ UInt64(index))
        edit(index, &segment)
        sequence = segment.sequence &+ UInt32(segment.payload.count)
        return segment.build()
    }
}

/// Segment then coalesce gives back the stream: the super-packet byte for byte but for its TCP
/// checksum, left partial (pseudo-header sum) for the kernel, under the virtio header Linux gave.
@Test(.computeLane, arguments: [1428, 1000])
func segmentingThenCoalescingGivesBackTheTSO6SuperPacket(mss: Int) {
    let original = T.TCP6Spec(
        sequence: 0xFFFF_FF00,
        flags: T.ack | T.psh | T.cwr,
        payload: T.randomBytes(60_000, seed: UInt64(mss) + 610)
    ).build()
    let header = T.tso6Header(for: original, mss: mss, ecn: true)
    let (segments, result) = segmentBothWays(original, header: header)
    guard case .segmented = result else {
        Issue.record("dropped: \(result)")
        return
    }
    var coalescer = Coalescer(batchCapacity: 64)
    let written = coalesce(segments, with: &coalescer)
    #expect(written.count == 1)
    guard let output = written.first else { return }
    #expect(output.header == header)
    var expected = original
    T.put16(&expected, 56, T.partialChecksum6(original))
    #expect(T.firstDifference(output.packet, expected) == nil)
    // Completing the partial checksum, as the kernel does, gives a valid one.
    var completed = output.packet
    T.put16(&completed, 56, ~T.slowSum(completed[40...]))
    #expect(T.transportChecksumValid6(completed))
}

@Test func segmentingThenCoalescingGivesBackTheUSO6SuperPacket() {
    let original = T.udp6Packet(payload: T.randomBytes(12_000, seed: 611))
    let header = T.uso6Header(gsoSize: 1400)
    let (segments, result) = segmentBothWays(original, header: header)
    guard case .segmented = result else {
        Issue.record("dropped: \(result)")
        return
    }
    var coalescer = Coalescer(batchCapacity: 64, udp: true)
    let written = coalesce(segments, with: &coalescer)
    #expect(written.count == 1)
    guard let output = written.first else { return }
    #expect(output.header == header)
    var expected = original
    T.put16(&expected, 46, T.partialChecksum6(original))
    #expect(T.firstDifference(output.packet, expected) == nil)
}

@Test func ipv4AndIPv6FlowsInOneBatchCoalesceSeparately() {
    let flowV6 = flow6(Array(repeating: 1428, count: 5), seed: 7)
    // The same ports and sequence numbers over IPv4: a different flow.
    var sequence: UInt32 = 1000
    let flowV4 = (0..<5).map { index -> [UInt8] in
        let segment = T.TCPSpec(sequence: sequence, payload: T.randomBytes(1448, seed: 900 + UInt64(index))).build()
        sequence &+= 1448
        return segment
    }
    var batch: [[UInt8]] = []
    for index in 0..<5 { batch += [flowV6[index], flowV4[index]] }
    var coalescer = Coalescer(batchCapacity: 16)
    let written = coalesce(batch, with: &coalescer)
    #expect(written.map(\.index) == [0, 1])
    #expect(written.map(\.header.gsoType) == [.tcpV6, .tcpV4])
    #expect(written.first.map { $0.packet.count } == 72 + 5 * 1428)
}

@Test func ipv6SegmentsThatDifferInTheFixedHeaderAreNotMerged() {
    var coalescer = Coalescer(batchCapacity: 8)
    let changes: [(String, (inout T.TCP6Spec) -> Void)] = [
        ("flow label", { $0.flowLabel ^= 1 }),
        ("hop limit", { $0.hopLimit -= 1 }),
        ("traffic class", { $0.trafficClass = 0x02 }),
        ("destination", { $0.destination[15] ^= 0x80 }),
    ]
    for (name, change) in changes {
        let segments = flow6(Array(repeating: 1428, count: 4)) { index, spec in if index >= 2 { change(&spec) } }
        let written = coalesce(segments, with: &coalescer)
        #expect(written.map(\.index) == [0, 2], "\(name)")
    }
}

@Test func ipv6SegmentsWhosePayloadLengthRunsPastTheBufferPassThrough() {
    let segments = flow6(Array(repeating: 1428, count: 3)).map { segment in
        var segment = segment
        T.put16(&segment, 4, UInt16(segment.count - 39))
        return segment
    }
    var coalescer = Coalescer(batchCapacity: 8)
    let written = coalesce(segments, with: &coalescer)
    #expect(written.map(\.index) == [0, 1, 2])
    #expect(written.allSatisfy { $0.header == .plain && $0.packet == segments[$0.index] })
}

@Test func ipv6PacketsWithExtensionHeadersPassThroughAndCloseTheirFlow() {
    var segments = flow6(Array(repeating: 1428, count: 5))
    // Segment 2 carries a destination-options header: it passes through untouched, and 3 and 4
    // start a new super-packet rather than joining 0-1 ahead of it.
    var withOptions = Array(segments[2][0..<40]) + [6, 0, 1, 4, 0, 0, 0, 0] + Array(segments[2][40...])
    withOptions[6] = 60
    T.put16(&withOptions, 4, UInt16(withOptions.count - 40))
    segments[2] = withOptions
    var coalescer = Coalescer(batchCapacity: 8)
    let written = coalesce(segments, with: &coalescer)
    #expect(written.map(\.index) == [0, 2, 3])
    #expect(written.count == 3 && written[1].header == .plain && written[1].packet == withOptions)
}

@Test func ipv6UDPWithAZeroChecksumIsNotCoalesced() {
    var datagrams = (0..<4).map { T.udp6Packet(payload: T.randomBytes(1000, seed: 620 + UInt64($0))) }
    datagrams[2][46] = 0
    datagrams[2][47] = 0
    var coalescer = Coalescer(batchCapacity: 8, udp: true)
    let written = coalesce(datagrams, with: &coalescer)
    #expect(written.map(\.index) == [0, 2, 3])
    #expect(written.count == 3 && written[1].packet == datagrams[2] && written[1].header == .plain)
}

@Test func ipv6SegmentsWithABadChecksumAreNotMerged() {
    var segments = flow6(Array(repeating: 1428, count: 4))
    segments[2][segments[2].count - 1] ^= 0x01
    var coalescer = Coalescer(batchCapacity: 8)
    #expect(coalesce(segments, with: &coalescer).map(\.index) == [0, 2, 3])
}

/// Property: for random stream lengths, MSS values and flags, TSO6 segmentation followed by
/// coalescing gives back the super-packet (checksum left partial), and every segment between
/// verifies on its own.
@Test(.computeLane) func segmentThenCoalesceRoundTripsRandomIPv6Streams() {
    var random = SplitMix64(seed: 8200)
    for round in 0..<40 {
        let mss = Int.random(in: 500...1440, using: &random)
        let length = Int.random(in: 1...min(60_000, 63 * mss), using: &random)
        let flags = [T.ack, T.ack | T.psh, T.ack | T.cwr, T.ack | T.psh | T.cwr].randomElement(using: &random)!
        let original = T.TCP6Spec(
            sequence: UInt32.random(in: 0...UInt32.max, using: &random),
            flags: flags,
            flowLabel: UInt32.random(in: 0...0xF_FFFF, using: &random),
            payload: T.randomBytes(length, seed: UInt64(round) + 700)
        ).build()
        let header = T.tso6Header(for: original, mss: mss, ecn: flags & T.cwr != 0)
        let (segments, result) = segmentBothWays(original, header: header)
        guard case .segmented = result else {
            Issue.record("round \(round): \(result)")
            continue
        }
        #expect(segments.allSatisfy(T.transportChecksumValid6), "round \(round)")
        var coalescer = Coalescer(batchCapacity: 64)
        let written = coalesce(segments, with: &coalescer)
        var expected = original
        T.put16(&expected, 56, T.partialChecksum6(original))
        if segments.count == 1 {
            // One segment is written as it is: a plain packet with a full checksum.
            #expect(written.map { $0.packet } == [segments[0]] && written.first?.header == .plain, "round \(round)")
        } else {
            #expect(
                written.count == 1 && written.first?.header == header,
                "round \(round): mss \(mss), \(length) bytes"
            )
            #expect(written.first.map { T.firstDifference($0.packet, expected) } == .some(nil), "round \(round)")
        }
    }
}
