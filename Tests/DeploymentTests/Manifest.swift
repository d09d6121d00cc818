import Foundation
import Yams

/// dist/kubernetes/weft.yml as the API server gets it: one object per YAML document.
struct Manifest {
    static let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("dist/kubernetes/weft.yml").path

    let objects: [[String: Any]]

    static func load() throws -> Manifest {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var documents = try Yams.load_all(yaml: text)
        var objects: [[String: Any]] = []
        while let document = documents.next() {
            guard let object = document as? [String: Any] else {
                throw ManifestError("a document in \(path) is not a mapping")
            }
            objects.append(object)
        }
        // The sequence ends at a syntax error too; only `error` tells the two apart.
        if let error = documents.error { throw ManifestError("\(path) does not parse: \(error)") }
        return Manifest(objects: objects)
    }

    /// The one object of `kind` named `name`, or nil.
    func object(_ kind: String, _ name: String) -> [String: Any]? {
        let matches = objects.filter { $0["kind"] as? String == kind && $0.at("metadata", "name") as? String == name }
        return matches.count == 1 ? matches[0] : nil
    }
}

struct ManifestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension Dictionary where Key == String, Value == Any {
    /// The value at a path of keys, or nil where one is missing.
    func at(_ keys: String...) -> Any? {
        var current: Any? = self
        for key in keys { current = (current as? [String: Any])?[key] }
        return current
    }

    func list(_ keys: String...) -> [[String: Any]] {
        var current: Any? = self
        for key in keys { current = (current as? [String: Any])?[key] }
        return current as? [[String: Any]] ?? []
    }
}

extension Array where Element == [String: Any] {
    /// The element whose "name" is `name`, or nil.
    func named(_ name: String) -> [String: Any]? { first { $0["name"] as? String == name } }
}
