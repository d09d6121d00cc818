import Addressing

/// One entry of spec.podCIDRs, parsed as Go's net.ParseCIDR would and sorted by family. An IPv6
/// entry is kept as the node's text, so a line that names it shows it as the node has it.
public enum PodCIDR: Equatable, Sendable, CustomStringConvertible {
    case ipv4(IPv4Prefix)
    case ipv6(String)

    /// nil when the text is not a CIDR; the caller words the error (Go's is "invalid CIDR address: X").
    public init?(_ text: String) {
        if let prefix = IPv4Prefix(text) {
            self = .ipv4(prefix)
        } else if let masked = PodCIDR.parseIPv6(text) {
            self = .ipv6(masked)
        } else {
            return nil
        }
    }

    public var description: String {
        switch self {
        case .ipv4(let prefix): prefix.description
        case .ipv6(let text): text
        }
    }

    public var ipv4: IPv4Prefix? {
        if case .ipv4(let prefix) = self { prefix } else { nil }
    }

    /// Checks the shape of an IPv6 CIDR ("fd00:10:244:1::/64") and returns it lowercased. Host
    /// bits are not masked: the API server stores podCIDRs already masked.
    static func parseIPv6(_ text: String) -> String? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let length = Int(parts[1]), (0...128).contains(length),
            parts[1].allSatisfy(\.isASCIIDigit), parts[1].count <= 3
        else { return nil }
        guard isIPv6Address(parts[0]) else { return nil }
        return text.lowercased()
    }

    static func isIPv6Address(_ text: Substring) -> Bool {
        guard text.contains(":") else { return false }
        let halves = text.split(separator: "::", omittingEmptySubsequences: false)
        guard halves.count <= 2 else { return false }
        var groups = 0
        for (index, half) in halves.enumerated() where !half.isEmpty {
            let fields = half.split(separator: ":", omittingEmptySubsequences: false)
            for (position, field) in fields.enumerated() {
                let isLast = index == halves.count - 1 && position == fields.count - 1
                if isLast && field.contains(".") {
                    guard IPv4Address(field) != nil else { return false }
                    groups += 2
                } else {
                    guard (1...4).contains(field.count), field.allSatisfy(\.isHexDigit) else { return false }
                    groups += 1
                }
            }
        }
        return halves.count == 2 ? groups <= 7 : groups == 8
    }
}

extension Node {
    /// spec.podCIDRs, or spec.podCIDR when the list is empty (servers before 1.16).
    var podCIDRTexts: [String] {
        if let list = spec.podCIDRs, !list.isEmpty { return list }
        if let single = spec.podCIDR, !single.isEmpty { return [single] }
        return []
    }
}
