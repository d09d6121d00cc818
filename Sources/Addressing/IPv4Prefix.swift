/// An IPv4 network: an address with its host bits cleared and a prefix length 0...32.
/// flannel's subnets, its Network, and route-table keys are all prefixes.
public struct IPv4Prefix: Hashable, Sendable {
    public let network: IPv4Address
    public let length: Int

    /// Masks off host bits, as flannel does with "10.1.2.3/16" → 10.1.0.0/16.
    @inlinable public init(_ address: IPv4Address, length: Int) {
        precondition((0...32).contains(length), "prefix length \(length) outside 0...32")
        self.length = length
        network = IPv4Address(address.value & IPv4Prefix.mask(length))
    }

    @inlinable public static func mask(_ length: Int) -> UInt32 {
        length == 0 ? 0 : UInt32.max << UInt32(32 - length)
    }

    @inlinable public var mask: UInt32 { IPv4Prefix.mask(length) }

    /// Number of addresses covered (2^(32-length)), as UInt64 so /0 fits.
    @inlinable public var size: UInt64 { UInt64(1) << UInt64(32 - length) }

    @inlinable public var first: IPv4Address { network }
    @inlinable public var last: IPv4Address { IPv4Address(network.value | ~mask) }

    @inlinable public func contains(_ address: IPv4Address) -> Bool {
        address.value & mask == network.value
    }

    @inlinable public func contains(_ other: IPv4Prefix) -> Bool {
        other.length >= length && contains(other.network)
    }

    @inlinable public func overlaps(_ other: IPv4Prefix) -> Bool {
        contains(other.network) || other.contains(network)
    }

    /// The prefix of the same length immediately after this one, or nil past 255.255.255.255.
    public var next: IPv4Prefix? {
        let (value, overflow) = network.value.addingReportingOverflow(UInt32(truncatingIfNeeded: size))
        return overflow || length == 0 ? nil : IPv4Prefix(IPv4Address(value), length: length)
    }

    /// The n-th host address (network + n), e.g. `host(1)` is the gateway flannel writes to subnet.env.
    @inlinable public func host(_ n: UInt32) -> IPv4Address { IPv4Address(network.value &+ n) }
}

extension IPv4Prefix: LosslessStringConvertible {
    /// Parses CIDR notation "10.244.0.0/16". Host bits are masked off.
    public init?(_ text: some StringProtocol) {
        guard let slash = text.firstIndex(of: "/"),
            let address = IPv4Address(text[..<slash]),
            let length = IPv4Prefix.parseLength(text[text.index(after: slash)...])
        else { return nil }
        self.init(address, length: length)
    }

    /// Parses flannel's subnet key form "10.244.34.0-24" (the last path element of a lease key).
    public init?(leaseKey text: some StringProtocol) {
        guard let dash = text.lastIndex(of: "-"),
            let address = IPv4Address(text[..<dash]),
            let length = IPv4Prefix.parseLength(text[text.index(after: dash)...])
        else { return nil }
        self.init(address, length: length)
    }

    /// flannel's key form: "10.244.34.0-24".
    public var leaseKey: String { "\(network)-\(length)" }

    public var description: String { "\(network)/\(length)" }

    static func parseLength(_ text: some StringProtocol) -> Int? {
        guard (1...2).contains(text.utf8.count), text.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
            let n = Int(text), n <= 32
        else { return nil }
        return n
    }
}

extension IPv4Prefix: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let prefix = IPv4Prefix(text) else {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: decoder.codingPath,
                    debugDescription: "\"\(text)\" is not an IPv4 CIDR (want e.g. 10.244.0.0/16)"
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
