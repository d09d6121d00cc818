/// One line of a node watch: {"type":"ADDED","object":{...Node...}}. An ERROR event carries a
/// Status instead of a Node; a BOOKMARK carries only metadata.resourceVersion.
public enum WatchEvent: Equatable, Sendable {
    case added(Node)
    case modified(Node)
    case deleted(Node)
    case bookmark(resourceVersion: String)
    case error(Status)
}

extension WatchEvent: Codable {
    private enum CodingKeys: String, CodingKey {
        case type, object
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let type = try container.decode(String.self, forKey: .type)
        switch type {
        case "ADDED": self = .added(try container.decode(Node.self, forKey: .object))
        case "MODIFIED": self = .modified(try container.decode(Node.self, forKey: .object))
        case "DELETED": self = .deleted(try container.decode(Node.self, forKey: .object))
        case "BOOKMARK":
            let node = try container.decode(Node.self, forKey: .object)
            self = .bookmark(resourceVersion: node.resourceVersion)
        case "ERROR": self = .error(try container.decode(Status.self, forKey: .object))
        default:
            throw DecodingError.dataCorruptedError(
                forKey: .type,
                in: container,
                debugDescription:
                    "unknown watch event type \(KubeError.quoted(type)) (want ADDED, MODIFIED, DELETED, BOOKMARK or ERROR)"
            )
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .added(let node):
            try container.encode("ADDED", forKey: .type)
            try container.encode(node, forKey: .object)
        case .modified(let node):
            try container.encode("MODIFIED", forKey: .type)
            try container.encode(node, forKey: .object)
        case .deleted(let node):
            try container.encode("DELETED", forKey: .type)
            try container.encode(node, forKey: .object)
        case .bookmark(let version):
            try container.encode("BOOKMARK", forKey: .type)
            try container.encode(
                Node(kind: "Node", apiVersion: "v1", metadata: ObjectMeta(resourceVersion: version)),
                forKey: .object
            )
        case .error(let status):
            try container.encode("ERROR", forKey: .type)
            try container.encode(status, forKey: .object)
        }
    }
}
