import Packets
import TestSupport
import Testing

/// Packet building and checking for the segmentation and coalescing tests, written independently
/// of the code under test: byte arrays, big-endian word by word, RFC 1071 done the slow way.
enum GSOTest {
    static let ack: UInt8 = 0x10, psh: UInt8 = 0x08, fin: UInt8 = 0x01, syn: UInt8 = 0x02
    static let rst: UInt8 = 0x04, urg: UInt8 = 0x20, ece: UInt8 = 0x40, cwr: UInt8 = 0x80

    static func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var random = SplitMix64(seed: seed)
        return random.bytes(count)
    }

    static func be16(_ bytes: [UInt8], _ offset: Int) -> UInt16 {
        UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }
    static func be32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        UInt32(be16(bytes, offset)) << 16 | UInt32(be16(bytes, offset + 2))
    }
    static func put16(_ bytes: inout [UInt8], _ offset: Int, _ value: UInt16) {
        bytes[offset] = UInt8(value >> 8)
        bytes[offset + 1] = UInt8(value & 0xFF)
    }
    static func put32(_ bytes: inout [UInt8], _ offset: Int, _ value: UInt32) {
        put16(&bytes, offset, UInt16(value >> 16))
        put16(&bytes, offset + 2, UInt16(value & 0xFFFF))
    }

    /// One's-complement sum of big-endian 16-bit words, folded, not inverted.
    static func slowSum(_ bytes: ArraySlice<UInt8>, initial: UInt64 = 0) -> UInt16 {
        var sum = initial
        var index = bytes.startIndex
        while index + 1 < bytes.endIndex {
            sum += UInt64(bytes[index]) << 8 | UInt64(bytes[index + 1])
            index += 2
        }
        if index < bytes.endIndex { sum += UInt64(bytes[index]) << 8 }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        return UInt16(sum)
    }

    /// Where two byte strings first differ, for short failure messages; nil when equal.
    static func firstDifference(_ a: [UInt8], _ b: [UInt8]) -> String? {
        if let index = (0..<min(a.count, b.count)).first(where: { a[$0] != b[$0] }) {
            return "byte \(index): \(a[index]) vs \(b[index])"
        }
        return a.count == b.count ? nil : "lengths \(a.count) vs \(b.count)"
    }

    static func ipHeaderLength(_ packet: [UInt8]) -> Int { Int(packet[0] & 0x0F) * 4 }
    static func tcpHeaderLength(_ packet: [UInt8]) -> Int { Int(packet[ipHeaderLength(packet) + 12] >> 4) * 4 }

    /// Pseudo-header words: source, destination, protocol, transport length.
    static func pseudoHeader(_ packet: [UInt8], protocol proto: UInt8, length: Int) -> UInt64 {
        UInt64(be16(packet, 12)) + UInt64(be16(packet, 14)) + UInt64(be16(packet, 16)) + UInt64(be16(packet, 18))
            + UInt64(proto) + UInt64(length)
    }

    static func ipHeaderValid(_ packet: [UInt8]) -> Bool {
        slowSum(packet[0..<ipHeaderLength(packet)]) == 0xFFFF
    }

    static func transportChecksumValid(_ packet: [UInt8]) -> Bool {
        let start = ipHeaderLength(packet)
        let end = Int(be16(packet, 2))
        return slowSum(packet[start..<end], initial: pseudoHeader(packet, protocol: packet[9], length: end - start))
            == 0xFFFF
    }

    /// Stores fresh IP and transport checksums (wire order) into a built packet.
    static func fillChecksums(_ packet: inout [UInt8]) {
        let ipLength = ipHeaderLength(packet)
        put16(&packet, 10, 0)
        put16(&packet, 10, ~slowSum(packet[0..<ipLength]))
        let end = Int(be16(packet, 2))
        let field = ipLength + (packet[9] == 6 ? 16 : 6)
        put16(&packet, field, 0)
        put16(
            &packet,
            field,
            ~slowSum(packet[ipLength..<end], initial: pseudoHeader(packet, protocol: packet[9], length: end - ipLength))
        )
    }

    /// NOP, NOP, timestamps: the 12 option bytes Linux puts on every data segment.
    static func timestampOption(value: UInt32 = 0x0102_0304, echo: UInt32 = 0x0A0B_0C0D) -> [UInt8] {
        var option: [UInt8] = [1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0]
        put32(&option, 4, value)
        put32(&option, 8, echo)
        return option
    }

    struct TCPSpec {
        var source: [UInt8] = [10, 244, 1, 2]
        var destination: [UInt8] = [10, 244, 2, 3]
        var sourcePort: UInt16 = 40_000
        var destinationPort: UInt16 = 5201
        var sequence: UInt32 = 1000
        var acknowledgment: UInt32 = 0x7777_0000
        var flags: UInt8 = GSOTest.ack
        var window: UInt16 = 502
        var identification: UInt16 = 100
        var typeOfService: UInt8 = 0
        var timeToLive: UInt8 = 64
        var flagsFragment: UInt16 = 0x4000  // DF
        var ipOptions: [UInt8] = []
        var tcpOptions: [UInt8] = GSOTest.timestampOption()
        var payload: [UInt8] = []

        var headersLength: Int { 40 + ipOptions.count + tcpOptions.count }

        func build() -> [UInt8] {
            let ipLength = 20 + ipOptions.count
            let tcpLength = 20 + tcpOptions.count
            var packet = [UInt8](repeating: 0, count: ipLength + tcpLength + payload.count)
            packet[0] = 0x40 | UInt8(ipLength / 4)
            packet[1] = typeOfService
            put16(&packet, 2, UInt16(packet.count))
            put16(&packet, 4, identification)
            put16(&packet, 6, flagsFragment)
            packet[8] = timeToLive
            packet[9] = 6
            packet.replaceSubrange(12..<16, with: source)
            packet.replaceSubrange(16..<20, with: destination)
            packet.replaceSubrange(20..<ipLength, with: ipOptions)
            put16(&packet, ipLength, sourcePort)
            put16(&packet, ipLength + 2, destinationPort)
            put32(&packet, ipLength + 4, sequence)
            put32(&packet, ipLength + 8, acknowledgment)
            packet[ipLength + 12] = UInt8(tcpLength / 4) << 4
            packet[ipLength + 13] = flags
            put16(&packet, ipLength + 14, window)
            packet.replaceSubrange(ipLength + 20..<ipLength + tcpLength, with: tcpOptions)
            packet.replaceSubrange(ipLength + tcpLength..<packet.count, with: payload)
            fillChecksums(&packet)
            return packet
        }
    }

    /// An IPv4 UDP datagram with valid checksums.
    static func udpPacket(payload: [UInt8], identification: UInt16 = 9) -> [UInt8] {
        var packet = [UInt8](repeating: 0, count: 28 + payload.count)
        packet[0] = 0x45
        put16(&packet, 2, UInt16(packet.count))
        put16(&packet, 4, identification)
        packet[8] = 64
        packet[9] = 17
        packet.replaceSubrange(12..<20, with: [10, 244, 1, 2, 10, 244, 2, 3])
        put16(&packet, 20, 53)
        put16(&packet, 22, 5353)
        put16(&packet, 24, UInt16(8 + payload.count))
        packet.replaceSubrange(28..<packet.count, with: payload)
        fillChecksums(&packet)
        return packet
    }

    /// The virtio header Linux puts on a TSO super-packet from a local socket.
    static func tsoHeader(for packet: [UInt8], mss: Int, ecn: Bool = false) -> VirtioNetHeader {
        let ipLength = ipHeaderLength(packet)
        return VirtioNetHeader(
            flags: .needsChecksum,
            gsoType: VirtioNetHeader.GSOType.tcpV4.withECN(ecn),
            headerLength: UInt16(ipLength + tcpHeaderLength(packet)),
            gsoSize: UInt16(mss),
            checksumStart: UInt16(ipLength),
            checksumOffset: 16
        )
    }

    /// The TCP or UDP checksum field as Linux leaves it for CHECKSUM_PARTIAL: the folded
    /// pseudo-header sum.
    static func partialChecksum(_ packet: [UInt8]) -> UInt16 {
        let ipLength = ipHeaderLength(packet)
        return slowSum([], initial: pseudoHeader(packet, protocol: packet[9], length: Int(be16(packet, 2)) - ipLength))
    }
}

/// Caller memory for tests: a zero-filled (or patterned) allocation freed with the object.
final class GSOTestRegion {
    let base: UnsafeMutableRawPointer
    let size: Int

    init(size: Int, fill: UInt8 = 0) {
        self.size = size
        base = .allocate(byteCount: max(size, 1), alignment: 16)
        base.initializeMemory(as: UInt8.self, repeating: fill, count: max(size, 1))
    }

    deinit { base.deallocate() }

    func write(_ bytes: [UInt8], at offset: Int) {
        bytes.withUnsafeBytes { (base + offset).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
    }

    func read(_ offset: Int, _ count: Int) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: base + offset, count: count))
    }

    /// A region holding `packet` after `headroom` bytes, as a PacketBuffer over the whole region.
    static func holding(_ packet: [UInt8], headroom: Int = 16, capacity: Int? = nil) -> (GSOTestRegion, PacketBuffer) {
        let region = GSOTestRegion(size: capacity ?? headroom + packet.count)
        region.write(packet, at: headroom)
        return (
            region, PacketBuffer(base: region.base, headroom: headroom, length: packet.count, capacity: region.size)
        )
    }
}

@Test func slowChecksumMatchesRFC1071Example() {
    // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (folded).
    #expect(GSOTest.slowSum([0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7]) == 0xDDF2)
    // A captured IPv4 header (192.168.0.1 → 192.168.0.199, UDP) whose checksum field is 0xb861.
    let header: [UInt8] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xB8, 0x61,
        0xC0, 0xA8, 0x00, 0x01, 0xC0, 0xA8, 0x00, 0xC7,
    ]
    #expect(GSOTest.ipHeaderValid(header))
    var zeroed = header
    GSOTest.put16(&zeroed, 10, 0)
    #expect(~GSOTest.slowSum(zeroed[...]) == 0xB861)
    let packet = GSOTest.TCPSpec(payload: GSOTest.randomBytes(333, seed: 1)).build()
    #expect(GSOTest.ipHeaderValid(packet))
    #expect(GSOTest.transportChecksumValid(packet))
}
