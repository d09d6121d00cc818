import Addressing

/// IPv6 addresses as flanneld reads and prints them. Its ip.IP6 is a big.Int: it prints through
/// the integer's minimal bytes, so an address below 2^32 whose bytes fill exactly four
/// (::1.0.0.0 to ::255.255.255.255) comes out as a bare dotted quad, and Go prints an
/// IPv4-mapped one (::ffff:a.b.c.d) the same way. Every other address is RFC 5952 text, which
/// is what IPv6Address prints. Lease keys, lease values and subnet.env all go through here.
enum FlannelIPv6Text {
    static func address(_ address: IPv6Address) -> String {
        let value = address.value
        if (value >> 32 == 0 && value >> 24 != 0) || value >> 32 == 0xFFFF {
            return IPv4Address(UInt32(truncatingIfNeeded: value)).description
        }
        return address.description
    }

    /// "fc00::/48", or with flannel's key separator "fc00::-48".
    static func prefix(_ prefix: IPv6Prefix, separator: String = "/") -> String {
        "\(address(prefix.network))\(separator)\(prefix.length)"
    }

    /// Go's net.ParseIP as flannel's ParseIP6 uses it: IPv6 text, or an IPv4 dotted quad, which
    /// becomes its IPv4-mapped form.
    static func parseAddress(_ text: some StringProtocol) -> IPv6Address? {
        if let address = IPv6Address(text) { return address }
        return IPv4Address(text).map { IPv6Address(0xFFFF_0000_0000 | UInt128($0.value)) }
    }
}
