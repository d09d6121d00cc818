/// An IPv6 address held as a host-order 128-bit integer, as IPv4Address holds a UInt32, so
/// comparisons and prefix arithmetic are plain integer operations. `store(to:)` and
/// `init(loadingFrom:)` convert to and from the 16 bytes of a packet header.
public struct IPv6Address: Hashable, Comparable, Sendable {
    public var value: UInt128

    @inlinable public init(_ value: UInt128) { self.value = value }

    /// The eight 16-bit groups, most significant first ("fc00::1" is fc00, 0, 0, 0, 0, 0, 0, 1).
    @inlinable public init(groups: [UInt16]) {
        precondition(groups.count == 8, "an IPv6 address has 8 groups, not \(groups.count)")
        value = groups.reduce(0) { $0 << 16 | UInt128($1) }
    }

    /// Reads the 16 bytes at `bytes` (network order, any alignment).
    @inlinable public init(loadingFrom bytes: UnsafeRawPointer) {
        let high = UInt64(bigEndian: bytes.loadUnaligned(as: UInt64.self))
        let low = UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        value = UInt128(high) << 64 | UInt128(low)
    }

    /// Writes the 16 bytes in network order at `bytes` (any alignment).
    @inlinable public func store(to bytes: UnsafeMutableRawPointer) {
        bytes.storeBytes(of: UInt64(truncatingIfNeeded: value >> 64).bigEndian, as: UInt64.self)
        bytes.storeBytes(of: UInt64(truncatingIfNeeded: value).bigEndian, toByteOffset: 8, as: UInt64.self)
    }

    public static let any = IPv6Address(0)

    @inlinable public static func < (lhs: IPv6Address, rhs: IPv6Address) -> Bool { lhs.value < rhs.value }

    /// Group `index` (0 is the most significant).
    @inlinable public func group(_ index: Int) -> UInt16 {
        UInt16(truncatingIfNeeded: value >> UInt128(16 * (7 - index)))
    }

    /// ::ffff:a.b.c.d, an IPv4 address in IPv6 form (RFC 4291 §2.5.5.2).
    @inlinable public var isIPv4Mapped: Bool { value >> 32 == 0xFFFF }
}

extension IPv6Address: LosslessStringConvertible {
    /// Parses RFC 4291 text as Go's net.ParseIP does for the addresses flannel reads: one to four
    /// hex digits per group (either case), at most one "::" standing for one or more zero groups,
    /// and a dotted quad in place of the last two groups ("::ffff:198.18.0.1", "64:ff9b::192.0.2.1").
    /// No zone ("%eth0"), no brackets, no spaces.
    public init?(_ text: some StringProtocol) {
        let bytes = Array(text.utf8)
        var groups: [UInt16] = []
        var ellipsis: Int?  // index in `groups` where "::" stands
        var index = 0
        if bytes.starts(with: [0x3A, 0x3A]) {
            ellipsis = 0
            index = 2
            if index == bytes.count {
                self.init(0)
                return
            }
        } else if bytes.first == 0x3A {
            return nil  // a lone leading colon
        }
        while index < bytes.count {
            // A dotted quad may stand for the last two groups.
            var end = index
            while end < bytes.count, bytes[end] != 0x3A { end += 1 }
            let part = bytes[index..<end]
            if part.contains(0x2E) {
                guard end == bytes.count, groups.count <= 6,
                    let v4 = IPv4Address(String(decoding: part, as: UTF8.self))
                else { return nil }
                groups.append(UInt16(truncatingIfNeeded: v4.value >> 16))
                groups.append(UInt16(truncatingIfNeeded: v4.value))
                index = end
                break
            }
            guard (1...4).contains(part.count) else { return nil }
            var group: UInt16 = 0
            for byte in part {
                guard let digit = Self.hexValue(byte) else { return nil }
                group = group << 4 | UInt16(digit)
            }
            groups.append(group)
            guard groups.count <= 8 else { return nil }
            index = end
            guard index < bytes.count else { break }
            // A colon: one more group follows, or "::" and possibly more.
            index += 1
            if index < bytes.count, bytes[index] == 0x3A {
                guard ellipsis == nil else { return nil }
                ellipsis = groups.count
                index += 1
            } else if index == bytes.count {
                return nil  // a trailing single colon
            }
        }
        if let ellipsis {
            // "::" stands for at least one group (RFC 4291 §2.2).
            guard groups.count <= 7 else { return nil }
            groups.insert(contentsOf: repeatElement(0, count: 8 - groups.count), at: ellipsis)
        }
        guard groups.count == 8 else { return nil }
        self.init(groups: groups)
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: byte - 0x30
        case 0x61...0x66: byte - 0x61 + 10
        case 0x41...0x46: byte - 0x41 + 10
        default: nil
        }
    }

    /// RFC 5952's canonical text: lowercase, no leading zeros, the longest run of two or more
    /// zero groups (the first of equal runs) as "::", and an IPv4-mapped address with its dotted
    /// quad. flanneld formats with Go's net.IP.String, the same text except that Go prints an
    /// IPv4-mapped address as the bare dotted quad.
    public var description: String {
        if isIPv4Mapped {
            return "::ffff:\(IPv4Address(UInt32(truncatingIfNeeded: value)))"
        }
        var bestStart = -1
        var bestLength = 0
        var runStart = -1
        for index in 0...8 {
            if index < 8 && group(index) == 0 {
                if runStart < 0 { runStart = index }
            } else if runStart >= 0 {
                if index - runStart > bestLength { (bestStart, bestLength) = (runStart, index - runStart) }
                runStart = -1
            }
        }
        if bestLength < 2 { bestStart = -1 }
        var text = ""
        var index = 0
        while index < 8 {
            if index == bestStart {
                text += "::"
                index += bestLength
                continue
            }
            if !text.isEmpty && !text.hasSuffix(":") { text += ":" }
            text += String(group(index), radix: 16)
            index += 1
        }
        return text
    }
}

extension IPv6Address: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let address = IPv6Address(text) else {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: decoder.codingPath,
                    debugDescription: "\"\(text)\" is not an IPv6 address (want e.g. 2001:db8::1)"
                )
            )
        }
        self = address
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
