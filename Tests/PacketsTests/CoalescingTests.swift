import Packets
import ReferencePaths
import TestThreads
import Testing

private typealias T = GSOTest

private struct CoalescedOutput {
    let index: Int
    let header: VirtioNetHeader
    let packet: [UInt8]
}

/// The batch laid out back to back in one region, as a UDP_GRO receive leaves it.
private final class PackedBatch {
    let region: GSOTestRegion
    var packets: [PacketBuffer] = []
    let offsets: [Int]

    init(_ inputs: [[UInt8]]) {
        var offsets: [Int] = []
        var end = 0
        for packet in inputs {
            offsets.append(end)
            end += packet.count
        }
        self.offsets = offsets
        region = GSOTestRegion(size: end)
        for (packet, offset) in zip(inputs, offsets) {
            region.write(packet, at: offset)
            packets.append(
                PacketBuffer(base: region.base, headroom: offset, length: packet.count, capacity: offset + packet.count)
            )
        }
    }
}

/// Runs one batch, packed back to back, and reads each write's gathered bytes.
private func coalesce(
    _ inputs: [[UInt8]],
    with coalescer: inout Coalescer,
    batch: PackedBatch? = nil,
    sourceLocation: SourceLocation = #_sourceLocation
) -> [CoalescedOutput] {
    let batch = batch ?? PackedBatch(inputs)
    let headers = GSOTestRegion(size: inputs.count * VirtioNetHeader.size)
    var writes = [CoalescedWrite](
        repeating: CoalescedWrite(packet: -1, firstPiece: 0, pieceCount: 0, byteCount: 0),
        count: inputs.count
    )
    var pieces = [GatherPiece](repeating: GatherPiece(start: headers.base, count: 0), count: 2 * inputs.count)
    let count = batch.packets.withUnsafeMutableBufferPointer { packets in
        writes.withUnsafeMutableBufferPointer { writes in
            pieces.withUnsafeMutableBufferPointer {
                coalescer.coalesce(packets, headers: headers.base, into: writes, pieces: $0)
            }
        }
    }
    return withExtendedLifetime((batch, headers)) {
        writes[0..<count].enumerated().map { number, write in
            let gathered = pieces[write.firstPiece..<write.firstPiece + write.pieceCount]
            #expect(
                gathered.first?.start == UnsafeRawPointer(headers.base + number * VirtioNetHeader.size),
                "write \(number)'s header is in its slot",
                sourceLocation: sourceLocation
            )
            #expect(gathered.first?.count == VirtioNetHeader.size, sourceLocation: sourceLocation)
            #expect(
                gathered.map(\.count).reduce(0, +) == write.byteCount,
                "byteCount of write \(number)",
                sourceLocation: sourceLocation
            )
            return CoalescedOutput(
                index: write.packet,
                header: VirtioNetHeader(loadingFrom: UnsafeMutableRawPointer(mutating: gathered.first!.start)),
                packet: gathered.dropFirst().flatMap { Array(UnsafeRawBufferPointer(start: $0.start, count: $0.count)) }
            )
        }
    }
}

/// Checks that the batch came out as `groups`: each a list of input indices merged in that order.
/// A single is written untouched behind a plain header; a super-packet (TCP or UDP, as its head)
/// is checked field by field.
private func expectGroups(
    _ outputs: [CoalescedOutput],
    inputs: [[UInt8]],
    _ groups: [[Int]],
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(outputs.map(\.index) == groups.map { $0[0] }, "write order", sourceLocation: sourceLocation)
    for (output, group) in zip(outputs, groups) where output.index == group[0] {
        let head = inputs[group[0]]
        guard group.count > 1 else {
            #expect(output.header == .plain, "header of single \(group[0])", sourceLocation: sourceLocation)
            #expect(
                T.firstDifference(output.packet, head) == nil,
                "single \(group[0]) untouched",
                sourceLocation: sourceLocation
            )
            continue
        }
        let isUDP = head[9] == 17
        let ipLength = T.ipHeaderLength(head)
        let headers = ipLength + (isUDP ? 8 : T.tcpHeaderLength(head))
        let checksumField = ipLength + (isUDP ? 6 : 16)
        let payloads = group.map { Array(inputs[$0][headers...]) }
        let packet = output.packet
        #expect(packet.count == headers + payloads.joined().count, sourceLocation: sourceLocation)
        guard packet.count >= headers else { continue }
        #expect(
            T.firstDifference(Array(packet[headers...]), Array(payloads.joined())) == nil,
            "payload of group at \(group[0])",
            sourceLocation: sourceLocation
        )
        #expect(Int(T.be16(packet, 2)) == packet.count, sourceLocation: sourceLocation)
        #expect(T.ipHeaderValid(packet), sourceLocation: sourceLocation)
        #expect(
            T.be16(packet, checksumField) == T.partialChecksum(packet),
            "partial checksum",
            sourceLocation: sourceLocation
        )
        var rewritten: Set = [2, 3, 10, 11, checksumField, checksumField + 1]
        if isUDP {
            #expect(
                Int(T.be16(packet, ipLength + 4)) == packet.count - ipLength,
                "UDP length",
                sourceLocation: sourceLocation
            )
            rewritten.formUnion([ipLength + 4, ipLength + 5])
        } else {
            let lastFlags = inputs[group.last!][ipLength + 13]
            #expect(
                packet[ipLength + 13] == head[ipLength + 13] | (lastFlags & T.psh),
                "flags",
                sourceLocation: sourceLocation
            )
            rewritten.insert(ipLength + 13)
        }
        for offset in 0..<headers where !rewritten.contains(offset) {
            #expect(packet[offset] == head[offset], "header byte \(offset)", sourceLocation: sourceLocation)
        }
        let expectedHeader = VirtioNetHeader(
            flags: .needsChecksum,
            gsoType: isUDP ? .udpL4 : VirtioNetHeader.GSOType.tcpV4.withECN(head[ipLength + 13] & T.cwr != 0),
            headerLength: UInt16(headers),
            gsoSize: UInt16(payloads[0].count),
            checksumStart: UInt16(ipLength),
            checksumOffset: UInt16(checksumField - ipLength)
        )
        #expect(output.header == expectedHeader, sourceLocation: sourceLocation)
        // Completing the partial checksum, as the kernel does, yields a valid transport checksum.
        var completed = packet
        T.put16(&completed, checksumField, ~T.slowSum(completed[ipLength...]))
        #expect(T.transportChecksumValid(completed), "completed checksum", sourceLocation: sourceLocation)
    }
}

/// Consecutive segments of one flow with payloads of `sizes`; `edit` adjusts segment i's spec.
private func flow(
    _ sizes: [Int],
    spec: T.TCPSpec = .init(),
    seed: UInt64 = 1,
    edit: (Int, inout T.TCPSpec) -> Void = { _, _ in }
) -> [[UInt8]] {
    var sequence = spec.sequence
    return sizes.enumerated().map { index, size in
        var segment = spec
        segment.sequence = sequence
        segment.identification = spec.identification &+ UInt16(index)
        segment.payload = T.randomBytes(size, seed: seed &* 1000 &+ UInt64(index))
        edit(index, &segment)
        sequence = segment.sequence &+ UInt32(segment.payload.count)
        return segment.build()
    }
}

private func corruptPayload(_ packet: [UInt8]) -> [UInt8] {
    var packet = packet
    packet[packet.count - 1] ^= 0x01
    return packet
}

@Test(.computeLane, arguments: [1398, 1422])
func coalescesSegmentsBackIntoTheSuperPacket(mss: Int) {
    let original = T.TCPSpec(
        sequence: 0xFFFF_FF00,
        flags: T.ack | T.psh | T.cwr,
        identification: 0xFFFE,
        payload: T.randomBytes(64_000, seed: UInt64(mss) + 50)
    ).build()
    let (input, packet) = GSOTestRegion.holding(original)
    let output = GSOTestRegion(size: 80_000)
    let result = withExtendedLifetime(input) {
        Segmentation.segment(
            packet,
            header: T.tsoHeader(for: original, mss: mss, ecn: true),
            into: output.base,
            capacity: output.size
        )
    }
    guard case .segmented(let layout) = result else {
        Issue.record("dropped: \(result)")
        return
    }
    let segments = (0..<layout.count).map { output.read(layout.offset(ofSegment: $0), layout.length(ofSegment: $0)) }

    var coalescer = Coalescer(batchCapacity: 64)
    let outputs = coalesce(segments, with: &coalescer)
    expectGroups(outputs, inputs: segments, [Array(segments.indices)])
    guard outputs.count == 1 else { return }
    #expect(outputs[0].header == T.tsoHeader(for: original, mss: mss, ecn: true))
    // Byte-identical to the super-packet but for its TCP checksum, left partial for the kernel.
    var expected = original
    T.put16(&expected, 36, T.partialChecksum(original))
    #expect(T.firstDifference(outputs[0].packet, expected) == nil)
}

@Test func finOnTheLastSegmentStaysOnItsOwn() {
    let segments = flow([1398, 1398, 1398, 700]) { index, spec in if index == 3 { spec.flags = T.ack | T.fin } }
    var coalescer = Coalescer(batchCapacity: 8)
    expectGroups(coalesce(segments, with: &coalescer), inputs: segments, [[0, 1, 2], [3]])
}

@Test func interleavedFlowsCoalesceSeparately() {
    let flowA = flow(Array(repeating: 1398, count: 10), seed: 2)
    let flowB = flow(
        Array(repeating: 1398, count: 9) + [100],
        spec: T.TCPSpec(sourcePort: 40_001, sequence: 5),
        seed: 3
    )
    let flowC = flow([1000, 1000], spec: T.TCPSpec(source: [10, 244, 1, 9], sequence: 1 << 31), seed: 4)
    var batch: [[UInt8]] = []
    for index in 0..<10 {
        batch.append(flowA[index])
        batch.append(flowB[index])
        if index < 2 { batch.append(flowC[index]) }
    }
    // Batch: A0 B0 C0 A1 B1 C1 A2 B2 A3 B3 …
    let indexA = batch.indices.filter { flowA.contains(batch[$0]) }
    let indexB = batch.indices.filter { flowB.contains(batch[$0]) }
    let indexC = batch.indices.filter { flowC.contains(batch[$0]) }
    var coalescer = Coalescer(batchCapacity: 32)
    expectGroups(coalesce(batch, with: &coalescer), inputs: batch, [indexA, indexB, indexC])
}

@Test func aGapInSequenceNumbersStartsANewSuperPacket() {
    var segments = flow(Array(repeating: 1398, count: 6))
    segments.remove(at: 2)
    var coalescer = Coalescer(batchCapacity: 8)
    expectGroups(coalesce(segments, with: &coalescer), inputs: segments, [[0, 1], [2, 3, 4]])
}

@Test func aDifferentAckNumberIsNotMerged() {
    // Segment 2 carries a newer ACK, segments 3… the old one again.
    let oneNewer = flow(Array(repeating: 1398, count: 6)) { index, spec in if index == 2 { spec.acknowledgment &+= 1 } }
    var coalescer = Coalescer(batchCapacity: 8)
    expectGroups(coalesce(oneNewer, with: &coalescer), inputs: oneNewer, [[0, 1], [2], [3, 4, 5]])
    // From segment 2 on, every segment carries the newer ACK.
    let advanced = flow(Array(repeating: 1398, count: 6)) { index, spec in
        if index >= 2 { spec.acknowledgment &+= 1448 }
    }
    expectGroups(coalesce(advanced, with: &coalescer), inputs: advanced, [[0, 1], [2, 3, 4, 5]])
}

struct FlagInTheMiddle: Sendable, CustomTestStringConvertible {
    let name: String
    let flags: UInt8
    let groups: [[Int]]
    var testDescription: String { name }
}

@Test(arguments: [
    // PSH may end a super-packet; the next segment starts another.
    FlagInTheMiddle(name: "PSH", flags: GSOTest.ack | GSOTest.psh, groups: [[0, 1, 2], [3, 4, 5]]),
    // These can neither be appended nor start a super-packet.
    FlagInTheMiddle(name: "FIN", flags: GSOTest.ack | GSOTest.fin, groups: [[0, 1], [2], [3, 4, 5]]),
    FlagInTheMiddle(name: "SYN", flags: GSOTest.ack | GSOTest.syn, groups: [[0, 1], [2], [3, 4, 5]]),
    FlagInTheMiddle(name: "RST", flags: GSOTest.ack | GSOTest.rst, groups: [[0, 1], [2], [3, 4, 5]]),
    FlagInTheMiddle(name: "URG", flags: GSOTest.ack | GSOTest.urg, groups: [[0, 1], [2], [3, 4, 5]]),
    // CWR may only open a super-packet.
    FlagInTheMiddle(name: "CWR", flags: GSOTest.ack | GSOTest.cwr, groups: [[0, 1], [2, 3, 4, 5]]),
    // ECE differs from the neighbours on both sides.
    FlagInTheMiddle(name: "ECE", flags: GSOTest.ack | GSOTest.ece, groups: [[0, 1], [2], [3, 4, 5]]),
])
func aFlagInTheMiddle(_ case_: FlagInTheMiddle) {
    let segments = flow(Array(repeating: 1398, count: 6)) { index, spec in if index == 2 { spec.flags = case_.flags } }
    var coalescer = Coalescer(batchCapacity: 8)
    expectGroups(coalesce(segments, with: &coalescer), inputs: segments, case_.groups)
}

@Test func aBadChecksumIsNeverMerged() {
    var coalescer = Coalescer(batchCapacity: 8)
    var segments = flow(Array(repeating: 1398, count: 6))
    segments[2] = corruptPayload(segments[2])
    expectGroups(coalesce(segments, with: &coalescer), inputs: segments, [[0, 1], [2], [3, 4, 5]])

    // A corrupt first segment cannot be a head; the next one is.
    segments = flow(Array(repeating: 1398, count: 6))
    segments[0] = corruptPayload(segments[0])
    expectGroups(coalesce(segments, with: &coalescer), inputs: segments, [[0], [1, 2, 3, 4, 5]])

    // A bad IPv4 header checksum (TTL changed after the checksum) is as bad.
    segments = flow(Array(repeating: 1398, count: 6))
    segments[3][8] = 63
    expectGroups(coalesce(segments, with: &coalescer), inputs: segments, [[0, 1, 2], [3], [4, 5]])
}

@Test func segmentSizesMustNotGrow() {
    var coalescer = Coalescer(batchCapacity: 8)
    // A short segment ends the super-packet it joins.
    let short = flow([1398, 1398, 600, 1398, 1398, 1398])
    expectGroups(coalesce(short, with: &coalescer), inputs: short, [[0, 1, 2], [3, 4, 5]])
    // A larger one cannot join; it opens its own, which the next (shorter) segment then closes.
    let larger = flow([1398, 1398, 1400, 1398, 1398, 1398])
    expectGroups(coalesce(larger, with: &coalescer), inputs: larger, [[0, 1], [2, 3], [4, 5]])
}

@Test func superPacketsStayWithin65535Bytes() {
    let segments = flow(Array(repeating: 1398, count: 50))
    var coalescer = Coalescer(batchCapacity: 64)
    // (65,535 − 52) / 1398 = 46 segments fit.
    let outputs = coalesce(segments, with: &coalescer)
    expectGroups(outputs, inputs: segments, [Array(0..<46), Array(46..<50)])
    #expect(outputs.first.map { $0.packet.count } == 52 + 46 * 1398)
}

@Test func appendedSegmentsAreGatheredWhereTheyLie() {
    // Back to back in one buffer, as received: only the head's IP and TCP headers are rewritten;
    // every other byte of the batch, the appended segments' headers included, is left as it came.
    let segments = flow(Array(repeating: 1398, count: 7))
    let batch = PackedBatch(segments)
    let before = batch.region.read(0, batch.region.size)
    var coalescer = Coalescer(batchCapacity: 8)
    expectGroups(coalesce(segments, with: &coalescer, batch: batch), inputs: segments, [Array(0..<7)])
    let after = batch.region.read(0, batch.region.size)
    let headHeaders = T.ipHeaderLength(segments[0]) + T.tcpHeaderLength(segments[0])
    #expect(after[headHeaders...] == before[headHeaders...])
}

@Test func differentHeadersAreNotMerged() {
    var coalescer = Coalescer(batchCapacity: 8)
    let sizes = Array(repeating: 1398, count: 6)
    let timestamp = flow(sizes) { index, spec in
        if index >= 3 { spec.tcpOptions = T.timestampOption(value: 0x0102_0305) }
    }
    expectGroups(coalesce(timestamp, with: &coalescer), inputs: timestamp, [[0, 1, 2], [3, 4, 5]])
    let noOptions = flow(sizes) { index, spec in if index >= 3 { spec.tcpOptions = [] } }
    expectGroups(coalesce(noOptions, with: &coalescer), inputs: noOptions, [[0, 1, 2], [3, 4, 5]])
    let ttl = flow(sizes) { index, spec in if index >= 3 { spec.timeToLive = 63 } }
    expectGroups(coalesce(ttl, with: &coalescer), inputs: ttl, [[0, 1, 2], [3, 4, 5]])
    let congestion = flow(sizes) { index, spec in if index >= 3 { spec.typeOfService = 0x03 } }  // ECN CE
    expectGroups(coalesce(congestion, with: &coalescer), inputs: congestion, [[0, 1, 2], [3, 4, 5]])
    let dontFragment = flow(sizes) { index, spec in if index >= 3 { spec.flagsFragment = 0 } }
    expectGroups(coalesce(dontFragment, with: &coalescer), inputs: dontFragment, [[0, 1, 2], [3, 4, 5]])
    let ipOptions = flow(sizes) { index, spec in spec.ipOptions = index >= 3 ? [1, 1, 1, 1] : [1, 1, 1, 0] }
    expectGroups(coalesce(ipOptions, with: &coalescer), inputs: ipOptions, [[0, 1, 2], [3, 4, 5]])
    let fragments = flow(sizes) { _, spec in spec.flagsFragment = 0x2000 }  // MF
    expectGroups(coalesce(fragments, with: &coalescer), inputs: fragments, [[0], [1], [2], [3], [4], [5]])
}

@Test func otherPacketsPassThroughUntouched() {
    let tcp = flow([1398, 1398, 1398])
    let udp = T.udpPacket(payload: T.randomBytes(300, seed: 20))
    var icmp = udp
    icmp[9] = 1
    let otherFlowAck = T.TCPSpec(sourcePort: 9999, payload: []).build()
    var version6 = tcp[0]
    version6[0] = 0x60
    let runt: [UInt8] = [0x45, 0, 0, 10, 1, 2, 3, 4, 5, 6]
    var shortTCP = T.TCPSpec(payload: []).build()
    shortTCP[32] = 0x40  // data offset 4
    let batch = [tcp[0], udp, icmp, tcp[1], otherFlowAck, version6, runt, shortTCP, tcp[2]]
    var coalescer = Coalescer(batchCapacity: 16)
    // shortTCP names tcp's flow (its data offset is out of range): tcp[2] after it does not jump ahead.
    expectGroups(coalesce(batch, with: &coalescer), inputs: batch, [[0, 3], [1], [2], [4], [5], [6], [7], [8]])
}

// Coalescing reads IP headers through the checks segmentation uses (CheckedIPHeader); each fails one.
@Test func segmentsWithMalformedIPHeadersPassThroughUntouched() {
    let defects: [(String, (inout [UInt8]) -> Void)] = [
        ("IHL 4", { $0[0] = 0x44 }),
        ("total length past the buffer", { T.put16(&$0, 2, UInt16($0.count + 1)) }),
        ("total length inside the TCP header", { T.put16(&$0, 2, 39) }),
    ]
    var coalescer = Coalescer(batchCapacity: 8)
    for (name, defect) in defects {
        let segments = flow([1398, 1398, 1398]).map { segment in
            var segment = segment
            defect(&segment)
            return segment
        }
        let outputs = coalesce(segments, with: &coalescer)
        #expect(outputs.map(\.index) == [0, 1, 2], "\(name)")
        expectGroups(outputs, inputs: segments, [[0], [1], [2]])
    }
}

@Test func anUnmergeableSegmentOfTheFlowKeepsItsPlace() {
    // A pure ACK of the same flow between data segments: nothing after it may jump ahead of it.
    let data = flow([1398, 1398, 1398, 1398])
    let ack = T.TCPSpec(sequence: T.be32(data[2], 24), payload: []).build()
    let batch = [data[0], data[1], ack, data[2], data[3]]
    var coalescer = Coalescer(batchCapacity: 8)
    expectGroups(coalesce(batch, with: &coalescer), inputs: batch, [[0, 1], [2], [3, 4]])
}

@Test(.computeLane) func batchesAreIndependent() {
    let segments = flow(Array(repeating: 1398, count: 6))
    var coalescer = Coalescer(batchCapacity: 4)
    let first = Array(segments[0..<3])
    let second = Array(segments[3..<6])
    expectGroups(coalesce(first, with: &coalescer), inputs: first, [[0, 1, 2]])
    // The flow's head from the first batch is gone: the second batch starts its own.
    expectGroups(coalesce(second, with: &coalescer), inputs: second, [[0, 1, 2]])
    // Many batches through one small table.
    for round in 0..<300 {
        let batch = flow([1000, 1000, 1000, 1000], spec: T.TCPSpec(sourcePort: UInt16(round)), seed: UInt64(round))
        let outputs = coalesce(batch, with: &coalescer)
        #expect(outputs.count == 1 && outputs.first?.header.gsoSize == 1000)
    }
}

@Test(.computeLane) func manyFlowsInAFullBatch() {
    // 64 flows of two segments each: every flow finds its own head in the table.
    var batch: [[UInt8]] = []
    let flows = (0..<64).map { flow([700, 700], spec: T.TCPSpec(sourcePort: UInt16(1000 + $0)), seed: UInt64($0)) }
    for index in 0..<2 { for segments in flows { batch.append(segments[index]) } }
    var coalescer = Coalescer(batchCapacity: 128)
    expectGroups(coalesce(batch, with: &coalescer), inputs: batch, (0..<64).map { [$0, $0 + 64] })
}

// MARK: UDP

/// Consecutive datagrams of one flow with payloads of `sizes`; `edit` adjusts datagram i before
/// its checksums are filled in.
private func udpFlow(_ sizes: [Int], seed: UInt64 = 1, edit: (Int, inout [UInt8]) -> Void = { _, _ in }) -> [[UInt8]] {
    sizes.enumerated().map { index, size in
        var datagram = T.udpPacket(
            payload: T.randomBytes(size, seed: seed &* 1000 &+ UInt64(index)),
            identification: UInt16(index)
        )
        edit(index, &datagram)
        T.fillChecksums(&datagram)
        return datagram
    }
}

@Test func udpDatagramsOfOneFlowBecomeOneSuperPacket() {
    // 64-byte packets as the harness's flood sends them, the last one shorter.
    let datagrams = udpFlow(Array(repeating: 36, count: 20) + [12])
    var coalescer = Coalescer(batchCapacity: 64, udp: true)
    let outputs = coalesce(datagrams, with: &coalescer)
    expectGroups(outputs, inputs: datagrams, [Array(datagrams.indices)])

    // Split again as the kernel would (USO), it is the same datagrams, each with a valid checksum.
    guard let output = outputs.first else { return }
    let (input, packet) = GSOTestRegion.holding(output.packet)
    let region = GSOTestRegion(size: 4096)
    let result = withExtendedLifetime(input) {
        Segmentation.segment(packet, header: output.header, into: region.base, capacity: region.size)
    }
    guard case .segmented(let layout) = result else {
        Issue.record("dropped: \(result)")
        return
    }
    #expect(layout.count == datagrams.count)
    for index in 0..<min(layout.count, datagrams.count) {
        let datagram = region.read(layout.offset(ofSegment: index), layout.length(ofSegment: index))
        #expect(datagram.count == datagrams[index].count)
        #expect(Array(datagram.dropFirst(28)) == Array(datagrams[index].dropFirst(28)), "payload \(index)")
        #expect(T.ipHeaderValid(datagram) && T.transportChecksumValid(datagram), "checksums of \(index)")
    }
}

@Test func udpIsLeftAloneUnlessAsked() {
    let datagrams = udpFlow(Array(repeating: 36, count: 4))
    var coalescer = Coalescer(batchCapacity: 8)
    expectGroups(coalesce(datagrams, with: &coalescer), inputs: datagrams, [[0], [1], [2], [3]])
}

@Test func udpDatagramSizesMustNotGrow() {
    var coalescer = Coalescer(batchCapacity: 8, udp: true)
    let short = udpFlow([500, 500, 200, 500, 500])
    expectGroups(coalesce(short, with: &coalescer), inputs: short, [[0, 1, 2], [3, 4]])
    let larger = udpFlow([500, 500, 501, 500, 500])
    expectGroups(coalesce(larger, with: &coalescer), inputs: larger, [[0, 1], [2, 3], [4]])
    // An empty datagram neither joins nor opens a super-packet.
    let empty = udpFlow([500, 500, 0, 500, 500])
    expectGroups(coalesce(empty, with: &coalescer), inputs: empty, [[0, 1], [2], [3, 4]])
}

@Test func udpChecksumsVerifyOrAreNone() {
    var coalescer = Coalescer(batchCapacity: 8, udp: true)
    var datagrams = udpFlow(Array(repeating: 300, count: 6))
    datagrams[2] = corruptPayload(datagrams[2])
    expectGroups(coalesce(datagrams, with: &coalescer), inputs: datagrams, [[0, 1], [2], [3, 4, 5]])
    // Checksum 0 means "none": nothing to verify, and the super-packet gets computed checksums.
    datagrams = udpFlow(Array(repeating: 300, count: 6))
    for index in datagrams.indices {
        datagrams[index][26] = 0
        datagrams[index][27] = 0
    }
    expectGroups(coalesce(datagrams, with: &coalescer), inputs: datagrams, [Array(0..<6)])
}

@Test func udpSuperPacketsHoldAtMost64Datagrams() {
    let datagrams = udpFlow(Array(repeating: 36, count: 70))
    var coalescer = Coalescer(batchCapacity: 128, udp: true)
    expectGroups(coalesce(datagrams, with: &coalescer), inputs: datagrams, [Array(0..<64), Array(64..<70)])
    // And within 65,535 bytes: (65,535 − 28) / 1400 = 46 datagrams of 1,400 bytes.
    let large = udpFlow(Array(repeating: 1400, count: 50))
    expectGroups(coalesce(large, with: &coalescer), inputs: large, [Array(0..<46), Array(46..<50)])
}

@Test func udpDatagramsThatDifferAreNotMerged() {
    var coalescer = Coalescer(batchCapacity: 8, udp: true)
    let sizes = Array(repeating: 300, count: 6)
    let ttl = udpFlow(sizes) { index, datagram in if index >= 3 { datagram[8] = 63 } }
    expectGroups(coalesce(ttl, with: &coalescer), inputs: ttl, [[0, 1, 2], [3, 4, 5]])
    let otherPort = udpFlow(sizes) { index, datagram in if index % 2 == 1 { datagram[23] = 54 } }
    expectGroups(coalesce(otherPort, with: &coalescer), inputs: otherPort, [[0, 2, 4], [1, 3, 5]])
    // A UDP length shorter than the IP payload (trailing bytes) is passed through untouched, as
    // anything the coalescer does not take is, and keeps its place: the datagrams after it start
    // a new super-packet rather than move ahead of it in the one before.
    let trailing = udpFlow(sizes) { index, datagram in if index == 3 { T.put16(&datagram, 24, 8 + 200) } }
    expectGroups(coalesce(trailing, with: &coalescer), inputs: trailing, [[0, 1, 2], [3], [4, 5]])
    let fragments = udpFlow(sizes) { _, datagram in T.put16(&datagram, 6, 0x2000) }  // MF
    expectGroups(coalesce(fragments, with: &coalescer), inputs: fragments, [[0], [1], [2], [3], [4], [5]])
    // A first fragment of the flow between whole datagrams keeps its place the same way; a later
    // fragment (no ports) names no flow and changes nothing.
    let firstFragment = udpFlow(sizes) { index, datagram in if index == 2 { T.put16(&datagram, 6, 0x2000) } }
    expectGroups(coalesce(firstFragment, with: &coalescer), inputs: firstFragment, [[0, 1], [2], [3, 4, 5]])
    let laterFragment = udpFlow(sizes) { index, datagram in if index == 2 { T.put16(&datagram, 6, 0x0010) } }
    expectGroups(coalesce(laterFragment, with: &coalescer), inputs: laterFragment, [[0, 1, 3, 4, 5], [2]])
}

@Test func tcpAndUDPWithTheSamePortsAreSeparateFlows() {
    let datagrams = udpFlow(Array(repeating: 1000, count: 3))
    let segments = flow(Array(repeating: 1000, count: 3), spec: T.TCPSpec(sourcePort: 53, destinationPort: 5353))
    let batch = [datagrams[0], segments[0], datagrams[1], segments[1], datagrams[2], segments[2]]
    var coalescer = Coalescer(batchCapacity: 8, udp: true)
    expectGroups(coalesce(batch, with: &coalescer), inputs: batch, [[0, 2, 4], [1, 3, 5]])
}
