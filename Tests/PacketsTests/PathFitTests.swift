import Packets
import Testing

private typealias T = GSOTest

@Test func innerMTUIsThePathLessTheOuterHeadersAndTheEncapsulation() {
    #expect(PathFit.innerMTU(pathMTU: 1400, encapsulation: 0) == 1372)  // udp backend
    #expect(PathFit.innerMTU(pathMTU: 1400, encapsulation: 22) == 1350)  // vxlan: 50 in all
    #expect(PathFit.innerMTU(pathMTU: 1500, encapsulation: 0) == 1472)
}

@Test func theSegmentSizeIsTheSendersUnlessItDoesNotFit() {
    // The containers' MSS at 1472 is 1432; a 1400 path leaves 1372 − 40.
    #expect(PathFit.segmentPayload(gsoSize: 1432, headersLength: 40, innerMTU: 1372) == 1332)
    // TCP options take their share of the room.
    #expect(PathFit.segmentPayload(gsoSize: 1432, headersLength: 52, innerMTU: 1372) == 1320)
    #expect(PathFit.segmentPayload(gsoSize: 1000, headersLength: 40, innerMTU: 1372) == 1000)
    #expect(PathFit.segmentPayload(gsoSize: 1332, headersLength: 40, innerMTU: 1372) == 1332)
    #expect(PathFit.segmentPayload(gsoSize: 1432, headersLength: 40, innerMTU: 41) == 1)
    #expect(PathFit.segmentPayload(gsoSize: 1432, headersLength: 40, innerMTU: 40) == nil)
}

/// Headers of every datagram `segmentHeaders` lays out, gap included, and its layout.
private func gathered(
    _ original: [UInt8],
    header: VirtioNetHeader,
    gap: Int,
    innerMTU: Int = .max
) -> (GatheredSegments, [[UInt8]])? {
    let (input, packet) = GSOTestRegion.holding(original)
    let output = GSOTestRegion(size: 200 * (gap + 120), fill: 0xAA)
    let result = withExtendedLifetime(input) {
        Segmentation.segmentHeaders(
            packet,
            header: header,
            into: output.base,
            capacity: output.size,
            gap: gap,
            innerMTU: innerMTU
        )
    }
    guard case .segmented(let layout) = result else { return nil }
    return (layout, (0..<layout.count).map { output.read(layout.headerOffset(ofSegment: $0), layout.headerStride) })
}

/// A super-packet cut to fit a path is exactly the one its sender would have made with the
/// smaller MSS: same segments, sequence numbers, IDs, flags and checksums.
@Test(arguments: [0, 22])
func tcpIsCutToFitAsIfTheSenderHadTheSmallerMSS(gap: Int) throws {
    let original = T.TCPSpec(
        sequence: 0xFFFF_F000,
        flags: T.ack | T.psh | T.fin,
        identification: 0xFFF0,
        payload: T.randomBytes(64_000, seed: 93)
    ).build()
    let innerMTU = 1372 - gap
    let (cut, cutHeaders) = try #require(
        gathered(original, header: T.tsoHeader(for: original, mss: 1432), gap: gap, innerMTU: innerMTU)
    )
    let fitting = innerMTU - cut.headersLength
    let (expected, expectedHeaders) = try #require(
        gathered(original, header: T.tsoHeader(for: original, mss: fitting), gap: gap)
    )
    #expect(cut == expected)
    #expect(cutHeaders == expectedHeaders)
    #expect(cut.headersLength + cut.segmentPayload == innerMTU, "every datagram but the last fills the path")
    #expect(cut.count == (64_000 + fitting - 1) / fitting)
}

@Test func whatFitsIsNotCut() throws {
    let original = T.TCPSpec(flags: T.ack, payload: T.randomBytes(20_000, seed: 94)).build()
    let header = T.tsoHeader(for: original, mss: 1300)
    let (limited, limitedHeaders) = try #require(gathered(original, header: header, gap: 0, innerMTU: 1372))
    let (plain, plainHeaders) = try #require(gathered(original, header: header, gap: 0))
    #expect(limited == plain && limitedHeaders == plainHeaders)
    #expect(limited.segmentPayload == 1300)
}

@Test func udpDatagramsKeepTheirSize() throws {
    // Each datagram is a message: the caller answers or fragments what does not fit.
    let original = T.udpPacket(payload: T.randomBytes(5000, seed: 95))
    let header = VirtioNetHeader(
        flags: .needsChecksum,
        gsoType: .udpL4,
        headerLength: 28,
        gsoSize: 1200,
        checksumStart: 20,
        checksumOffset: 6
    )
    let (layout, _) = try #require(gathered(original, header: header, gap: 0, innerMTU: 1000))
    #expect(layout.segmentPayload == 1200 && layout.count == 5)
}

@Test func noRoomForAnyPayloadIsOversize() {
    let original = T.TCPSpec(flags: T.ack, payload: T.randomBytes(3000, seed: 96)).build()
    let (input, packet) = GSOTestRegion.holding(original)
    let output = GSOTestRegion(size: 4096, fill: 0)
    let result = withExtendedLifetime(input) {
        Segmentation.segmentHeaders(
            packet,
            header: T.tsoHeader(for: original, mss: 1432),
            into: output.base,
            capacity: output.size,
            innerMTU: 40
        )
    }
    #expect(result == .dropped(.oversize))
}
