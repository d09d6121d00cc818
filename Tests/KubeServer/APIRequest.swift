import Foundation

/// One HTTP request as the API sees it, whole (bodies are small; watches have none).
struct APIRequest: Sendable {
    var method: String
    var path: String
    var rawQuery: String
    var query: [String: String]
    var authorization: String?
    var contentType: String?
    var host: String?
    var body: [UInt8]
    /// Arrived on the control socket: test controls only, no token needed.
    var control: Bool

    init(
        method: String,
        uri: String,
        authorization: String?,
        contentType: String?,
        host: String?,
        body: [UInt8],
        control: Bool
    ) {
        self.method = method
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        path = String(parts[0]).removingPercentEncoding ?? String(parts[0])
        rawQuery = parts.count > 1 ? String(parts[1]) : ""
        var query: [String: String] = [:]
        for pair in rawQuery.split(separator: "&") {
            let field = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (text: Substring) in
                text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(text)
            }
            let key = decode(field[0])
            if query[key] == nil { query[key] = field.count > 1 ? decode(field[1]) : "" }
        }
        self.query = query
        self.authorization = authorization
        self.contentType = contentType
        self.host = host
        self.body = body
        self.control = control
    }
}

/// What to answer: a whole response, or a watch stream for the connection to hold open.
enum APIReply {
    case full(code: Int, headers: [(String, String)], body: [UInt8])
    case watch(WatchPlan)

    static func json(_ code: Int, _ body: [UInt8]) -> APIReply {
        .full(code: code, headers: [("Content-Type", "application/json")], body: body)
    }
    static func json(_ code: Int, _ value: JSONValue) -> APIReply { json(code, value.serialized) }
    static func status(_ error: StatusError) -> APIReply {
        var headers = [("Content-Type", "application/json")]
        if let seconds = error.retryAfterSeconds { headers.append(("Retry-After", String(seconds))) }
        return .full(code: error.code, headers: headers, body: error.body)
    }
}

struct WatchPlan {
    let resource: Resource
    let namespace: String?
    let selector: Selector
    let from: String?
    let bookmarks: Bool
    let timeoutSeconds: Int?
}

/// One entry of the request log, for tests to assert what a client sent (e.g. "no PATCH on restart").
public struct RecordedRequest: Sendable, Equatable {
    public let sequence: Int
    public let method: String
    public let path: String
    public let query: String
    public let contentType: String?
    public let body: String
    /// The authenticated user; nil when the token was missing or unknown.
    public let user: String?
    public let code: Int

    public var json: JSONValue {
        [
            "sequence": .number(String(sequence)), "method": .string(method), "path": .string(path),
            "query": .string(query),
            "contentType": contentType.map(JSONValue.string) ?? .null, "body": .string(body),
            "user": user.map(JSONValue.string) ?? .null, "code": .number(String(code)),
        ]
    }
}
