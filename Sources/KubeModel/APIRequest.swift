/// The requests flannel's kube subnet manager makes (reference §1.3, §3.1), as method and path
/// plus the RBAC verb and resource each needs, so a 403 can name the missing rule.
public struct APIRequest: Equatable, Sendable, CustomStringConvertible {
    public enum Verb: String, Equatable, Sendable {
        case get, list, watch, patch
    }

    /// "GET" or "PATCH".
    public let method: String
    public let verb: Verb
    /// "nodes" or "pods".
    public let resource: String
    public let subresource: String?
    public let namespace: String?
    public let name: String?
    /// Path and query, e.g. "/api/v1/nodes?limit=500&resourceVersion=0", to append to the server's base path.
    public let path: String
    /// For PATCH: flannel sends strategic merge patches.
    public let contentType: String?

    public static let strategicMergePatch = "application/strategic-merge-patch+json"
    /// client-go's page size for the informer's list.
    public static let listPageSize = 500

    /// `GET /api/v1/namespaces/{ns}/pods/{name}`: node-name discovery when NODE_NAME is unset.
    public static func getPod(namespace: String, name: String) -> APIRequest {
        APIRequest(
            method: "GET",
            verb: .get,
            resource: "pods",
            subresource: nil,
            namespace: namespace,
            name: name,
            path: "/api/v1/namespaces/\(escapePath(namespace))/pods/\(escapePath(name))",
            contentType: nil
        )
    }

    /// `GET /api/v1/nodes/{name}`, with `?resourceVersion=0` for a cache read (the alloc backend's).
    public static func getNode(_ name: String, resourceVersion: String? = nil) -> APIRequest {
        let query = resourceVersion.map { "?" + encodeQuery([("resourceVersion", $0)]) } ?? ""
        return nodes(.get, name: name, path: "/api/v1/nodes/\(escapePath(name))\(query)")
    }

    /// The reflector's list: `limit=500&resourceVersion=<rv>` for the first page, `continue=<token>&limit=500` after.
    public static func listNodes(resourceVersion: String, continueToken: String? = nil) -> APIRequest {
        var query = [("limit", String(listPageSize))]
        if let continueToken {
            query.append(("continue", continueToken))
        } else if !resourceVersion.isEmpty {
            query.append(("resourceVersion", resourceVersion))
        }
        return nodes(.list, path: "/api/v1/nodes?\(encodeQuery(query))")
    }

    /// The reflector's watch from `resourceVersion`, with bookmarks and a server-side timeout.
    public static func watchNodes(resourceVersion: String, timeoutSeconds: Int) -> APIRequest {
        let query = [
            ("allowWatchBookmarks", "true"), ("resourceVersion", resourceVersion),
            ("timeoutSeconds", String(timeoutSeconds)), ("watch", "true"),
        ]
        return nodes(.watch, path: "/api/v1/nodes?\(encodeQuery(query))")
    }

    /// `PATCH /api/v1/nodes/{name}/status`: every write flannel makes (annotations and the condition).
    public static func patchNodeStatus(_ name: String) -> APIRequest {
        nodes(.patch, name: name, subresource: "status", path: "/api/v1/nodes/\(escapePath(name))/status")
    }

    /// A request on the cluster-scoped nodes: GET for reads, PATCH with a strategic merge patch.
    private static func nodes(
        _ verb: Verb,
        name: String? = nil,
        subresource: String? = nil,
        path: String
    ) -> APIRequest {
        APIRequest(
            method: verb == .patch ? "PATCH" : "GET",
            verb: verb,
            resource: "nodes",
            subresource: subresource,
            namespace: nil,
            name: name,
            path: path,
            contentType: verb == .patch ? strategicMergePatch : nil
        )
    }

    /// client-go's watch timeout: uniform in [300, 600) seconds, so watches of many nodes do not
    /// all end together.
    public static func watchTimeoutSeconds(using generator: inout some RandomNumberGenerator) -> Int {
        Int(300 * (Double.random(in: 0..<1, using: &generator) + 1))
    }

    /// As RBAC and kubectl auth can-i name it: "nodes/status patch".
    public var rbacRule: String {
        "\(resource)\(subresource.map { "/\($0)" } ?? "") \(verb.rawValue)"
    }

    public var description: String { "\(method) \(path)" }

    /// Go's url.Values.Encode: keys in order, values query-escaped.
    static func encodeQuery(_ pairs: [(String, String)]) -> String {
        pairs.sorted { $0.0 < $1.0 }.map { "\($0.0)=\(escape($0.1, spaceAsPlus: true))" }.joined(separator: "&")
    }

    static func escapePath(_ segment: String) -> String { escape(segment, spaceAsPlus: false) }

    private static func escape(_ text: String, spaceAsPlus: Bool) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: " ") where spaceAsPlus:
                out += "+"
            default:
                let hex = Array("0123456789ABCDEF".unicodeScalars)
                out += "%"
                out.unicodeScalars.append(hex[Int(byte >> 4)])
                out.unicodeScalars.append(hex[Int(byte & 0x0F)])
            }
        }
        return out
    }
}
