import Packets
import ReferencePaths
import TestThreads
import Testing

private typealias T = GSOTest

/// Segments `original` (header as Linux would give it) into a region pre-filled with 0xAA.
private func segment(
    _ original: [UInt8],
    header: VirtioNetHeader,
    gap: Int,
    stride: Int? = nil,
    capacity: Int? = nil
) -> (SegmentationResult, GSOTestRegion) {
    let (input, packet) = GSOTestRegion.holding(original)
    let output = GSOTestRegion(size: capacity ?? 2 * original.count + 200 * (gap + 100) + 4096, fill: 0xAA)
    let result = withExtendedLifetime(input) {
        Segmentation.segment(packet, header: header, into: output.base, capacity: output.size, gap: gap, stride: stride)
    }
    return (result, output)
}

/// Checks every segment against the super-packet it came from, field by field, with the slow
/// checksum; returns the segments.
@discardableResult
private func expectValidSegments(
    of original: [UInt8],
    mss: Int,
    layout: SegmentLayout,
    output: GSOTestRegion,
    sourceLocation: SourceLocation = #_sourceLocation
) -> [[UInt8]] {
    let ipLength = T.ipHeaderLength(original)
    let headers = ipLength + T.tcpHeaderLength(original)
    let payload = Array(original[headers...])
    let expectedCount = max(1, (payload.count + mss - 1) / mss)
    #expect(layout.count == expectedCount, sourceLocation: sourceLocation)
    var segments: [[UInt8]] = []
    var joined: [UInt8] = []
    var cursor = 0
    for index in 0..<layout.count {
        let offset = layout.offset(ofSegment: index)
        #expect(offset == index * layout.stride + layout.gap, sourceLocation: sourceLocation)
        let segmentPayload = min(mss, payload.count - index * mss)
        let length = layout.length(ofSegment: index)
        #expect(length == headers + segmentPayload, sourceLocation: sourceLocation)
        // The bytes between the previous segment's end and this one's start are untouched.
        #expect(output.read(cursor, offset - cursor).allSatisfy { $0 == 0xAA }, sourceLocation: sourceLocation)
        let segment = output.read(offset, length)
        cursor = offset + length
        segments.append(segment)

        #expect(Int(T.be16(segment, 2)) == length, sourceLocation: sourceLocation)
        #expect(
            T.be16(segment, 4) == T.be16(original, 4) &+ UInt16(truncatingIfNeeded: index),
            sourceLocation: sourceLocation
        )
        #expect(T.ipHeaderValid(segment), "IP checksum of segment \(index)", sourceLocation: sourceLocation)
        #expect(T.transportChecksumValid(segment), "TCP checksum of segment \(index)", sourceLocation: sourceLocation)
        #expect(
            T.be32(segment, ipLength + 4) == T.be32(original, ipLength + 4) &+ UInt32(index * mss),
            sourceLocation: sourceLocation
        )
        var flags = original[ipLength + 13]
        if index != layout.count - 1 { flags &= ~(T.fin | T.psh) }
        if index != 0 { flags &= ~T.cwr }
        #expect(segment[ipLength + 13] == flags, "flags of segment \(index)", sourceLocation: sourceLocation)
        // Everything else in the headers is the original's.
        for offset in 0..<headers
        where ![2, 3, 4, 5, 10, 11].contains(offset)
            && !(ipLength + 4..<ipLength + 8).contains(offset)
            && ![ipLength + 13, ipLength + 16, ipLength + 17].contains(offset)
        {
            #expect(
                segment[offset] == original[offset],
                "header byte \(offset) of segment \(index)",
                sourceLocation: sourceLocation
            )
        }
        joined += segment[headers...]
    }
    #expect(T.firstDifference(joined, payload) == nil, "concatenated payloads", sourceLocation: sourceLocation)
    return segments
}

@Test(.computeLane, arguments: [1398, 1422])
func segmentsSixtyFourKilobyteSuperPacket(mss: Int) throws {
    let original = T.TCPSpec(
        sequence: 0xFFFF_F000,
        flags: T.ack | T.psh | T.fin | T.cwr,
        identification: 0xFFF0,
        payload: T.randomBytes(64_000, seed: UInt64(mss))
    ).build()
    let (result, output) = segment(original, header: T.tsoHeader(for: original, mss: mss, ecn: true), gap: 22)
    guard case .segmented(let layout) = result else {
        Issue.record("dropped: \(result)")
        return
    }
    #expect(layout.gap == 22)
    #expect(layout.stride == 22 + 52 + mss)
    #expect(layout.isPacked)
    #expect(layout.segmentLength == 52 + mss)
    #expect(layout.lastSegmentLength == 52 + 64_000 - (layout.count - 1) * mss)
    #expect(layout.byteCount == (layout.count - 1) * layout.stride + 22 + layout.lastSegmentLength)
    #expect(output.read(layout.byteCount, 64).allSatisfy { $0 == 0xAA })
    expectValidSegments(of: original, mss: mss, layout: layout, output: output)
    // 46 segments of 22 + 1450 bytes exceed one 65,507-byte UDP_SEGMENT send.
    #expect(layout.segmentsPerSend() == min(64, 65_507 / layout.stride))
    #expect(layout.segmentsPerSend() * layout.stride <= 65_507)
}

@Test func segmentsWithIPOptionsIntoAFixedStride() {
    let original = T.TCPSpec(ipOptions: [1, 1, 1, 0], tcpOptions: [], payload: T.randomBytes(5500, seed: 7)).build()
    let (result, output) = segment(original, header: T.tsoHeader(for: original, mss: 1000), gap: 0, stride: 2048)
    guard case .segmented(let layout) = result else {
        Issue.record("dropped: \(result)")
        return
    }
    #expect(layout.count == 6)
    #expect(layout.stride == 2048)
    #expect(!layout.isPacked)
    #expect(layout.segmentLength == 24 + 20 + 1000)
    #expect(layout.lastSegmentLength == 24 + 20 + 500)
    expectValidSegments(of: original, mss: 1000, layout: layout, output: output)
}

@Test func payloadThatDividesExactlyByTheMSS() {
    let original = T.TCPSpec(flags: T.ack | T.psh, payload: T.randomBytes(1398 * 5, seed: 3)).build()
    let (result, output) = segment(original, header: T.tsoHeader(for: original, mss: 1398), gap: 0)
    guard case .segmented(let layout) = result else {
        Issue.record("dropped: \(result)")
        return
    }
    #expect(layout.count == 5)
    #expect(layout.lastSegmentLength == layout.segmentLength)
    let segments = expectValidSegments(of: original, mss: 1398, layout: layout, output: output)
    #expect(segments.map { $0[20 + 13] } == [T.ack, T.ack, T.ack, T.ack, T.ack | T.psh])
}

@Test func smallMSS() {
    let original = T.TCPSpec(flags: T.ack | T.fin, payload: T.randomBytes(100, seed: 4)).build()
    let (result, output) = segment(original, header: T.tsoHeader(for: original, mss: 8), gap: 4)
    guard case .segmented(let layout) = result else {
        Issue.record("dropped: \(result)")
        return
    }
    #expect(layout.count == 13)
    #expect(layout.lastSegmentLength == 52 + 4)
    expectValidSegments(of: original, mss: 8, layout: layout, output: output)
}

@Test func payloadWithinOneMSSIsOneSegmentKeepingEveryFlag() {
    let original = T.TCPSpec(flags: T.ack | T.psh | T.fin | T.cwr, payload: T.randomBytes(500, seed: 5)).build()
    let (result, output) = segment(original, header: T.tsoHeader(for: original, mss: 1398), gap: 0)
    guard case .segmented(let layout) = result else {
        Issue.record("dropped: \(result)")
        return
    }
    #expect(layout.count == 1)
    let segments = expectValidSegments(of: original, mss: 1398, layout: layout, output: output)
    #expect(segments.count == 1 && T.firstDifference(segments[0], original) == nil)
}

@Test func outputRegionTooSmallIsOversize() {
    let original = T.TCPSpec(payload: T.randomBytes(4000, seed: 6)).build()
    let header = T.tsoHeader(for: original, mss: 1000)
    // Four segments of 52 + 1000 behind 22-byte gaps need 3·1074 + 22 + 1052 bytes.
    let needed = 3 * 1074 + 22 + 1052
    #expect(segment(original, header: header, gap: 22, capacity: needed - 1).0 == .dropped(.oversize))
    guard case .segmented(let layout) = segment(original, header: header, gap: 22, capacity: needed).0 else {
        Issue.record("exact capacity refused")
        return
    }
    #expect(layout.byteCount == needed)
    // A stride that cannot hold gap + segment.
    #expect(segment(original, header: header, gap: 22, stride: 1073).0 == .dropped(.oversize))
}

@Test func segmentsUDPL4() {
    // The first datagram's last two payload bytes make its checksum compute to 0, which UDP must
    // send as 0xFFFF.
    var payload = T.randomBytes(5000, seed: 8)
    payload[1198] = 0
    payload[1199] = 0
    let first = T.udpPacket(payload: Array(payload[0..<1200]))
    var firstHeader = Array(first[20..<28])
    T.put16(&firstHeader, 6, 0)
    let rest = ~T.slowSum(firstHeader + payload[0..<1200], initial: T.pseudoHeader(first, protocol: 17, length: 1208))
    payload[1198] = UInt8(rest >> 8)
    payload[1199] = UInt8(rest & 0xFF)
    let original = T.udpPacket(payload: payload, identification: 0xFFFE)
    let header = VirtioNetHeader(
        flags: .needsChecksum,
        gsoType: .udpL4,
        headerLength: 28,
        gsoSize: 1200,
        checksumStart: 20,
        checksumOffset: 6
    )
    let (result, output) = segment(original, header: header, gap: 0)
    guard case .segmented(let layout) = result else {
        Issue.record("dropped: \(result)")
        return
    }
    #expect(layout.count == 5)
    var joined: [UInt8] = []
    for index in 0..<layout.count {
        let segment = output.read(layout.offset(ofSegment: index), layout.length(ofSegment: index))
        #expect(Int(T.be16(segment, 2)) == segment.count)
        #expect(Int(T.be16(segment, 24)) == segment.count - 20)
        #expect(T.be16(segment, 4) == 0xFFFE &+ UInt16(index))
        #expect(T.ipHeaderValid(segment))
        #expect(T.transportChecksumValid(segment))
        #expect(segment[20..<24] == original[20..<24])
        joined += segment[28...]
        if index == 0 { #expect(T.be16(segment, 26) == 0xFFFF) }
    }
    #expect(T.firstDifference(joined, Array(original[28...])) == nil)
}

@Test func completesAPartialTCPChecksumInPlace() {
    let complete = T.TCPSpec(flags: T.ack | T.psh, payload: T.randomBytes(777, seed: 9)).build()
    var partial = complete
    T.put16(&partial, 36, T.partialChecksum(partial))
    let header = VirtioNetHeader(flags: .needsChecksum, checksumStart: 20, checksumOffset: 16)
    let (region, packet) = GSOTestRegion.holding(partial)
    #expect(Segmentation.completeChecksum(packet, header: header) == nil)
    #expect(T.firstDifference(region.read(16, partial.count), complete) == nil)

    // The same through segment(): one segment, copied behind the gap.
    let (result, output) = segment(partial, header: header, gap: 22)
    #expect(
        result
            == .segmented(
                SegmentLayout(
                    count: 1,
                    gap: 22,
                    stride: 22 + complete.count,
                    segmentLength: complete.count,
                    lastSegmentLength: complete.count
                )
            )
    )
    #expect(T.firstDifference(output.read(22, complete.count), complete) == nil)
    #expect(output.read(0, 22).allSatisfy { $0 == 0xAA })
}

@Test func completedChecksumOfZeroIsStoredAsAllOnes() {
    // Choose the last two payload bytes so that the whole datagram sums to 0xFFFF: the checksum
    // computes to 0, which UDP must send as 0xFFFF.
    var packet = T.udpPacket(payload: T.randomBytes(64, seed: 10))
    T.put16(&packet, packet.count - 2, 0)
    T.put16(&packet, 26, 0)
    let rest = T.slowSum(packet[20...], initial: T.pseudoHeader(packet, protocol: 17, length: packet.count - 20))
    T.put16(&packet, packet.count - 2, ~rest)
    T.put16(&packet, 26, T.slowSum([], initial: T.pseudoHeader(packet, protocol: 17, length: packet.count - 20)))
    let header = VirtioNetHeader(flags: .needsChecksum, checksumStart: 20, checksumOffset: 6)
    let (region, buffer) = GSOTestRegion.holding(packet)
    #expect(Segmentation.completeChecksum(buffer, header: header) == nil)
    let completed = region.read(16, packet.count)
    #expect(T.be16(completed, 26) == 0xFFFF)
    #expect(T.transportChecksumValid(completed))
}

@Test func completeChecksumLeavesPacketsWithoutNeedsChecksumAlone() {
    let packet = T.TCPSpec(payload: T.randomBytes(50, seed: 11)).build()
    let (region, buffer) = GSOTestRegion.holding(packet)
    #expect(Segmentation.completeChecksum(buffer, header: .plain) == nil)
    #expect(T.firstDifference(region.read(16, packet.count), packet) == nil)
    let (result, output) = segment(packet, header: .plain, gap: 0)
    #expect(
        result
            == .segmented(
                SegmentLayout(
                    count: 1,
                    gap: 0,
                    stride: packet.count,
                    segmentLength: packet.count,
                    lastSegmentLength: packet.count
                )
            )
    )
    #expect(T.firstDifference(output.read(0, packet.count), packet) == nil)
}

@Test func completeChecksumRejectsAFieldOutsideThePacket() {
    let packet = T.TCPSpec(payload: []).build()  // 52 bytes
    let (region, buffer) = GSOTestRegion.holding(packet)
    withExtendedLifetime(region) {
        #expect(
            Segmentation.completeChecksum(
                buffer,
                header: VirtioNetHeader(flags: .needsChecksum, checksumStart: 20, checksumOffset: 31)
            ) == .badVirtioHeader
        )
        #expect(
            Segmentation.completeChecksum(
                buffer,
                header: VirtioNetHeader(flags: .needsChecksum, checksumStart: 4, checksumOffset: 16)
            ) == .badVirtioHeader
        )
        #expect(
            Segmentation.completeChecksum(
                buffer,
                header: VirtioNetHeader(flags: .needsChecksum, checksumStart: 20, checksumOffset: 30)
            ) == nil
        )
    }
}

struct MalformedSuperPacket: Sendable, CustomTestStringConvertible {
    let name: String
    let expected: DropReason
    var header: @Sendable (VirtioNetHeader) -> VirtioNetHeader = { $0 }
    var packet: @Sendable ([UInt8]) -> [UInt8] = { $0 }
    var testDescription: String { name }

    static func edit(_ packet: [UInt8], _ change: (inout [UInt8]) -> Void) -> [UInt8] {
        var packet = packet
        change(&packet)
        return packet
    }

    static let all: [MalformedSuperPacket] = [
        .init(
            name: "gso_size 0",
            expected: .badVirtioHeader,
            header: {
                var h = $0
                h.gsoSize = 0
                return h
            }
        ),
        .init(
            name: "unknown gso type 2",
            expected: .badVirtioHeader,
            header: {
                var h = $0
                h.gsoType = .init(rawValue: 2)
                return h
            }
        ),
        .init(
            name: "ECN without TCP",
            expected: .badVirtioHeader,
            header: {
                var h = $0
                h.gsoType = .init(rawValue: 0x80)
                return h
            }
        ),
        .init(
            name: "UFO",
            expected: .badVirtioHeader,
            header: {
                var h = $0
                h.gsoType = .udp
                return h
            }
        ),
        .init(
            name: "TCPv6 on IPv4",
            expected: .badVirtioHeader,
            header: {
                var h = $0
                h.gsoType = .tcpV6
                return h
            }
        ),
        .init(
            name: "USO on a TCP packet",
            expected: .badVirtioHeader,
            header: {
                var h = $0
                h.gsoType = .udpL4
                h.checksumOffset = 6
                return h
            }
        ),
        .init(
            name: "hdr_len short of the headers",
            expected: .badVirtioHeader,
            header: {
                var h = $0
                h.headerLength = 40
                return h
            }
        ),
        .init(
            name: "hdr_len 0",
            expected: .badVirtioHeader,
            header: {
                var h = $0
                h.headerLength = 0
                return h
            }
        ),
        .init(
            name: "hdr_len past the packet",
            expected: .badVirtioHeader,
            header: {
                var h = $0
                h.headerLength = 60_000
                return h
            }
        ),
        .init(
            name: "csum_start not the TCP header",
            expected: .badVirtioHeader,
            header: {
                var h = $0
                h.checksumStart = 14
                return h
            }
        ),
        .init(
            name: "csum_offset not the TCP checksum",
            expected: .badVirtioHeader,
            header: {
                var h = $0
                h.checksumOffset = 6
                return h
            }
        ),
        .init(
            name: "csum field past the packet",
            expected: .badVirtioHeader,
            header: {
                var h = $0
                h.checksumStart = 5000
                return h
            }
        ),
        .init(name: "protocol UDP under TCPV4", expected: .badVirtioHeader, packet: { edit($0) { $0[9] = 17 } }),
        .init(name: "a fragment", expected: .badVirtioHeader, packet: { edit($0) { $0[6] |= 0x20 } }),
        .init(name: "version 5", expected: .wrongVersion, packet: { edit($0) { $0[0] = 0x55 } }),
        .init(name: "TCPV4 on IPv6", expected: .badVirtioHeader, packet: { edit($0) { $0[0] = 0x60 } }),
        .init(name: "IHL 4", expected: .badIHL, packet: { edit($0) { $0[0] = 0x44 } }),
        .init(
            name: "IHL past a short packet",
            expected: .badIHL,
            header: {
                var h = $0
                h.headerLength = 40
                h.flags = []
                return h
            },
            packet: { edit(Array($0[0..<56])) { $0[0] = 0x4F } }
        ),
        .init(
            name: "total length past the buffer",
            expected: .badTotalLength,
            packet: { edit($0) { GSOTest.put16(&$0, 2, UInt16($0.count + 1)) } }
        ),
        .init(
            name: "total length below IHL",
            expected: .badTotalLength,
            packet: { edit($0) { GSOTest.put16(&$0, 2, 19) } }
        ),
        .init(name: "TCP data offset 4", expected: .badTCPHeader, packet: { edit($0) { $0[32] = 0x40 } }),
        .init(
            name: "TCP options past the packet",
            expected: .truncated,
            header: {
                var h = $0
                h.headerLength = 40
                return h
            },
            packet: {
                edit(Array($0[0..<60])) {
                    GSOTest.put16(&$0, 2, 60)
                    $0[32] = 0xF0
                }
            }
        ),
        .init(
            name: "TCP header past the packet",
            expected: .truncated,
            header: {
                var h = $0
                h.headerLength = 30
                h.flags = []
                return h
            },
            packet: { edit(Array($0[0..<30])) { GSOTest.put16(&$0, 2, 30) } }
        ),
        .init(
            name: "shorter than an IP header",
            expected: .truncated,
            header: { _ in .plain },
            packet: { Array($0[0..<19]) }
        ),
    ]
}

@Test(arguments: MalformedSuperPacket.all)
func rejectsMalformedSuperPacket(_ malformed: MalformedSuperPacket) {
    let good = T.TCPSpec(payload: T.randomBytes(5000, seed: 12)).build()
    let packet = malformed.packet(good)
    let header = malformed.header(T.tsoHeader(for: good, mss: 1398))
    #expect(segment(packet, header: header, gap: 0).0 == .dropped(malformed.expected))
}
