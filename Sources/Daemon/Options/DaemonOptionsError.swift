import Config

/// A flag or FLANNELD_* value weftd cannot use. `description` is one line that names the flag
/// (and the environment variable when the value came from there) and says how to fix it;
/// weftd prints it and exits 2.
public struct DaemonOptionsError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The flag as written in --help, e.g. "--healthz-port".
    public let flag: String
    /// The FLANNELD_* variable the bad value came from, or nil for the command line.
    public let environmentVariable: String?
    /// What is wrong and the fix, without the flag prefix.
    public let problem: String

    public init(flag: String, environmentVariable: String? = nil, problem: String) {
        self.flag = flag
        self.environmentVariable = environmentVariable
        self.problem = ConfigError.singleLine(problem)
    }

    public var description: String {
        if let environmentVariable { return "\(environmentVariable) (\(flag)): \(problem)" }
        return "\(flag): \(problem)"
    }

    /// A user value inside a message: quoted, control bytes escaped, cut to a readable length.
    static func show(_ value: some StringProtocol, limit: Int = 60) -> String {
        let text = ConfigError.singleLine(String(value))
        if text.count <= limit { return "\"\(text)\"" }
        return "\"\(text.prefix(limit))...\""
    }
}
