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
            throw wrongType(field, value, want: "true or false", example: "\"\(field.split(separator: ".").last ?? Substring(field))\": false")
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
            throw error(field, "\(field) \(ConfigError.show(text)) is not an IPv4 address; use a dotted quad, e.g. \(example)")
        }
        return address
    }

    /// The members of an object value; any other kind is refused.
    func members(_ field: String, _ value: JSONValue, example: String) throws(ConfigError) -> [JSONMember] {
        guard case .object(let members) = value.kind else {
            throw wrongType(field, value, want: "an object", example: example)
        }
        return members
    }
}
