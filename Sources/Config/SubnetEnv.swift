import Addressing

/// /run/flannel/subnet.env: what the CNI plugin and mk-docker-opts.sh read to configure
/// containers, and what the daemon reads back at startup to ask for its previous subnet.
public struct SubnetEnv: Equatable, Sendable {
    public static let defaultPath = "/run/flannel/subnet.env"

    /// FLANNEL_NETWORK.
    public var network: IPv4Prefix?
    /// The lease. Written as FLANNEL_SUBNET=<its first host>/<length> (10.244.34.1/24, the
    /// bridge address); read back as the network ParseCIDR gives (10.244.34.0/24).
    public var subnet: IPv4Prefix?
    /// FLANNEL_IPV6_NETWORK, written only when EnableIPv6 is true.
    public var ipv6Network: IPv6Prefix?
    /// The IPv6 lease, written and read back as `subnet` is: FLANNEL_IPV6_SUBNET=fc00:0:0:5::1/64
    /// is fc00:0:0:5::/64.
    public var ipv6Subnet: IPv6Prefix?
    /// FLANNEL_MTU.
    public var mtu: Int?
    /// FLANNEL_IPMASQ: whether the daemon masquerades (--ip-masq), so the bridge must not.
    public var ipMasq: Bool?

    public init(
        network: IPv4Prefix?,
        subnet: IPv4Prefix?,
        ipv6Network: IPv6Prefix? = nil,
        ipv6Subnet: IPv6Prefix? = nil,
        mtu: Int?,
        ipMasq: Bool?
    ) {
        self.network = network
        self.subnet = subnet
        self.ipv6Network = ipv6Network
        self.ipv6Subnet = ipv6Subnet
        self.mtu = mtu
        self.ipMasq = ipMasq
    }

    /// The lines in flannel's order; a nil field's line is left out (flannel leaves out the IPv4
    /// lines when EnableIPv4 is false, the IPv6 ones when EnableIPv6 is false).
    public var entries: [(key: String, value: String)] {
        var lines: [(key: String, value: String)] = []
        if let network { lines.append(("FLANNEL_NETWORK", network.description)) }
        if let subnet { lines.append(("FLANNEL_SUBNET", "\(subnet.host(1))/\(subnet.length)")) }
        if let ipv6Network { lines.append(("FLANNEL_IPV6_NETWORK", FlannelIPv6Text.prefix(ipv6Network))) }
        if let ipv6Subnet {
            let gateway = FlannelIPv6Text.address(ipv6Subnet.host(1))
            lines.append(("FLANNEL_IPV6_SUBNET", "\(gateway)/\(ipv6Subnet.length)"))
        }
        if let mtu { lines.append(("FLANNEL_MTU", String(mtu))) }
        if let ipMasq { lines.append(("FLANNEL_IPMASQ", ipMasq ? "true" : "false")) }
        return lines
    }

    /// The file's exact text: `KEY=VALUE\n` per line, unquoted.
    public var text: String {
        entries.map { "\($0.key)=\($0.value)\n" }.joined()
    }

    /// Reads the six FLANNEL_ variables; other keys are ignored.
    /// A CIDR value holding several comma-separated entries counts as absent, as in flannel.
    public static func parse(_ text: String, file: String = defaultPath) throws(ConfigError) -> SubnetEnv {
        let lines = try DotEnv.parse(text, file: file)
        var found: [String: DotEnv.Line] = [:]
        for line in lines { found[line.key] = line }

        func value(_ key: String) -> (String, ConfigError.Maker)? {
            guard let line = found[key], !line.value.isEmpty else { return nil }
            return (line.value, ConfigError.Maker(source: "\(file) line \(line.number)", field: key))
        }
        /// `Prefix`'s CIDR at `key`; `family` ("IPv4", "IPv6") names it in the error.
        func cidr<Prefix: IPPrefix>(_ key: String, _ family: String, example: String) throws(ConfigError) -> Prefix? {
            guard let (text, refuse) = value(key) else { return nil }
            guard !text.contains(",") else { return nil }
            guard let prefix = Prefix(text) else {
                throw refuse(
                    "\(key)=\(ConfigError.show(text)) is not an \(family) CIDR; write e.g. \(key)=\(example) or delete the file to start afresh"
                )
            }
            return prefix
        }

        var env = SubnetEnv(network: nil, subnet: nil, mtu: nil, ipMasq: nil)
        env.network = try cidr("FLANNEL_NETWORK", "IPv4", example: "10.244.0.0/16")
        env.subnet = try cidr("FLANNEL_SUBNET", "IPv4", example: "10.244.34.1/24")
        env.ipv6Network = try cidr("FLANNEL_IPV6_NETWORK", "IPv6", example: "fc00::/48")
        env.ipv6Subnet = try cidr("FLANNEL_IPV6_SUBNET", "IPv6", example: "fc00:0:0:5::1/64")
        if let (text, refuse) = value("FLANNEL_MTU") {
            guard let mtu = Int(text), (68...65535).contains(mtu), text.first != "+" else {
                throw refuse(
                    "FLANNEL_MTU=\(ConfigError.show(text)) is not an MTU between 68 and 65535; write e.g. FLANNEL_MTU=1450"
                )
            }
            env.mtu = mtu
        }
        if let (text, refuse) = value("FLANNEL_IPMASQ") {
            // Go's strconv.ParseBool, which the CNI plugin uses on this value.
            switch text {
            case "1", "t", "T", "TRUE", "true", "True": env.ipMasq = true
            case "0", "f", "F", "FALSE", "false", "False": env.ipMasq = false
            default:
                throw refuse(
                    "FLANNEL_IPMASQ=\(ConfigError.show(text)) is not true or false; write FLANNEL_IPMASQ=false or FLANNEL_IPMASQ=true"
                )
            }
        }
        return env
    }

    /// Every KEY=VALUE in an env file, as godotenv (which flannel uses) reads it; a later
    /// duplicate wins.
    public static func parseEntries(_ text: String, file: String = defaultPath) throws(ConfigError) -> [String: String]
    {
        var entries: [String: String] = [:]
        for line in try DotEnv.parse(text, file: file) { entries[line.key] = line.value }
        return entries
    }
}

extension ConfigError {
    /// Builds errors that share a source and field.
    struct Maker {
        let source: String
        let field: String

        func callAsFunction(_ problem: String) -> ConfigError {
            ConfigError(source: source, field: field, problem: problem)
        }
    }
}

/// The godotenv dialect flannel reads subnet.env with: blank lines and `#` comments skipped, an
/// optional `export ` prefix, `KEY=VALUE` or `KEY: VALUE`, values bare (trimmed, a ` #` comment
/// cut off), 'single-quoted' (literal) or "double-quoted" (\n and \r expanded, other \x → x).
/// Unlike godotenv, a quoted value must close on its own line and $VAR is not expanded: flannel's
/// files use neither.
enum DotEnv {
    struct Line {
        var key: String
        var value: String
        var number: Int
    }

    static func parse(_ text: String, file: String) throws(ConfigError) -> [Line] {
        var result: [Line] = []
        var number = 0
        // Swift reads "\r\n" as one Character, so both line ends are named here.
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            number += 1
            let refuse = ConfigError.Maker(source: "\(file) line \(number)", field: "line")
            var line = rawLine.drop(while: isSpace)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = line.dropFirst(7).drop(while: isSpace) }

            guard let separator = line.firstIndex(where: { $0 == "=" || $0 == ":" }) else {
                throw refuse("\(ConfigError.show(line)) is not KEY=VALUE; fix or remove the line")
            }
            let key = String(line[..<separator].trimmingSuffix(while: isSpace))
            guard !key.isEmpty else {
                throw refuse("the line has no name before '\(line[separator])'; write KEY=VALUE")
            }
            if let bad = key.first(where: { !($0.isLetter || $0.isNumber || $0 == "_" || $0 == ".") }) {
                throw refuse(
                    "unexpected character '\(bad)' in the name \(ConfigError.show(key)); names use letters, digits, '_' and '.'"
                )
            }
            let rest = line[line.index(after: separator)...].drop(while: isSpace)
            let value = try parseValue(rest, refuse: refuse)
            result.append(Line(key: key, value: value, number: number))
        }
        return result
    }

    private static func parseValue(_ text: Substring, refuse: ConfigError.Maker) throws(ConfigError) -> String {
        guard let quote = text.first, quote == "\"" || quote == "'" else {
            // Only a '#' after whitespace starts a comment, so "a#b" keeps its '#'.
            var end = text.endIndex
            var index = text.startIndex
            while index < text.endIndex {
                if text[index] == "#", index > text.startIndex, isSpace(text[text.index(before: index)]) {
                    end = index
                    break
                }
                index = text.index(after: index)
            }
            return String(text[..<end].trimmingSuffix(while: isSpace))
        }
        var index = text.index(after: text.startIndex)
        var closing: Substring.Index?
        while index < text.endIndex {
            if text[index] == quote, text[text.index(before: index)] != "\\" {
                closing = index
                break
            }
            index = text.index(after: index)
        }
        guard let closing else {
            throw refuse(
                "the value \(ConfigError.show(text)) has no closing \(quote); close the quote on the same line"
            )
        }
        let after = text[text.index(after: closing)...].drop(while: isSpace)
        guard after.isEmpty || after.hasPrefix("#") else {
            throw refuse("unexpected \(ConfigError.show(after)) after the closing quote; put comments after a '#'")
        }
        let body = text[text.index(after: text.startIndex)..<closing]
        return quote == "'" ? String(body) : expandEscapes(body)
    }

    private static func expandEscapes(_ text: Substring) -> String {
        var out = ""
        var escaping = false
        for character in text {
            if escaping {
                escaping = false
                switch character {
                case "n": out.append("\n")
                case "r": out.append("\r")
                case "$": out.append("\\$")  // godotenv keeps \$ so expansion can skip it
                default: out.append(character)
                }
            } else if character == "\\" {
                escaping = true
            } else {
                out.append(character)
            }
        }
        if escaping { out.append("\\") }
        return out
    }

    static func isSpace(_ character: Character) -> Bool {
        character == " " || character == "\t" || character == "\u{0B}" || character == "\u{0C}" || character == "\r"
    }
}

extension Substring {
    func trimmingSuffix(while predicate: (Character) -> Bool) -> Substring {
        var end = endIndex
        while end > startIndex, predicate(self[index(before: end)]) { end = index(before: end) }
        return self[startIndex..<end]
    }
}
