/// Where requests go: scheme, host and port. Idle connections are kept per origin.
public struct Origin: Hashable, Sendable, CustomStringConvertible {
    public var isTLS: Bool
    /// A name or an IP address; an IPv6 address without brackets.
    public var host: String
    public var port: Int

    public init(isTLS: Bool, host: String, port: Int) {
        self.isTLS = isTLS
        self.host = host
        self.port = port
    }

    /// `http://host:port` or `https://host:port` (IPv6 in brackets; the port defaults to 80 or 443);
    /// nil for anything else, including a path after the authority.
    public init?(_ url: String) {
        let isTLS: Bool
        let authority: Substring
        if url.hasPrefix("https://") {
            isTLS = true
            authority = url.dropFirst("https://".count)
        } else if url.hasPrefix("http://") {
            isTLS = false
            authority = url.dropFirst("http://".count)
        } else {
            return nil
        }
        guard !authority.isEmpty, !authority.contains("/") else { return nil }
        var host = authority
        var port = isTLS ? 443 : 80
        if authority.first == "[" {
            guard let close = authority.lastIndex(of: "]") else { return nil }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let rest = authority[authority.index(after: close)...]
            if !rest.isEmpty {
                guard rest.first == ":", let number = Int(rest.dropFirst()) else { return nil }
                port = number
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            guard let number = Int(authority[authority.index(after: colon)...]) else { return nil }
            port = number
        }
        guard !host.isEmpty, (1...65535).contains(port) else { return nil }
        self.init(isTLS: isTLS, host: String(host), port: port)
    }

    /// The Host header's value.
    var authority: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    public var description: String { (isTLS ? "https://" : "http://") + authority }
}
