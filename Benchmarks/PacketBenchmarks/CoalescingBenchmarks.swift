import Addressing
import Benchmark
import Packets

/// Receive-side coalescing of one 64 KB TCP stream's worth of segments, as a UDP_GRO receive
/// hands them in (back to back in one buffer), for IPv4 and IPv6. Each iteration is one batch.
func registerCoalescingBenchmarks() {
    for isIPv6 in [false, true] {
        Benchmark("coalesce 44 TCP segments of 1448 B (\(isIPv6 ? "IPv6" : "IPv4"))") { benchmark in
            let batch = SegmentBatch(count: 44, payload: 1448, isIPv6: isIPv6)
            defer { batch.release() }
            var coalescer = Coalescer(batchCapacity: 64)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                blackHole(batch.coalesce(with: &coalescer))
            }
        }
    }
}

/// `count` consecutive segments of one flow back to back in one allocation, with the write
/// arrays a batch needs (benchmark set-up only).
private final class SegmentBatch {
    let region: UnsafeMutableRawPointer
    let headersRoom: UnsafeMutableRawPointer
    var packets: [PacketBuffer] = []
    var writes: [CoalescedWrite]
    var pieces: [GatherPiece]
    /// The first segment's headers, put back before every batch: coalescing rewrites the head's.
    let headLength: Int
    let savedHead: UnsafeMutableRawPointer

    init(count: Int, payload: Int, isIPv6: Bool) {
        let ipLength = isIPv6 ? 40 : 20
        let segmentLength = ipLength + 20 + payload
        region = .allocate(byteCount: count * segmentLength, alignment: 64)
        headersRoom = .allocate(byteCount: count * VirtioNetHeader.size, alignment: 16)
        for index in 0..<count {
            let packet = PacketBuffer(
                base: region,
                headroom: index * segmentLength,
                length: segmentLength,
                capacity: count * segmentLength
            )
            packet.start.initializeMemory(
                as: UInt8.self,
                repeating: UInt8(truncatingIfNeeded: index),
                count: segmentLength
            )
            if isIPv6 {
                IPv6Header(packet).initialize(
                    payloadLength: segmentLength - 40,
                    nextHeader: IPProtocol.tcp,
                    hopLimit: 64,
                    source: IPv6Address("fc00:0:0:1::2")!,
                    destination: IPv6Address("fc00:0:0:2::3")!
                )
            } else {
                writeSampleIPv4Header(packet, protocol: IPProtocol.tcp, flags: 0x4000)
            }
            packet.store16(40000, at: ipLength)
            packet.store16(5201, at: ipLength + 2)
            packet.store32(1000 &+ UInt32(index * payload), at: ipLength + 4)
            packet.store32(1, at: ipLength + 8)
            packet[ipLength + 12] = 0x50
            packet[ipLength + 13] = 0x10
            packet.store16(512, at: ipLength + 14)
            packet.store16(0, at: ipLength + 18)
            TransportChecksum.store(packet)
            packets.append(packet)
        }
        writes = Array(repeating: CoalescedWrite(packet: 0, firstPiece: 0, pieceCount: 0, byteCount: 0), count: count)
        pieces = Array(repeating: GatherPiece(start: headersRoom, count: 0), count: 2 * count)
        headLength = ipLength + 20
        savedHead = .allocate(byteCount: headLength, alignment: 16)
        savedHead.copyMemory(from: region, byteCount: headLength)
    }

    func coalesce(with coalescer: inout Coalescer) -> Int {
        region.copyMemory(from: savedHead, byteCount: headLength)
        return packets.withUnsafeMutableBufferPointer { packets in
            writes.withUnsafeMutableBufferPointer { writes in
                pieces.withUnsafeMutableBufferPointer {
                    coalescer.coalesce(packets, headers: headersRoom, into: writes, pieces: $0)
                }
            }
        }
    }

    func release() {
        region.deallocate()
        headersRoom.deallocate()
        savedHead.deallocate()
    }
}
