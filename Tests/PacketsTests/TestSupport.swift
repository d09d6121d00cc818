import Addressing
import Packets
import TestSupport

/// Memory a test owns, with a `PacketBuffer` into it: the packet's bytes start after `headroom`.
final class TestBuffer {
    let base: UnsafeMutableRawPointer
    let capacity: Int

    init(capacity: Int = 4096) {
        self.capacity = capacity
        base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        base.initializeMemory(as: UInt8.self, repeating: 0xEE, count: capacity)
    }

    deinit { base.deallocate() }

    /// Copies `bytes` in at `headroom` and returns the view.
    func packet(_ bytes: [UInt8], headroom: Int = 64) -> PacketBuffer {
        precondition(headroom + bytes.count <= capacity)
        bytes.withUnsafeBytes { (base + headroom).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        return PacketBuffer(base: base, headroom: headroom, length: bytes.count, capacity: capacity)
    }
}

extension PacketBuffer {
    var bytes: [UInt8] { (0..<length).map { self[$0] } }
}

/// RFC 1071 the slow way: big-endian 16-bit words, odd byte padded with zero on the right,
/// 32-bit accumulator folded until it fits. Returns the wire number of the checksum.
func referenceChecksum(_ bytes: [UInt8]) -> UInt16 {
    var total: UInt32 = 0
    var index = 0
    while index < bytes.count {
        let high = UInt32(bytes[index])
        let low = index + 1 < bytes.count ? UInt32(bytes[index + 1]) : 0
        total += high * 256 + low
        while total > 0xFFFF { total = (total & 0xFFFF) + (total >> 16) }
        index += 2
    }
    return ~UInt16(total)
}

/// Pseudo-header bytes for TCP/UDP over IPv4, written out as bytes.
func pseudoHeader(source: [UInt8], destination: [UInt8], protocol proto: UInt8, length: Int) -> [UInt8] {
    source + destination + [0, proto, UInt8(length >> 8), UInt8(length & 0xFF)]
}

func hex(_ text: String) -> [UInt8] {
    let digits = text.filter { !$0.isWhitespace }
    var result: [UInt8] = []
    var index = digits.startIndex
    while index < digits.endIndex {
        let next = digits.index(index, offsetBy: 2)
        result.append(UInt8(digits[index..<next], radix: 16)!)
        index = next
    }
    return result
}

func be16(_ bytes: [UInt8], _ offset: Int) -> UInt16 { UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1]) }

/// An IPv4 packet built byte by byte (not through the module), header checksum by the reference.
func makeIPv4(
    source: [UInt8] = [10, 244, 1, 5],
    destination: [UInt8] = [10, 244, 9, 9],
    protocol proto: UInt8 = 17,
    ttl: UInt8 = 64,
    identification: UInt16 = 0x1234,
    flagsAndOffset: UInt16 = 0x4000,
    options: [UInt8] = [],
    payload: [UInt8] = Array(0..<32),
    totalLength: Int? = nil
) -> [UInt8] {
    precondition(options.count % 4 == 0)
    let headerLength = 20 + options.count
    let total = totalLength ?? headerLength + payload.count
    var header: [UInt8] =
        [
            0x40 | UInt8(headerLength / 4), 0, UInt8(total >> 8), UInt8(total & 0xFF),
            UInt8(identification >> 8), UInt8(identification & 0xFF), UInt8(flagsAndOffset >> 8),
            UInt8(flagsAndOffset & 0xFF),
            ttl, proto, 0, 0,
        ] + source + destination + options
    let checksum = referenceChecksum(header)
    header[10] = UInt8(checksum >> 8)
    header[11] = UInt8(checksum & 0xFF)
    return header + payload
}

/// A UDP segment (header + payload) with its checksum by the reference.
func makeUDP(
    source: [UInt8],
    destination: [UInt8],
    sourcePort: UInt16,
    destinationPort: UInt16,
    payload: [UInt8]
) -> [UInt8] {
    let length = 8 + payload.count
    var segment: [UInt8] =
        [
            UInt8(sourcePort >> 8), UInt8(sourcePort & 0xFF), UInt8(destinationPort >> 8),
            UInt8(destinationPort & 0xFF), UInt8(length >> 8), UInt8(length & 0xFF), 0, 0,
        ] + payload
    var checksum = referenceChecksum(
        pseudoHeader(source: source, destination: destination, protocol: 17, length: length) + segment
    )
    if checksum == 0 { checksum = 0xFFFF }
    segment[6] = UInt8(checksum >> 8)
    segment[7] = UInt8(checksum & 0xFF)
    return segment
}

/// Pseudo-header bytes for TCP/UDP/ICMPv6 over IPv6 (RFC 8200 §8.1), written out as bytes.
func pseudoHeaderV6(source: [UInt8], destination: [UInt8], nextHeader: UInt8, length: Int) -> [UInt8] {
    source + destination + [
        UInt8(truncatingIfNeeded: length >> 24), UInt8(truncatingIfNeeded: length >> 16),
        UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length), 0, 0, 0, nextHeader,
    ]
}

/// The 16 bytes of an address given as eight groups.
func v6(_ groups: UInt16...) -> [UInt8] {
    precondition(groups.count == 8)
    return groups.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
}

/// An IPv6 packet built byte by byte (not through the module): fixed header, then `payload`
/// (extension headers included, if the test wants them), payload length from it unless given.
func makeIPv6(
    source: [UInt8] = v6(0xfc00, 0, 0, 1, 0, 0, 0, 5),
    destination: [UInt8] = v6(0xfc00, 0, 0, 9, 0, 0, 0, 9),
    nextHeader: UInt8 = 17,
    hopLimit: UInt8 = 64,
    trafficClass: UInt8 = 0,
    flowLabel: UInt32 = 0,
    payload: [UInt8] = Array(0..<32),
    payloadLength: Int? = nil
) -> [UInt8] {
    let length = payloadLength ?? payload.count
    let word = UInt32(6) << 28 | UInt32(trafficClass) << 20 | flowLabel & 0xF_FFFF
    return [
        UInt8(word >> 24), UInt8(truncatingIfNeeded: word >> 16), UInt8(truncatingIfNeeded: word >> 8),
        UInt8(truncatingIfNeeded: word),
        UInt8(length >> 8), UInt8(length & 0xFF), nextHeader, hopLimit,
    ] + source + destination + payload
}

/// A UDP segment (header + payload) over IPv6 with its checksum by the reference.
func makeUDPv6(
    source: [UInt8],
    destination: [UInt8],
    sourcePort: UInt16,
    destinationPort: UInt16,
    payload: [UInt8]
) -> [UInt8] {
    let length = 8 + payload.count
    var segment: [UInt8] =
        [
            UInt8(sourcePort >> 8), UInt8(sourcePort & 0xFF), UInt8(destinationPort >> 8),
            UInt8(destinationPort & 0xFF), UInt8(length >> 8), UInt8(length & 0xFF), 0, 0,
        ] + payload
    var checksum = referenceChecksum(
        pseudoHeaderV6(source: source, destination: destination, nextHeader: 17, length: length) + segment
    )
    if checksum == 0 { checksum = 0xFFFF }
    segment[6] = UInt8(checksum >> 8)
    segment[7] = UInt8(checksum & 0xFF)
    return segment
}
