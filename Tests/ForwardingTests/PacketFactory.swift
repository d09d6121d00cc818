import Addressing
import Packets

/// Builds test packets byte by byte, with checksums from a reference written here, independently
/// of the code under test: a plain loop over big-endian 16-bit words.
enum Reference {
    static func checksum(_ bytes: some Collection<UInt8>) -> UInt16 {
        var sum: UInt32 = 0
        var iterator = bytes.makeIterator()
        while let high = iterator.next() {
            let low = iterator.next() ?? 0
            sum += UInt32(high) << 8 | UInt32(low)
        }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        return ~UInt16(sum)
    }

    static func word(_ bytes: [UInt8], _ at: Int) -> UInt16 { UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1]) }

    static func address(_ bytes: [UInt8], _ at: Int) -> IPv4Address {
        IPv4Address(bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3])
    }

    /// An IPv4/UDP packet with valid header and UDP checksums.
    static func udpPacket(
        from source: IPv4Address,
        to destination: IPv4Address,
        ttl: UInt8 = 64,
        payload: [UInt8] = Array("weft".utf8),
        identification: UInt16 = 0x1234
    ) -> [UInt8] {
        let udpLength = 8 + payload.count
        let total = 20 + udpLength
        var header: [UInt8] = [
            0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF),
            UInt8(identification >> 8), UInt8(identification & 0xFF), 0x40, 0,
            ttl, 17, 0, 0,
        ]
        header += bytes(source) + bytes(destination)
        let headerChecksum = checksum(header)
        header[10] = UInt8(headerChecksum >> 8)
        header[11] = UInt8(headerChecksum & 0xFF)
        var udp: [UInt8] = [0x9C, 0x40, 0x00, 0x09, UInt8(udpLength >> 8), UInt8(udpLength & 0xFF), 0, 0] + payload
        let pseudo = bytes(source) + bytes(destination) + [0, 17, UInt8(udpLength >> 8), UInt8(udpLength & 0xFF)]
        let udpChecksum = checksum(pseudo + udp)
        udp[6] = UInt8(udpChecksum >> 8)
        udp[7] = UInt8(udpChecksum & 0xFF)
        return header + udp
    }

    static func bytes(_ address: IPv4Address) -> [UInt8] {
        let (a, b, c, d) = address.octets
        return [a, b, c, d]
    }

    static func bytes(_ mac: MACAddress) -> [UInt8] { mac.bytes }

    /// The same packet with its TTL lowered by one and the header checksum recomputed from scratch.
    static func decrementingTTL(_ packet: [UInt8]) -> [UInt8] {
        var result = packet
        result[8] -= 1
        let headerLength = Int(result[0] & 0x0F) * 4
        result[10] = 0
        result[11] = 0
        let value = checksum(result[0..<headerLength])
        result[10] = UInt8(value >> 8)
        result[11] = UInt8(value & 0xFF)
        return result
    }

    static func vxlanFrame(
        vni: UInt32,
        destination: MACAddress,
        source: MACAddress,
        inner: [UInt8],
        flags: UInt8 = 0x08,
        etherType: UInt16 = 0x0800
    ) -> [UInt8] {
        [flags, 0, 0, 0, UInt8(vni >> 16), UInt8((vni >> 8) & 0xFF), UInt8(vni & 0xFF), 0]
            + bytes(destination) + bytes(source) + [UInt8(etherType >> 8), UInt8(etherType & 0xFF)] + inner
    }
}

/// A test's packet memory: `headroom` free bytes, then the packet, then tailroom. Owns its memory.
final class TestBuffer {
    let base: UnsafeMutableRawPointer
    let capacity: Int
    var packet: PacketBuffer

    init(_ bytes: [UInt8], headroom: Int = 64, tailroom: Int = 64) {
        let capacity = headroom + bytes.count + tailroom
        let base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        base.initializeMemory(as: UInt8.self, repeating: 0xEE, count: capacity)
        bytes.withUnsafeBytes {
            if let source = $0.baseAddress { (base + headroom).copyMemory(from: source, byteCount: bytes.count) }
        }
        self.capacity = capacity
        self.base = base
        packet = PacketBuffer(base: base, headroom: headroom, length: bytes.count, capacity: capacity)
    }

    deinit { base.deallocate() }

    var bytes: [UInt8] { Array(UnsafeRawBufferPointer(start: packet.start, count: packet.length)) }
}
