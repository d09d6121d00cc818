import TestSupport
import TestThreads
import Testing

@testable import Packets

@Suite(.computeLane) struct InternetChecksumTests {
    @Test func rfc1071Example() {
        // RFC 1071 section 3: these 8 bytes sum to 0xddf2.
        let bytes: [UInt8] = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]
        let sum = bytes.withUnsafeBytes { InternetChecksum.sum($0.baseAddress!, count: 8) }
        #expect(UInt16(bigEndian: InternetChecksum.fold(sum)) == 0xddf2)
        let checksum = bytes.withUnsafeBytes { InternetChecksum.checksum($0.baseAddress!, count: 8) }
        #expect(UInt16(bigEndian: checksum) == 0x220d)
    }

    @Test func knownIPv4Header() {
        let header = hex("4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7")
        let checksum = header.withUnsafeBytes { InternetChecksum.checksum($0.baseAddress!, count: 20) }
        #expect(UInt16(bigEndian: checksum) == 0xb861)
        let filled = hex("4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7")
        #expect(filled.withUnsafeBytes { InternetChecksum.isValid($0.baseAddress!, count: 20) })
        var broken = filled
        broken[11] ^= 1
        #expect(!broken.withUnsafeBytes { InternetChecksum.isValid($0.baseAddress!, count: 20) })
    }

    @Test func matchesReferenceOnRandomLengthsAndAlignments() {
        var random = SplitMix64(seed: 1071)
        let memory = UnsafeMutableRawPointer.allocate(byteCount: 2100, alignment: 16)
        defer { memory.deallocate() }
        for round in 0..<3000 {
            let length = round < 64 ? round : Int.random(in: 0...2000, using: &random)
            let alignment = Int.random(in: 0..<16, using: &random)
            // Some rounds all 0xFF, the worst case for carries.
            let saturated = round % 10 == 0
            let bytes = saturated ? [UInt8](repeating: 0xFF, count: length) : random.bytes(length)
            bytes.withUnsafeBytes { (memory + alignment).copyMemory(from: $0.baseAddress!, byteCount: length) }
            let checksum = UInt16(bigEndian: InternetChecksum.checksum(memory + alignment, count: length))
            #expect(checksum == referenceChecksum(bytes), "length \(length) alignment \(alignment)")
        }
    }

    @Test func initialSumIsCarriedLikeLeadingBytes() {
        var random = SplitMix64(seed: 2)
        for _ in 0..<500 {
            let prefix = random.bytes(2 * Int.random(in: 0...20, using: &random))
            let rest = random.bytes(Int.random(in: 0...300, using: &random))
            let initial = prefix.withUnsafeBytes { InternetChecksum.sum($0.baseAddress!, count: prefix.count) }
            let checksum = rest.withUnsafeBytes {
                InternetChecksum.checksum(
                    $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!,
                    count: rest.count,
                    initial: initial
                )
            }
            #expect(UInt16(bigEndian: checksum) == referenceChecksum(prefix + rest))
        }
    }

    @Test func pseudoHeaderMatchesItsBytes() {
        var random = SplitMix64(seed: 3)
        for _ in 0..<200 {
            let source = random.bytes(4)
            let destination = random.bytes(4)
            let proto: UInt8 = Bool.random(using: &random) ? 6 : 17
            let length = Int.random(in: 0...65535, using: &random)
            let load = { (b: [UInt8]) in b.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) } }
            let sum = InternetChecksum.pseudoHeaderSum(
                source: load(source),
                destination: load(destination),
                protocol: proto,
                length: length
            )
            let expected = referenceChecksum(
                pseudoHeader(source: source, destination: destination, protocol: proto, length: length)
            )
            #expect(UInt16(bigEndian: InternetChecksum.finalize(sum)) == expected)
        }
    }

    @Test func incrementalUpdateMatchesRecompute() {
        var random = SplitMix64(seed: 1624)
        for _ in 0..<2000 {
            let words = Int.random(in: 3...40, using: &random)
            var bytes = random.bytes(2 * words)
            // Word 0 is the checksum field; keep at least one non-zero byte so the sum is non-zero.
            bytes[0] = 0
            bytes[1] = 0
            bytes[2] |= 1
            let original = referenceChecksum(bytes)
            let changed = Int.random(in: 2..<words, using: &random)
            let old = UInt16(bytes[2 * changed]) << 8 | UInt16(bytes[2 * changed + 1])
            let new = UInt16.random(in: 0...0xFFFF, using: &random)
            bytes[2 * changed] = UInt8(new >> 8)
            bytes[2 * changed + 1] = UInt8(new & 0xFF)
            guard bytes[2...].contains(where: { $0 != 0 }) else { continue }
            let updated = InternetChecksum.update(original.bigEndian, old: old.bigEndian, new: new.bigEndian)
            #expect(UInt16(bigEndian: updated) == referenceChecksum(bytes))
        }
    }
}
