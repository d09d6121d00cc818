import Addressing

/// Turns JSON values into typed fields the way Go's encoding/json does for flannel's structs,
/// and words every refusal as one line naming the field, the value and an example of a good one.
struct FieldDecoder {
    let source: String
    let document: JSONDocument

    func shown(_ value: JSONValue) -> String {
        ConfigError.singleLine(String(document.sourceText(of: value).prefix(60)))
    }

    func error(_ field: String, _ problem: String) -> ConfigError {
        ConfigError(source: source, field: field, problem: problem)
    }

    func wrongType(_ field: String, _ value: JSONValue, want: String, example: String) -> ConfigError {
        error(field, "\(field) must be \(want), got \(value.kindName) (\(shown(value))); use e.g. \(example)")
    }

    func string(_ field: String, _ value: JSONValue, example: String) throws(ConfigError) -> String {
        guard case .string(let text) = value.kind else {
            throw wrongType(field, value, want: "a string", example: example)
        }
        return text
    }

    func bool(_ field: String, _ value: JSONValue) throws(ConfigError) -> Bool {
        guard case .bool(let flag) = value.kind else {
            throw wrongType(
                field,
                value,
                want: "true or false",
                example: "\"\(field.split(separator: ".").last ?? Substring(field))\": false"
            )
        }
        return flag
    }

    /// An integer as Go's strconv.ParseInt reads a number literal: no fraction, no exponent.
    func integer(_ field: String, _ value: JSONValue, example: String) throws(ConfigError) -> Int64 {
        guard case .number(let literal) = value.kind else {
            throw wrongType(field, value, want: "a whole number", example: example)
        }
        guard let number = Int64(literal) else {
            if literal.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || (0x30...0x39).contains($0) }) {
                throw error(field, "\(field) \(literal) is out of range; use e.g. \(example)")
            }
            throw error(field, "\(field) must be a whole number, got \(literal); use e.g. \(example)")
        }
        return number
    }

    func ipv4(_ field: String, _ value: JSONValue, example: String) throws(ConfigError) -> IPv4Address {
        let text = try string(field, value, example: example)
        guard let address = IPv4Address(text) else {
            throw error(
                field,
                "\(field) \(ConfigError.show(text)) is not an IPv4 address; use a dotted quad, e.g. \(example)"
            )
        }
        return address
    }

    /// A prefix length field (flannel declares them uint, so a negative one fails to decode).
    func prefixLength(_ field: String, _ value: JSONValue, longest: Int, example: String) throws(ConfigError) -> Int {
        let n = try integer(field, value, example: example)
        guard n >= 0 else {
            throw error(
                field,
                "\(field) \(n) is negative; use a prefix length between 2 and \(longest) (e.g. \(example))"
            )
        }
        return Int(n)
    }

    /// An address as flannel's ip.IP6 decodes it (Go's net.ParseIP: IPv6 text, or a dotted quad
    /// read as its IPv4-mapped address).
    func ipv6(_ field: String, _ value: JSONValue, example: String) throws(ConfigError) -> IPv6Address {
        let text = try string(field, value, example: example)
        guard let address = FlannelIPv6Text.parseAddress(text) else {
            throw error(field, "\(field) \(ConfigError.show(text)) is not an IPv6 address; use e.g. \(example)")
        }
        return address
    }

    /// IPv6Network as flannel's ip.IP6Net decodes it, with Go's net.ParseCIDR, which also takes
    /// an IPv4 CIDR. That only matters when EnableIPv6 is true, so the text is kept to say so then.
    func ipv6Network(_ field: String, _ value: JSONValue) throws(ConfigError) -> (text: String, prefix: IPv6Prefix?) {
        let example = "\"\(field)\": \"fc00::/48\""
        let text = try string(field, value, example: example)
        if let prefix = IPv6Prefix(text) { return (text, prefix) }
        guard IPv4Prefix(text) != nil else {
            throw error(field, "\(field) \(ConfigError.show(text)) is not an IPv6 CIDR; use e.g. \(example)")
        }
        return (text, nil)
    }

    /// The members of an object value; any other kind is refused.
    func members(_ field: String, _ value: JSONValue, example: String) throws(ConfigError) -> [JSONMember] {
        guard case .object(let members) = value.kind else {
            throw wrongType(field, value, want: "an object", example: example)
        }
        return members
    }
}
