import Addressing
import Forwarding
import Packets
import Testing

@testable import Engine

/// What a worker writes back to its TUN for a packet a learned path MTU cannot carry, counted by
/// family: ICMP fragmentation needed for IPv4 with DF, ICMPv6 Packet Too Big for IPv6. No kernel:
/// the answer is made in the packet's own buffer.
@Suite struct PathMTUAnswerTests {
    static let forwarder = Forwarder(
        backend: .udp,
        localSubnet: IPv4Prefix(IPv4Address(10, 244, 1, 0), length: 24),
        ipv6Subnet: IPv6Prefix("fc00:0:0:1::/64")!,
        overlayMTU: 1472
    )

    /// A UDP packet of `total` bytes from container 1 to container 2: IPv6 (fc00::), or IPv4 with DF.
    static func packet(ipv6: Bool, total: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0x5A, count: total)
        if ipv6 {
            let payload = total - 40
            bytes.replaceSubrange(0..<8, with: [0x60, 0, 0, 0, UInt8(payload >> 8), UInt8(payload & 0xFF), 17, 64])
            bytes.replaceSubrange(8..<24, with: IPv6Address("fc00:0:0:1::2")!.networkBytes)
            bytes.replaceSubrange(24..<40, with: IPv6Address("fc00:0:0:2::2")!.networkBytes)
        } else {
            bytes.replaceSubrange(
                0..<10,
                with: [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0, 1, 0x40, 0, 64, 17]
            )
            bytes.replaceSubrange(10..<20, with: [0, 0, 10, 244, 1, 2, 10, 244, 2, 2])
            // In memory order, as InternetChecksum gives it.
            bytes.withUnsafeMutableBytes { raw in
                raw.storeBytes(
                    of: InternetChecksum.checksum(raw.baseAddress!, count: 20),
                    toByteOffset: 10,
                    as: UInt16.self
                )
            }
        }
        let header = ipv6 ? 40 : 20
        let udpLength = total - header
        bytes.replaceSubrange(
            header..<header + 8,
            with: [0x9C, 0x40, 0x00, 0x09, UInt8(udpLength >> 8), UInt8(udpLength & 0xFF), 0, 0]
        )
        return bytes
    }

    /// `answer` on `bytes` with a path MTU of `pathMTU`: the reply's bytes (nil when none) and
    /// the worker's counts of each kind.
    static func answer(_ bytes: [UInt8], pathMTU: Int) -> (reply: [UInt8]?, statistics: EngineStatistics) {
        let counters = EngineCounters(workerCount: 1)
        let paths = PathMTUs(
            socket: -1,
            counters: counters.workers[0],
            encapsulation: 0,
            reports: PathMTUReports(log: { _ in })
        )
        let headroom = 64
        let base = UnsafeMutableRawPointer.allocate(byteCount: headroom + bytes.count, alignment: 16)
        defer { base.deallocate() }
        bytes.withUnsafeBytes { (base + headroom).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        let payload = PacketBuffer(
            base: base,
            headroom: headroom,
            length: bytes.count,
            capacity: headroom + bytes.count
        )
        let reply = paths.answer(payload, pathMTU: pathMTU, forwarder: forwarder).map {
            [UInt8](UnsafeRawBufferPointer(start: $0.start, count: $0.length))
        }
        return (reply, counters.snapshot())
    }

    @Test func anIPv6PacketGetsPacketTooBigCountedAsSuch() throws {
        // 1400 - 28 outer bytes leave 1372 for the inner packet: at least IPv6's 1280, so answered.
        let (reply, statistics) = Self.answer(Self.packet(ipv6: true, total: 1450), pathMTU: 1400)
        let bytes = try #require(reply)
        #expect(bytes[0] >> 4 == 6 && bytes[6] == 58, "ICMPv6")
        #expect(bytes[40] == 2 && bytes[41] == 0, "Packet Too Big")
        #expect(UInt32(bytes[44]) << 24 | UInt32(bytes[45]) << 16 | UInt32(bytes[46]) << 8 | UInt32(bytes[47]) == 1372)
        #expect(statistics[.packetTooBigSent] == 1)
        #expect(statistics[.fragmentationNeededSent] == 0)
        #expect(statistics.drops[.exceedsPathMTU] == 1)
    }

    @Test func anIPv4PacketWithDFGetsFragmentationNeededCountedAsSuch() throws {
        let (reply, statistics) = Self.answer(Self.packet(ipv6: false, total: 1450), pathMTU: 1400)
        let bytes = try #require(reply)
        #expect(bytes[0] == 0x45 && bytes[9] == 1, "ICMP")
        #expect(bytes[20] == 3 && bytes[21] == 4, "fragmentation needed")
        #expect(UInt16(bytes[26]) << 8 | UInt16(bytes[27]) == 1372)
        #expect(statistics[.fragmentationNeededSent] == 1)
        #expect(statistics[.packetTooBigSent] == 0)
    }

    @Test func belowIPv6sMinimumMTUNothingIsAnsweredOrCounted() {
        // 1300 - 28 = 1272 < 1280: the packet goes whole, to be fragmented on the way.
        let (reply, statistics) = Self.answer(Self.packet(ipv6: true, total: 1450), pathMTU: 1300)
        #expect(reply == nil)
        #expect(statistics[.packetTooBigSent] == 0 && statistics[.fragmentationNeededSent] == 0)
    }
}
