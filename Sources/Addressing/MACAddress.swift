/// A 48-bit Ethernet address, held in the low 48 bits of a UInt64 (first octet most significant).
public struct MACAddress: Hashable, Sendable {
    public var value: UInt64

    @inlinable public init(_ value: UInt64) { self.value = value & 0xFFFF_FFFF_FFFF }

    public init(bytes: some Collection<UInt8>) {
        precondition(bytes.count == 6, "a MAC address has 6 bytes, got \(bytes.count)")
        value = bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }

    @inlinable public func byte(_ index: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: value >> UInt64(40 - 8 * index))
    }

    public var bytes: [UInt8] { (0..<6).map(byte) }

    public static let broadcast = MACAddress(0xFFFF_FFFF_FFFF)

    /// Locally administered (bit 1 of the first octet set) and unicast (bit 0 clear): what flannel
    /// generates for its VTEPs.
    public var isLocallyAdministeredUnicast: Bool { byte(0) & 0x03 == 0x02 }

    public static func randomLocallyAdministered<G: RandomNumberGenerator>(using generator: inout G) -> MACAddress {
        let raw = UInt64.random(in: 0...0xFFFF_FFFF_FFFF, using: &generator)
        return MACAddress((raw & ~(UInt64(0x03) << 40)) | (UInt64(0x02) << 40))
    }
}

extension MACAddress: LosslessStringConvertible {
    /// Accepts "aa:bb:cc:dd:ee:ff" and "aa-bb-cc-dd-ee-ff", either case (the 48-bit forms Go's
    /// net.ParseMAC reads, which is how flannel reads VtepMAC).
    public init?(_ text: some StringProtocol) {
        let utf8 = Array(text.utf8)
        guard utf8.count == 17 else { return nil }
        let separator = utf8[2]
        guard separator == UInt8(ascii: ":") || separator == UInt8(ascii: "-") else { return nil }
        var result: UInt64 = 0
        for group in 0..<6 {
            let at = group * 3
            if group > 0 && utf8[at - 1] != separator { return nil }
            guard let high = MACAddress.hexValue(utf8[at]), let low = MACAddress.hexValue(utf8[at + 1]) else {
                return nil
            }
            result = result << 8 | UInt64(high << 4 | low)
        }
        value = result
    }

    /// Lower-case, colon-separated: the form flannel writes into BackendData.VtepMAC.
    public var description: String {
        let digits: [Character] = Array("0123456789abcdef")
        var text = ""
        text.reserveCapacity(17)
        for index in 0..<6 {
            if index > 0 { text.append(":") }
            let b = byte(index)
            text.append(digits[Int(b >> 4)])
            text.append(digits[Int(b & 0x0F)])
        }
        return text
    }

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension MACAddress: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let mac = MACAddress(text) else {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: decoder.codingPath,
                    debugDescription: "\"\(text)\" is not a MAC address (want e.g. aa:bb:cc:dd:ee:ff)"
                )
            )
        }
        self = mac
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
