/// A meta/v1 Status: the body of every API error and the object of a watch ERROR event, e.g.
/// {"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 5 (100)","reason":"Expired","code":410}
public struct Status: Codable, Equatable, Sendable {
    public struct Details: Codable, Equatable, Sendable {
        public var name: String?
        public var group: String?
        public var kind: String?
        public var causes: [Cause]?
        public var retryAfterSeconds: Int?

        public init(
            name: String? = nil,
            group: String? = nil,
            kind: String? = nil,
            causes: [Cause]? = nil,
            retryAfterSeconds: Int? = nil
        ) {
            self.name = name
            self.group = group
            self.kind = kind
            self.causes = causes
            self.retryAfterSeconds = retryAfterSeconds
        }
    }

    public struct Cause: Codable, Equatable, Sendable {
        public var reason: String?
        public var message: String?
        public var field: String?

        public init(reason: String? = nil, message: String? = nil, field: String? = nil) {
            self.reason = reason
            self.message = message
            self.field = field
        }
    }

    public var kind: String?
    public var apiVersion: String?
    /// "Success" or "Failure".
    public var status: String?
    public var message: String?
    /// "Expired", "NotFound", "Forbidden", "Unauthorized", "Conflict", "TooManyRequests", ...
    public var reason: String?
    public var details: Details?
    public var code: Int?

    public init(
        status: String? = "Failure",
        message: String? = nil,
        reason: String? = nil,
        details: Details? = nil,
        code: Int? = nil
    ) {
        self.kind = "Status"
        self.apiVersion = "v1"
        self.status = status
        self.message = message
        self.reason = reason
        self.details = details
        self.code = code
    }

    /// The watch cache's answer to a resourceVersion it no longer holds: relist.
    public var isExpired: Bool { code == 410 || reason == "Expired" || reason == "Gone" }
}
