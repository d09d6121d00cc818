import Packets
import ReferencePaths
import TestThreads
import Testing

private typealias T = GSOTest

/// `segmentHeaders` against `segment`: gathered (gap, headers, payload where it lies in the
/// super-packet), its datagrams must be byte for byte the ones `segment` copies out, while the
/// super-packet itself is left as it was.
private func expectGatheredEqualsCopied(
    _ original: [UInt8],
    header: VirtioNetHeader,
    gap: Int,
    sourceLocation: SourceLocation = #_sourceLocation
) {
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
        Issue.record("copied: \(copiedResult), gathered: \(gatheredResult)", sourceLocation: sourceLocation)
        return
    }
    #expect(gathered.count == layout.count, sourceLocation: sourceLocation)
    if layout.count > 1 {
        #expect(gathered.datagramLength == layout.stride, "the UDP_SEGMENT size", sourceLocation: sourceLocation)
        #expect(gathered.segmentsPerSend() == layout.segmentsPerSend(), sourceLocation: sourceLocation)
    }
    #expect(
        input.read(16, original.count) == original,
        "the super-packet is not written to",
        sourceLocation: sourceLocation
    )
    #expect(
        headers.read(gathered.headerBytes, 64).allSatisfy { $0 == 0xAA },
        "nothing past headerBytes",
        sourceLocation: sourceLocation
    )
    for index in 0..<layout.count {
        let expected = copied.read(layout.offset(ofSegment: index) - gap, gap + layout.length(ofSegment: index))
        let gap = headers.read(gathered.headerOffset(ofSegment: index), gathered.headerStride)
        let payload = input.read(
            16 + gathered.payloadOffset(ofSegment: index),
            gathered.payloadLength(ofSegment: index)
        )
        #expect(T.firstDifference(gap + payload, expected) == nil, "datagram \(index)", sourceLocation: sourceLocation)
    }
}

@Test(.computeLane, arguments: [1398, 1422, 536])
func gatheredTCPSegmentsAreTheCopiedOnes(mss: Int) {
    let original = T.TCPSpec(
        sequence: 0xFFFF_F000,
        flags: T.ack | T.psh | T.fin | T.cwr,
        identification: 0xFFF0,
        ipOptions: [1, 1, 1, 0],
        payload: T.randomBytes(64_000, seed: UInt64(mss) + 90)
    ).build()
    expectGatheredEqualsCopied(original, header: T.tsoHeader(for: original, mss: mss, ecn: true), gap: 22)
    expectGatheredEqualsCopied(original, header: T.tsoHeader(for: original, mss: mss), gap: 0)
}

@Test func gatheredUDPSegmentsAreTheCopiedOnes() {
    let original = T.udpPacket(payload: T.randomBytes(5000, seed: 91))
    let header = VirtioNetHeader(
        flags: .needsChecksum,
        gsoType: .udpL4,
        headerLength: 28,
        gsoSize: 1200,
        checksumStart: 20,
        checksumOffset: 6
    )
    expectGatheredEqualsCopied(original, header: header, gap: 22)
}

@Test func aPayloadWithinOneSegmentIsOneDatagram() {
    let original = T.TCPSpec(flags: T.ack | T.psh, payload: T.randomBytes(700, seed: 92)).build()
    expectGatheredEqualsCopied(original, header: T.tsoHeader(for: original, mss: 1398), gap: 0)
}

@Test func headerSegmentationDropsWhatSegmentationDrops() {
    let good = T.TCPSpec(payload: T.randomBytes(5000, seed: 12)).build()
    let output = GSOTestRegion(size: 4096)
    for malformed in MalformedSuperPacket.all {
        let (input, packet) = GSOTestRegion.holding(malformed.packet(good))
        let header = malformed.header(T.tsoHeader(for: good, mss: 1398))
        let result = withExtendedLifetime(input) {
            Segmentation.segmentHeaders(packet, header: header, into: output.base, capacity: output.size)
        }
        #expect(result == .dropped(malformed.expected), "\(malformed.name)")
    }
}

@Test func aSinglePacketOrTooLittleRoomIsNotSegmented() {
    let original = T.TCPSpec(payload: T.randomBytes(5000, seed: 13)).build()
    let (input, packet) = GSOTestRegion.holding(original)
    let output = GSOTestRegion(size: 4096)
    withExtendedLifetime(input) {
        // NONE: no segments to make; the caller sends the packet as it is.
        #expect(
            Segmentation.segmentHeaders(packet, header: .plain, into: output.base, capacity: output.size)
                == .dropped(.badVirtioHeader)
        )
        // Four segments of 22 + 52 header bytes (IP, TCP with timestamps) need 296 bytes.
        let header = T.tsoHeader(for: original, mss: 1398)
        #expect(
            Segmentation.segmentHeaders(packet, header: header, into: output.base, capacity: 295, gap: 22)
                == .dropped(.oversize)
        )
        guard
            case .segmented(let layout) = Segmentation.segmentHeaders(
                packet,
                header: header,
                into: output.base,
                capacity: 296,
                gap: 22
            )
        else {
            Issue.record("296 bytes should do")
            return
        }
        #expect(layout.headerBytes == 296)
    }
}
