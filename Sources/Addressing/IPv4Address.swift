/// An IPv4 address held as a host-order integer, so comparisons and subnet arithmetic are plain
/// integer operations. Convert with `networkOrder` when writing to the wire.
public struct IPv4Address: Hashable, Comparable, Sendable {
    public var value: UInt32

    @inlinable public init(_ value: UInt32) { self.value = value }

    @inlinable public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        value = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// The address as it appears in a packet header (big-endian).
    @inlinable public var networkOrder: UInt32 { value.bigEndian }

    @inlinable public init(networkOrder: UInt32) { value = UInt32(bigEndian: networkOrder) }

    public static let any = IPv4Address(0)

    @inlinable public static func < (lhs: IPv4Address, rhs: IPv4Address) -> Bool { lhs.value < rhs.value }

    public var octets: (UInt8, UInt8, UInt8, UInt8) {
        (
            UInt8(value >> 24), UInt8(truncatingIfNeeded: value >> 16),
            UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)
        )
    }
}

extension IPv4Address: LosslessStringConvertible {
    /// Parses dotted-quad only ("10.244.0.1"): no shorthand, no leading zeros, each part 0...255.
    public init?(_ text: some StringProtocol) {
        var result: UInt32 = 0
        var parts = 0
        var part: UInt32 = 0
        var digits = 0
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                if digits > 0 && part == 0 { return nil }  // leading zero
                part = part * 10 + UInt32(byte - UInt8(ascii: "0"))
                digits += 1
                if part > 255 || digits > 3 { return nil }
            case UInt8(ascii: "."):
                guard digits > 0, parts < 3 else { return nil }
                result = result << 8 | part
                parts += 1
                part = 0
                digits = 0
            default:
                return nil
            }
        }
        guard digits > 0, parts == 3 else { return nil }
        value = result << 8 | part
    }

    public var description: String {
        let (a, b, c, d) = octets
        return "\(a).\(b).\(c).\(d)"
    }
}

extension IPv4Address: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let address = IPv4Address(text) else {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: decoder.codingPath,
                    debugDescription: "\"\(text)\" is not an IPv4 address (want dotted quad, e.g. 198.18.0.1)"
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
