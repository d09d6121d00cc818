/// An IPv6 network: an address with its host bits cleared and a prefix length 0...128, as
/// IPv4Prefix is for IPv4. flannel's IPv6Network and each lease's IPv6 subnet are prefixes.
public struct IPv6Prefix: Hashable, Sendable {
    public let network: IPv6Address
    public let length: Int

    /// Masks off host bits: "fc00::1/64" is fc00::/64.
    @inlinable public init(_ address: IPv6Address, length: Int) {
        precondition((0...128).contains(length), "prefix length \(length) outside 0...128")
        self.length = length
        network = IPv6Address(address.value & IPv6Prefix.mask(length))
    }

    @inlinable public static func mask(_ length: Int) -> UInt128 {
        length == 0 ? 0 : UInt128.max << UInt128(128 - length)
    }

    @inlinable public var mask: UInt128 { IPv6Prefix.mask(length) }

    @inlinable public var first: IPv6Address { network }
    @inlinable public var last: IPv6Address { IPv6Address(network.value | ~mask) }

    @inlinable public func contains(_ address: IPv6Address) -> Bool {
        address.value & mask == network.value
    }

    @inlinable public func contains(_ other: IPv6Prefix) -> Bool {
        other.length >= length && contains(other.network)
    }

    @inlinable public func overlaps(_ other: IPv6Prefix) -> Bool {
        contains(other.network) || other.contains(network)
    }

    /// The prefix of the same length immediately after this one, or nil past the last address.
    public var next: IPv6Prefix? {
        guard length > 0 else { return nil }
        let (value, overflow) = network.value.addingReportingOverflow(UInt128(1) << UInt128(128 - length))
        return overflow ? nil : IPv6Prefix(IPv6Address(value), length: length)
    }

    /// The n-th address of the prefix (network + n).
    @inlinable public func host(_ n: UInt128) -> IPv6Address { IPv6Address(network.value &+ n) }
}

extension IPv6Prefix: LosslessStringConvertible {
    /// Parses CIDR notation "fc00::/48". Host bits are masked off.
    public init?(_ text: some StringProtocol) {
        guard let slash = text.firstIndex(of: "/"),
            let address = IPv6Address(text[..<slash]),
            let length = IPv6Prefix.parseLength(text[text.index(after: slash)...])
        else { return nil }
        self.init(address, length: length)
    }

    /// Parses flannel's subnet key form "fc00::-64" (the IPv6 half of a dual-stack lease key).
    public init?(leaseKey text: some StringProtocol) {
        guard let dash = text.lastIndex(of: "-"),
            let address = IPv6Address(text[..<dash]),
            let length = IPv6Prefix.parseLength(text[text.index(after: dash)...])
        else { return nil }
        self.init(address, length: length)
    }

    /// flannel's key form: "fc00::-64".
    public var leaseKey: String { "\(network)-\(length)" }

    public var description: String { "\(network)/\(length)" }

    static func parseLength(_ text: some StringProtocol) -> Int? {
        guard (1...3).contains(text.utf8.count), text.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
            let n = Int(text), n <= 128
        else { return nil }
        return n
    }
}

extension IPv6Prefix: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let prefix = IPv6Prefix(text) else {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: decoder.codingPath,
                    debugDescription: "\"\(text)\" is not an IPv6 CIDR (want e.g. fc00::/48)"
                )
            )
        }
        self = prefix
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
