import Config

/// Everything KubeModel can refuse or report. `description` is one line for a log: the problem
/// (in flannel's or client-go's own words where they have them, so searches for those texts find
/// the known answers) followed by the fix.
public struct KubeError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        /// The kubeconfig, the in-cluster environment or the --kube-api-url is unusable.
        case clientConfig
        /// A token, CA or certificate file could not be read.
        case file
        /// NODE_NAME / POD_NAME / POD_NAMESPACE, or the pod's spec.nodeName.
        case nodeName
        /// --kube-annotation-prefix.
        case annotationPrefix
        /// Our node has no podCIDR yet: wait for it rather than exit.
        case podCIDRNotAssigned
        /// Our node's podCIDR(s) cannot be used (bad text, outside Network, IPv6 only, three of them).
        case podCIDR
        /// An annotation on our own node (public-ip-overwrite, node-public-ip) does not parse.
        case annotation
        /// A body from the API server that is not what the API promises.
        case decoding
        /// A watch line longer than the decoder accepts.
        case watchLineTooLong
        case unauthorized
        case forbidden
        case notFound
        case tooManyRequests
        case unreachable
        /// Any other HTTP status.
        case api(code: Int)
    }

    public let kind: Kind
    /// What is wrong, in the words flannel or client-go use.
    public let problem: String
    /// What the user should do about it; empty when the problem says it all.
    public let fix: String
    /// How long to wait before trying again, when the server said (429 Retry-After).
    public let retryAfter: Duration?

    public init(_ kind: Kind, _ problem: String, fix: String = "", retryAfter: Duration? = nil) {
        self.kind = kind
        self.problem = ConfigError.singleLine(problem)
        self.fix = ConfigError.singleLine(fix)
        self.retryAfter = retryAfter
    }

    public var description: String { fix.isEmpty ? problem : "\(problem); \(fix)" }

    /// A user-supplied value, quoted as Go's %q would for plain text, and cut to a readable length.
    static func quoted(_ value: some StringProtocol, limit: Int = 80) -> String {
        let text = String(value)
        let cut = text.count <= limit ? text : "\(text.prefix(limit))..."
        return "\"\(cut.replacingBackslashesAndQuotes)\""
    }
}

extension String {
    var replacingBackslashesAndQuotes: String {
        var out = ""
        for character in self {
            if character == "\\" || character == "\"" { out.append("\\") }
            out.append(character)
        }
        return out
    }
}
