import Addressing
import Benchmark
import Packets

// Each benchmark times `scaledIterations` packets, so the reported time per iteration is per packet.
// The buffers are made once, outside the measured loop.

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .instructions],
        scalingFactor: .kilo,
        maxDuration: .seconds(2)
    )

    for size in [64, 1500] {
        Benchmark("checksum \(size) B") { benchmark in
            let bytes = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
            defer { bytes.deallocate() }
            for i in 0..<size {
                bytes.storeBytes(of: UInt8(truncatingIfNeeded: i &* 31), toByteOffset: i, as: UInt8.self)
            }
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                blackHole(InternetChecksum.checksum(bytes, count: size))
            }
        }
    }

    // VXLAN encapsulation followed by the decapsulation that undoes it, on one 1400-byte inner packet:
    // the pair leaves the buffer as it was, so each iteration starts from the same state.
    Benchmark("vxlan encap+decap 1400 B") { benchmark in
        let sample = SamplePacket(payload: 1400 - 28)
        defer { sample.release() }
        let local = MACAddress(0x02_00_00_00_00_01)
        let peer = MACAddress(0x02_00_00_00_00_02)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            var packet = sample.packet
            _ = VXLAN.encapsulate(&packet, vni: 1, source: peer, destination: local)
            blackHole(VXLAN.decapsulate(&packet, vni: 1, localMAC: local))
        }
    }

    Benchmark("vxlan encap 1400 B") { benchmark in
        let sample = SamplePacket(payload: 1400 - 28)
        defer { sample.release() }
        let local = MACAddress(0x02_00_00_00_00_01)
        let peer = MACAddress(0x02_00_00_00_00_02)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            var packet = sample.packet
            blackHole(VXLAN.encapsulate(&packet, vni: 1, source: local, destination: peer))
            blackHole(VXLAN.sourcePort(forInner: sample.packet))
        }
    }

    Benchmark("udp-backend decap + TTL 1400 B") { benchmark in
        let sample = SamplePacket(payload: 1400 - 28)
        defer { sample.release() }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            var packet = sample.packet
            blackHole(UDPBackend.decapsulate(&packet))
            // Restore the TTL so every iteration decrements from the same value.
            blackHole(IPv4.decrementTTL(packet))
            IPv4Header(packet).ttl = 64
        }
    }

    registerRouteBenchmarks()
    registerCoalescingBenchmarks()
    registerForwarderBenchmarks()
}

/// A 20-byte IPv4 header from 10.244.1.2 to 10.244.2.3 covering the whole packet, checksum set.
func writeSampleIPv4Header(_ packet: PacketBuffer, protocol proto: UInt8, flags: UInt16) {
    let header = IPv4Header(packet)
    packet[0] = 0x45
    packet[1] = 0
    header.totalLength = packet.length
    header.identification = 7
    packet.store16(flags, at: 6)
    header.ttl = 64
    header.protocol = proto
    header.source = IPv4Address(10, 244, 1, 2)
    header.destination = IPv4Address(10, 244, 2, 3)
    header.storeChecksum()
}

/// One valid IPv4/UDP packet with 64 bytes of headroom, built once per benchmark.
struct SamplePacket {
    let base: UnsafeMutableRawPointer
    let packet: PacketBuffer

    init(payload: Int) {
        let headroom = 64
        let length = 28 + payload
        base = UnsafeMutableRawPointer.allocate(byteCount: headroom + length, alignment: 64)
        base.initializeMemory(as: UInt8.self, repeating: 0xA5, count: headroom + length)
        var packet = PacketBuffer(base: base, headroom: headroom, length: length, capacity: headroom + length)
        writeSampleIPv4Header(packet, protocol: IPProtocol.udp, flags: 0)
        packet.store16(40000, at: 20)
        packet.store16(5201, at: 22)
        packet.store16(UInt16(8 + payload), at: 24)
        _ = TransportChecksum.store(packet)
        _ = IPv4.validateAndTrim(&packet)
        self.packet = packet
    }

    func release() { base.deallocate() }
}
