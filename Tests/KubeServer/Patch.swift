/// The three patch types kube-apiserver accepts for a built-in resource (server-side apply aside).
public enum PatchType: String, Sendable, CaseIterable {
    case strategicMerge = "application/strategic-merge-patch+json"
    case merge = "application/merge-patch+json"
    case json = "application/json-patch+json"
}

/// Why a patch could not be applied; the server answers 422 (or 400 for a body that is not a patch).
public struct PatchFailure: Error, CustomStringConvertible {
    public let description: String
    public let badRequest: Bool
    init(_ description: String, badRequest: Bool = false) {
        self.description = description
        self.badRequest = badRequest
    }
}

public enum Patch {
    public static func apply(_ type: PatchType, _ patch: JSONValue, to original: JSONValue) throws -> JSONValue {
        switch type {
        case .merge: return mergePatch(original, patch)
        case .strategicMerge:
            guard case .object = patch else {
                throw PatchFailure("a strategic merge patch must be a JSON object", badRequest: true)
            }
            return try strategicMerge(original, patch, path: "")
        case .json:
            guard case .array(let operations) = patch else {
                throw PatchFailure("a JSON patch must be an array of operations", badRequest: true)
            }
            return try jsonPatch(original, operations)
        }
    }

    // MARK: RFC 7386

    static func mergePatch(_ original: JSONValue, _ patch: JSONValue) -> JSONValue {
        guard case .object(let changes) = patch else { return patch }
        var fields = original.object ?? [:]
        for (key, value) in changes {
            if value.isNull {
                fields[key] = nil
            } else {
                fields[key] = mergePatch(fields[key] ?? .null, value)
            }
        }
        return .object(fields)
    }

    // MARK: Strategic merge (k8s.io/apimachinery strategicpatch), with core/v1 Node and Pod's patch tags

    /// Lists merged by a key instead of replaced, from the `patchMergeKey` tags in core/v1 types.go.
    static let mergeKeys: [String: String] = [
        "status.conditions": "type",
        "status.addresses": "type",
        "metadata.ownerReferences": "uid",
        "spec.containers": "name",
        "spec.initContainers": "name",
        "spec.volumes": "name",
        "spec.tolerations": "key",
    ]
    /// Primitive lists with `patchStrategy:"merge"`: a patch adds its values (a union).
    static let mergedPrimitiveLists: Set<String> = ["spec.podCIDRs", "metadata.finalizers"]

    static func strategicMerge(_ original: JSONValue, _ patch: JSONValue, path: String) throws -> JSONValue {
        guard case .object(var changes) = patch else { return patch }
        if let directive = changes.removeValue(forKey: "$patch") {
            switch directive.string {
            case "replace": return .object(changes)
            case "delete": return .null
            case "merge": break
            default: throw PatchFailure("unknown patch directive \(directive.text) at \(path)", badRequest: true)
            }
        }
        var fields = original.object ?? [:]
        if let retained = changes.removeValue(forKey: "$retainKeys")?.array {
            let keep = Set(retained.compactMap(\.string))
            fields = fields.filter { keep.contains($0.key) }
        }
        for (key, value) in changes {
            let child = path.isEmpty ? key : "\(path).\(key)"
            if key.hasPrefix("$setElementOrder/") { continue }  // order only; the result is unordered where it matters
            if key.hasPrefix("$deleteFromPrimitiveList/") {
                let listKey = String(key.dropFirst("$deleteFromPrimitiveList/".count))
                let removed = Set(value.array ?? [])
                if let items = fields[listKey]?.array {
                    fields[listKey] = .array(items.filter { !removed.contains($0) })
                }
                continue
            }
            switch value {
            case .null:
                fields[key] = nil
            case .object:
                let merged = try strategicMerge(fields[key] ?? .null, value, path: child)
                fields[key] = merged.isNull && value["$patch"]?.string == "delete" ? nil : merged
            case .array(let items):
                fields[key] = try mergeList(fields[key]?.array ?? [], items, path: child)
            default:
                fields[key] = value
            }
        }
        return .object(fields)
    }

    static func mergeList(_ original: [JSONValue], _ patch: [JSONValue], path: String) throws -> JSONValue {
        if patch.contains(where: { $0["$patch"]?.string == "replace" }) {
            return .array(patch.filter { $0["$patch"] == nil })
        }
        if mergedPrimitiveLists.contains(path) {
            var result = original
            for item in patch where !result.contains(item) { result.append(item) }
            return .array(result)
        }
        guard let mergeKey = mergeKeys[path] else { return .array(patch) }
        var result = original
        for item in patch {
            guard let key = item[mergeKey] else {
                throw PatchFailure("map: \(item.text) does not contain declared merge key: \(mergeKey)")
            }
            let existing = result.firstIndex { $0[mergeKey] == key }
            if item["$patch"]?.string == "delete" {
                if let existing { result.remove(at: existing) }
            } else if let existing {
                result[existing] = try strategicMerge(result[existing], item, path: path)
            } else {
                result.append(try strategicMerge(.object([:]), item, path: path))
            }
        }
        return .array(result)
    }

    // MARK: RFC 6902

    static func jsonPatch(_ original: JSONValue, _ operations: [JSONValue]) throws -> JSONValue {
        var document = original
        for operation in operations {
            guard let op = operation["op"]?.string, let path = operation["path"]?.string else {
                throw PatchFailure(
                    "a JSON patch operation needs \"op\" and \"path\": \(operation.text)",
                    badRequest: true
                )
            }
            let pointer = try JSONPointer(path)
            switch op {
            case "add":
                document = try pointer.add(operation["value"] ?? .null, to: document)
            case "remove":
                document = try pointer.remove(from: document)
            case "replace":
                _ = try pointer.get(document)
                document = try pointer.remove(from: document)
                document = try pointer.add(operation["value"] ?? .null, to: document)
            case "move", "copy":
                guard let from = operation["from"]?.string else {
                    throw PatchFailure("\(op) operation needs \"from\"", badRequest: true)
                }
                let source = try JSONPointer(from)
                let value = try source.get(document)
                if op == "move" { document = try source.remove(from: document) }
                document = try pointer.add(value, to: document)
            case "test":
                guard try pointer.get(document) == (operation["value"] ?? .null) else {
                    throw PatchFailure("testing value \(path) failed: test failed")
                }
            default:
                throw PatchFailure("unexpected kind: \(op)", badRequest: true)
            }
        }
        return document
    }
}
