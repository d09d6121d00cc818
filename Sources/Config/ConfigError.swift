/// Everything the Config module can reject: the network config from etcd, a lease value, a
/// subnet.env line, a file operation. `description` is always one line of the form
/// "<source>: <what is wrong with which field and value>; <how to fix it>", ready for a log.
public struct ConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Where the bad input came from: "config", "lease", a file path, or "path line N".
    public let source: String
    /// The field at fault as the user would write it: "SubnetLen", "Backend.VNI", "FLANNEL_MTU", "JSON".
    public let field: String
    /// The problem and its fix, without the source prefix.
    public let problem: String

    public init(source: String, field: String, problem: String) {
        self.source = ConfigError.singleLine(source)
        self.field = field
        self.problem = ConfigError.singleLine(problem)
    }

    public var description: String { "\(source): \(problem)" }

    /// Input values end up inside messages; a newline or control byte in them would break the
    /// one-line promise, and a megabyte of garbage would bury the point. Public for the layers
    /// above whose errors make the same promise (KubeError).
    public static func singleLine(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                out += "\\u{\(String(scalar.value, radix: 16))}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// A user-supplied value, quoted and cut to a readable length.
    static func show(_ value: some StringProtocol, limit: Int = 60) -> String {
        let text = String(value)
        if text.count <= limit { return "\"\(text)\"" }
        return "\"\(text.prefix(limit))...\""
    }
}
