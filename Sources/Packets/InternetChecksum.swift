/// RFC 1071 Internet checksum.
///
/// Sums are kept in the machine's native byte order: the one's-complement sum is byte-order
/// independent, so loading 8 bytes at a time natively and folding at the end gives the checksum
/// already in wire order. Every `Sum` here is such a native partial sum; `finalize` turns one into
/// the 16-bit field exactly as it must sit in memory (store it with `storeBytes`, no swap).
public enum InternetChecksum {
    public typealias Sum = UInt64

    /// One's-complement sum of `count` bytes at `bytes`, added to `initial`.
    /// Unrolled to 32 bytes per step; 64-bit accumulation with end-around carry.
    @inlinable
    public static func sum(_ bytes: UnsafeRawPointer, count: Int, initial: Sum = 0) -> Sum {
        var accumulator = initial
        var carry: UInt64 = 0
        var offset = 0
        @inline(__always) func add(_ word: UInt64) {
            let (result, overflow) = accumulator.addingReportingOverflow(word)
            accumulator = result
            carry &+= overflow ? 1 : 0
        }
        while offset + 32 <= count {
            add(bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            add(bytes.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self))
            add(bytes.loadUnaligned(fromByteOffset: offset + 16, as: UInt64.self))
            add(bytes.loadUnaligned(fromByteOffset: offset + 24, as: UInt64.self))
            offset += 32
        }
        while offset + 8 <= count {
            add(bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            offset += 8
        }
        if offset + 4 <= count {
            add(UInt64(bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
            offset += 4
        }
        if offset + 2 <= count {
            add(UInt64(bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
            offset += 2
        }
        if offset < count {
            // A lone last byte is the first byte of a zero-padded 16-bit word: on the wire it is the
            // high byte, which in native order is wherever the first byte in memory lands.
            var word: UInt16 = 0
            withUnsafeMutableBytes(of: &word) { $0[0] = bytes.load(fromByteOffset: offset, as: UInt8.self) }
            add(UInt64(word))
        }
        // Fold the carries back in; a further carry is impossible because carry < 2^63.
        let (result, overflow) = accumulator.addingReportingOverflow(carry)
        return overflow ? result &+ 1 : result
    }

    /// Sum of a 16-bit value given as the wire (big-endian) number, e.g. a length or protocol word.
    @inlinable public static func sum(word: UInt16) -> Sum { Sum(word.bigEndian) }

    /// Sum of the TCP/UDP pseudo-header: source, destination, zero + protocol, upper-layer length.
    @inlinable
    public static func pseudoHeaderSum(source: UInt32, destination: UInt32, protocol proto: UInt8, length: Int) -> Sum {
        // source/destination are in network order (as read natively from a header).
        Sum(source) &+ Sum(destination) &+ Sum(UInt16(proto).bigEndian)
            &+ Sum(UInt16(truncatingIfNeeded: length).bigEndian)
    }

    /// Sum of the IPv6 pseudo-header (RFC 8200 §8.1): the 32 bytes at `addresses` (source then
    /// destination, as they sit at offset 8 of an IPv6 header), the upper-layer length as 32 bits,
    /// three zero bytes and the next header.
    @inlinable
    public static func pseudoHeaderSum(addresses: UnsafeRawPointer, nextHeader: UInt8, length: Int) -> Sum {
        // Both words are below 2^32, so their sum is a safe initial value for the carrying sum.
        sum(
            addresses,
            count: 32,
            initial: Sum(UInt32(truncatingIfNeeded: length).bigEndian) &+ Sum(UInt32(nextHeader).bigEndian)
        )
    }

    /// Folds a native partial sum to 16 bits (not inverted).
    @inlinable public static func fold(_ sum: Sum) -> UInt16 {
        var s = (sum & 0xFFFF_FFFF) &+ (sum >> 32)
        s = (s & 0xFFFF) &+ (s >> 16)
        s = (s & 0xFFFF) &+ (s >> 16)
        s = (s & 0xFFFF) &+ (s >> 16)
        return UInt16(truncatingIfNeeded: s)
    }

    /// The checksum field for a region whose partial sum (with the field zeroed) is `sum`,
    /// in memory order: store it as-is.
    @inlinable public static func finalize(_ sum: Sum) -> UInt16 { ~fold(sum) }

    /// Checksum of a region, in memory order.
    @inlinable public static func checksum(_ bytes: UnsafeRawPointer, count: Int, initial: Sum = 0) -> UInt16 {
        finalize(sum(bytes, count: count, initial: initial))
    }

    /// True when a region that includes its own checksum field sums to all ones.
    @inlinable public static func isValid(_ bytes: UnsafeRawPointer, count: Int, initial: Sum = 0) -> Bool {
        fold(sum(bytes, count: count, initial: initial)) == 0xFFFF
    }

    /// RFC 1624 incremental update: the field `checksum` (memory order) after a 16-bit word of the
    /// covered data changed from `old` to `new` (both memory order).
    @inlinable public static func update(_ checksum: UInt16, old: UInt16, new: UInt16) -> UInt16 {
        // HC' = ~(~HC + ~m + m')
        ~fold(Sum(~checksum) &+ Sum(~old) &+ Sum(new))
    }
}
