/// A `metav1.Status` failure as kube-apiserver writes it: fields in Go's struct order (kind,
/// apiVersion, metadata, status, message, reason, details, code), so bodies match byte for byte.
public struct StatusError: Error, Sendable, Equatable {
    public let code: Int
    public let reason: String
    public let message: String
    /// `details`, in order: name, group, kind, causes, retryAfterSeconds. Nil leaves `details` out.
    public var details: Details?
    public var retryAfterSeconds: Int? { details?.retryAfterSeconds }

    public struct Details: Sendable, Equatable {
        public var name: String?
        public var group: String?
        public var kind: String?
        public var causes: [Cause] = []
        public var retryAfterSeconds: Int?
    }

    public struct Cause: Sendable, Equatable {
        public let reason: String
        public let message: String
        public let field: String
    }

    public var body: [UInt8] {
        var out = Array(#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"#.utf8)
        JSONValue.writeString(message, into: &out)
        out.append(contentsOf: #","reason":"#.utf8)
        JSONValue.writeString(reason, into: &out)
        if let details {
            out.append(contentsOf: #","details":{"#.utf8)
            var fields: [[UInt8]] = []
            func field(_ name: String, _ value: String) -> [UInt8] {
                var bytes: [UInt8] = []
                JSONValue.writeString(name, into: &bytes)
                bytes.append(UInt8(ascii: ":"))
                JSONValue.writeString(value, into: &bytes)
                return bytes
            }
            if let name = details.name { fields.append(field("name", name)) }
            if let group = details.group, !group.isEmpty { fields.append(field("group", group)) }
            if let kind = details.kind { fields.append(field("kind", kind)) }
            if !details.causes.isEmpty {
                var causes = Array(#""causes":["#.utf8)
                for (position, cause) in details.causes.enumerated() {
                    if position > 0 { causes.append(UInt8(ascii: ",")) }
                    causes.append(UInt8(ascii: "{"))
                    causes += field("reason", cause.reason) + [UInt8(ascii: ",")] + field("message", cause.message)
                    if !cause.field.isEmpty { causes += [UInt8(ascii: ",")] + field("field", cause.field) }
                    causes.append(UInt8(ascii: "}"))
                }
                causes.append(UInt8(ascii: "]"))
                fields.append(causes)
            }
            if let seconds = details.retryAfterSeconds {
                fields.append(Array(#""retryAfterSeconds":\#(seconds)"#.utf8))
            }
            out += fields.joined(separator: [UInt8(ascii: ",")])
            out.append(UInt8(ascii: "}"))
        }
        out.append(contentsOf: #","code":\#(code)}"#.utf8)
        return out
    }

    public var text: String { String(decoding: body, as: UTF8.self) }

    // MARK: The failures the server gives, with kube-apiserver's texts

    public static let unauthorized = StatusError(code: 401, reason: "Unauthorized", message: "Unauthorized")

    public static func notFound(_ resource: String, _ name: String) -> StatusError {
        StatusError(
            code: 404,
            reason: "NotFound",
            message: "\(resource) \"\(name)\" not found",
            details: Details(name: name, kind: resource)
        )
    }

    public static let pathNotFound = StatusError(
        code: 404,
        reason: "NotFound",
        message: "the server could not find the requested resource",
        details: Details()
    )

    public static func alreadyExists(_ resource: String, _ name: String) -> StatusError {
        StatusError(
            code: 409,
            reason: "AlreadyExists",
            message: "\(resource) \"\(name)\" already exists",
            details: Details(name: name, kind: resource)
        )
    }

    public static func conflict(_ resource: String, _ name: String) -> StatusError {
        StatusError(
            code: 409,
            reason: "Conflict",
            message:
                "Operation cannot be fulfilled on \(resource) \"\(name)\": the object has been modified; please apply your changes to the latest version and try again",
            details: Details(name: name, kind: resource)
        )
    }

    /// `kind` is the object's Kind (`Node`), as in `Node "n1" is invalid: ...`; details name the Kind too.
    public static func invalid(kind: String, name: String, causes: [Cause]) -> StatusError {
        let summary = causes.map { "\($0.field): \($0.message)" }
        let joined = summary.count == 1 ? summary[0] : "[\(summary.joined(separator: ", "))]"
        return StatusError(
            code: 422,
            reason: "Invalid",
            message: "\(kind) \"\(name)\" is invalid: \(joined)",
            details: Details(name: name, kind: kind, causes: causes)
        )
    }

    /// An RBAC denial; `subresource`, `namespace` and `name` as in the request.
    public static func forbidden(
        user: String,
        verb: String,
        resource: String,
        subresource: String?,
        namespace: String?,
        name: String?
    ) -> StatusError {
        var reason = "User \"\(user)\" cannot \(verb) resource \"\(resource)\""
        if let subresource { reason += " subresource \"\(subresource)\"" }
        reason += " in API group \"\""
        reason += namespace.map { " in the namespace \"\($0)\"" } ?? " at the cluster scope"
        let subject = name.map { "\(resource) \"\($0)\"" } ?? resource
        return StatusError(
            code: 403,
            reason: "Forbidden",
            message: "\(subject) is forbidden: \(reason)",
            details: Details(name: name, kind: resource)
        )
    }

    public static func forbiddenPath(user: String, verb: String, path: String) -> StatusError {
        StatusError(
            code: 403,
            reason: "Forbidden",
            message: "forbidden: User \"\(user)\" cannot \(verb) path \"\(path)\"",
            details: Details()
        )
    }

    public static func expired(_ message: String) -> StatusError {
        StatusError(code: 410, reason: "Expired", message: message)
    }

    public static func tooManyRequests(retryAfterSeconds: Int) -> StatusError {
        StatusError(
            code: 429,
            reason: "TooManyRequests",
            message: "Too many requests, please try again later.",
            details: Details(retryAfterSeconds: retryAfterSeconds)
        )
    }

    public static let unsupportedMediaType = StatusError(
        code: 415,
        reason: "UnsupportedMediaType",
        message:
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json"
    )

    public static func badRequest(_ message: String) -> StatusError {
        StatusError(code: 400, reason: "BadRequest", message: message)
    }

    public static func methodNotAllowed(_ method: String) -> StatusError {
        StatusError(
            code: 405,
            reason: "MethodNotAllowed",
            message: "the server does not allow this method on the requested resource",
            details: Details()
        )
    }

    public static func tooLargeResourceVersion(_ requested: Int, current: Int) -> StatusError {
        StatusError(
            code: 504,
            reason: "Timeout",
            message: "Too large resource version: \(requested), current: \(current)",
            details: Details(
                causes: [Cause(reason: "ResourceVersionTooLarge", message: "Too large resource version", field: "")],
                retryAfterSeconds: 1
            )
        )
    }
}
