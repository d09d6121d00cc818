/// Where the API server is: scheme, host, port and an optional path prefix, parsed from
/// `--kube-api-url`, a kubeconfig's `server` or the in-cluster environment.
public struct ServerAddress: Equatable, Sendable, CustomStringConvertible {
    public enum Scheme: String, Equatable, Sendable {
        case https
        case http
    }

    public let scheme: Scheme
    /// Without brackets, also for IPv6 ("fd00::1").
    public let host: String
    public let port: Int
    /// "" or a prefix such as "/k8s" that every API path goes under (no trailing slash).
    public let basePath: String

    public init(scheme: Scheme, host: String, port: Int, basePath: String = "") {
        self.scheme = scheme
        self.host = host
        self.port = port
        self.basePath = basePath
    }

    /// "10.96.0.1:443", "[fd00::1]:6443": Go's net.JoinHostPort.
    public var hostPort: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    public var url: String { "\(scheme.rawValue)://\(hostPort)\(basePath)" }

    public var description: String { url }

    /// Parses a server URL as client-go's DefaultServerURL does: a bare "host:port" takes https
    /// when TLS is configured (a CA, a client certificate or insecure) and http otherwise.
    public static func parse(_ text: String, defaultTLS: Bool, origin: String) throws(KubeError) -> ServerAddress {
        let fix = "give a URL such as https://10.0.0.1:6443 in \(origin)"
        var rest = Substring(text.trimmingASCIIWhitespace)
        guard !rest.isEmpty else {
            throw KubeError(.clientConfig, "\(origin) is empty", fix: fix)
        }
        var scheme: Scheme = defaultTLS ? .https : .http
        if let range = rest.range(of: "://") {
            let name = rest[..<range.lowerBound].lowercased()
            guard let given = Scheme(rawValue: name) else {
                throw KubeError(
                    .clientConfig,
                    "\(origin) \(KubeError.quoted(text)) has scheme \(KubeError.quoted(name)), not https or http",
                    fix: fix
                )
            }
            scheme = given
            rest = rest[range.upperBound...]
        }
        let pathStart = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        let authority = rest[..<pathStart]
        var path = String(rest[pathStart...])
        if let cut = path.firstIndex(where: { $0 == "?" || $0 == "#" }) { path = String(path[..<cut]) }
        while path.hasSuffix("/") { path.removeLast() }
        guard !authority.contains("@") else {
            throw KubeError(
                .clientConfig,
                "\(origin) \(KubeError.quoted(text)) carries credentials in the URL",
                fix: "put the token or certificate in the kubeconfig's user entry instead"
            )
        }
        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else {
                throw KubeError(
                    .clientConfig,
                    "\(origin) \(KubeError.quoted(text)) has an unclosed IPv6 bracket",
                    fix: fix
                )
            }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else {
                    throw KubeError(
                        .clientConfig,
                        "\(origin) \(KubeError.quoted(text)) has text after the IPv6 address",
                        fix: fix
                    )
                }
                portText = after.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        guard !host.isEmpty, !host.contains(where: { $0 == " " || $0 == "/" }) else {
            throw KubeError(.clientConfig, "\(origin) \(KubeError.quoted(text)) has no host", fix: fix)
        }
        let port: Int
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value), portText.allSatisfy(\.isASCIIDigit) else {
                throw KubeError(
                    .clientConfig,
                    "\(origin) \(KubeError.quoted(text)) has port \(KubeError.quoted(portText)), not 1-65535",
                    fix: fix
                )
            }
            port = value
        } else {
            port = scheme == .https ? 443 : 80
        }
        return ServerAddress(scheme: scheme, host: String(host), port: port, basePath: path)
    }
}

extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}

extension StringProtocol {
    var trimmingASCIIWhitespace: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}
