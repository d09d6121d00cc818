import Foundation

/// Parses flanneld's `--etcd-endpoints` value: comma-separated `http://host:port` or `https://host:port` client URLs.
/// Returns base URLs without a trailing slash, in the order given (the first is tried first).
public func parseEtcdEndpoints(_ list: String) throws(EtcdError) -> [String] {
    let endpoints = list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    guard !endpoints.isEmpty else {
        throw EtcdError(operation: "configure", endpoint: list, reason: .invalidEndpoint(list))
    }
    return try endpoints.map { (endpoint) throws(EtcdError) in try validateEndpoint(endpoint) }
}

func validateEndpoint(_ endpoint: String) throws(EtcdError) -> String {
    var base = endpoint
    while base.hasSuffix("/") { base.removeLast() }
    let scheme = ["http://", "https://"].first { base.hasPrefix($0) }
    let authority = scheme.map { base.dropFirst($0.count) } ?? ""
    // host:port or [v6]:port, nothing after it (the gateway lives at /v3 on the client URL's root).
    guard let colon = authority.lastIndex(of: ":"),
        !authority[..<colon].isEmpty, !authority.contains("/"),
        let port = UInt16(authority[authority.index(after: colon)...]), port != 0
    else {
        throw EtcdError(operation: "configure", endpoint: endpoint, reason: .invalidEndpoint(endpoint))
    }
    return base
}
