import Foundation

/// A core/v1 resource the server keeps: its plural (the URL segment and RBAC name), Kind and scope.
public struct Resource: Sendable, Hashable, CustomStringConvertible {
    public let name: String
    public let kind: String
    public let namespaced: Bool
    public let shortNames: [String]

    public static let nodes = Resource(name: "nodes", kind: "Node", namespaced: false, shortNames: ["no"])
    public static let pods = Resource(name: "pods", kind: "Pod", namespaced: true, shortNames: ["po"])
    public static let all: [Resource] = [.nodes, .pods]

    public static func named(_ name: String) -> Resource? { all.first { $0.name == name } }
    public var description: String { name }
}

/// Where an object lives: its namespace (nil for cluster-scoped resources) and name.
public struct ObjectKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let namespace: String?
    public let name: String

    public init(namespace: String? = nil, name: String) {
        self.namespace = namespace
        self.name = name
    }

    public static func < (lhs: ObjectKey, rhs: ObjectKey) -> Bool {
        (lhs.namespace ?? "", lhs.name) < (rhs.namespace ?? "", rhs.name)
    }

    public var description: String { namespace.map { "\($0)/\(name)" } ?? name }
}

/// `fieldSelector` (metadata.name, metadata.namespace) and equality-based `labelSelector`, the parts
/// kubectl and client-go send for nodes and pods.
struct Selector: Sendable {
    private var fields: [(key: String, value: String, equal: Bool)] = []
    private var labels: [(key: String, value: String?, equal: Bool)] = []

    static let everything = Selector()

    init() {}

    init(fieldSelector: String?, labelSelector: String?) throws(StatusError) {
        for term in Selector.terms(fieldSelector) {
            guard let (key, value, equal) = Selector.split(term), let value else {
                throw .badRequest("invalid field selector: \(term)")
            }
            guard ["metadata.name", "metadata.namespace"].contains(key) else {
                throw .badRequest("field label not supported: \(key)")
            }
            fields.append((key, value, equal))
        }
        for term in Selector.terms(labelSelector) {
            if term.hasPrefix("!") {
                labels.append((String(term.dropFirst()), nil, false))
            } else if let (key, value, equal) = Selector.split(term) {
                labels.append((key, value, equal))
            } else {
                throw .badRequest("unable to parse requirement: \(term)")
            }
        }
    }

    func matches(_ object: JSONValue) -> Bool {
        for field in fields {
            let actual = object.value(at: field.key)?.string ?? ""
            if (actual == field.value) != field.equal { return false }
        }
        for label in labels {
            let actual = object.value(at: "metadata.labels")?[label.key]?.string
            switch (label.value, label.equal) {
            case (nil, true): if actual == nil { return false }
            case (nil, false): if actual != nil { return false }
            case (let value?, true): if actual != value { return false }
            case (let value?, false): if actual == value { return false }
            }
        }
        return true
    }

    /// The single name a `metadata.name=X` selector pins, so a lookup replaces a scan.
    var name: String? { fields.first { $0.key == "metadata.name" && $0.equal }?.value }

    private static func terms(_ text: String?) -> [String] {
        (text ?? "").split(separator: ",").map { String($0).trimmingWhitespace() }.filter { !$0.isEmpty }
    }

    /// `k=v`, `k==v`, `k!=v`, or a bare `k` (exists).
    private static func split(_ term: String) -> (String, String?, Bool)? {
        if let range = term.range(of: "!=") {
            return (String(term[..<range.lowerBound]), String(term[range.upperBound...]), false)
        }
        if let range = term.range(of: "==") ?? term.range(of: "=") {
            return (String(term[..<range.lowerBound]), String(term[range.upperBound...]), true)
        }
        return term.isEmpty ? nil : (term, nil, true)
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var text = Substring(self)
        while text.first?.isWhitespace == true { text = text.dropFirst() }
        while text.last?.isWhitespace == true { text = text.dropLast() }
        return String(text)
    }
}
