import Foundation

/// An RFC 6901 pointer, e.g. `/metadata/annotations/example.com~1key`.
struct JSONPointer {
    let tokens: [String]

    init(_ text: String) throws {
        guard text.isEmpty || text.hasPrefix("/") else {
            throw PatchFailure("invalid JSON pointer \"\(text)\"", badRequest: true)
        }
        tokens = text.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map {
            $0.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
        }
    }

    func get(_ document: JSONValue) throws -> JSONValue {
        var current = document
        for token in tokens {
            switch current {
            case .object(let fields):
                guard let next = fields[token] else { throw missing() }
                current = next
            case .array(let items):
                guard let position = Int(token), items.indices.contains(position) else { throw missing() }
                current = items[position]
            default: throw missing()
            }
        }
        return current
    }

    func add(_ value: JSONValue, to document: JSONValue) throws -> JSONValue {
        try update(document, tokens[...]) { container, last in
            switch container {
            case .object(var fields):
                fields[last] = value
                return .object(fields)
            case .array(var items):
                if last == "-" {
                    items.append(value)
                    return .array(items)
                }
                guard let position = Int(last), (0...items.count).contains(position) else { throw missing() }
                items.insert(value, at: position)
                return .array(items)
            default: throw missing()
            }
        }
    }

    func remove(from document: JSONValue) throws -> JSONValue {
        try update(document, tokens[...]) { container, last in
            switch container {
            case .object(var fields):
                guard fields.removeValue(forKey: last) != nil else { throw missing() }
                return .object(fields)
            case .array(var items):
                guard let position = Int(last), items.indices.contains(position) else { throw missing() }
                items.remove(at: position)
                return .array(items)
            default: throw missing()
            }
        }
    }

    private func update(
        _ node: JSONValue,
        _ rest: ArraySlice<String>,
        _ change: (JSONValue, String) throws -> JSONValue
    ) throws -> JSONValue {
        guard let head = rest.first else {
            throw PatchFailure("the whole document cannot be the target", badRequest: true)
        }
        if rest.count == 1 { return try change(node, head) }
        switch node {
        case .object(var fields):
            guard let child = fields[head] else { throw missing() }
            fields[head] = try update(child, rest.dropFirst(), change)
            return .object(fields)
        case .array(var items):
            guard let position = Int(head), items.indices.contains(position) else { throw missing() }
            items[position] = try update(items[position], rest.dropFirst(), change)
            return .array(items)
        default: throw missing()
        }
    }

    private func missing() -> PatchFailure {
        PatchFailure("doc is missing path: \"/\(tokens.joined(separator: "/"))\": missing value")
    }
}
