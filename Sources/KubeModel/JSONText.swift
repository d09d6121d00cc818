/// The little JSON writing the patches need, escaped as Go's json.Marshal escapes: flannel's
/// patch bodies are built by Go, and matching them byte for byte makes them comparable in tests.
enum JSONText {
    static func quoted(_ text: String) -> String {
        let hex = Array("0123456789abcdef".unicodeScalars)
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x22: out += "\\\""
            case 0x5C: out += "\\\\"
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            case 0x00..<0x20, 0x3C, 0x3E, 0x26:
                out += "\\u00"
                out.unicodeScalars.append(hex[Int(scalar.value >> 4)])
                out.unicodeScalars.append(hex[Int(scalar.value & 0x0F)])
            case 0x2028, 0x2029:
                out += "\\u202"
                out.unicodeScalars.append(hex[Int(scalar.value & 0x0F)])
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// A string map as Go marshals a map[string]string: keys sorted, compact.
    static func object(_ members: [String: String]) -> String {
        "{" + members.keys.sorted().map { "\(quoted($0)):\(quoted(members[$0]!))" }.joined(separator: ",") + "}"
    }
}
