/// A core/v1 Node, reduced to what flannel reads. Unknown fields (images, capacity, nodeInfo...)
/// are dropped on decoding, which also keeps a 5,000-node mirror small.
public struct Node: Codable, Equatable, Sendable {
    public var kind: String?
    public var apiVersion: String?
    public var metadata: ObjectMeta
    public var spec: NodeSpec
    public var status: NodeStatus

    public init(
        kind: String? = nil,
        apiVersion: String? = nil,
        metadata: ObjectMeta = ObjectMeta(),
        spec: NodeSpec = NodeSpec(),
        status: NodeStatus = NodeStatus()
    ) {
        self.kind = kind
        self.apiVersion = apiVersion
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        kind = try container.decodeIfPresent(String.self, forKey: .kind)
        apiVersion = try container.decodeIfPresent(String.self, forKey: .apiVersion)
        metadata = try container.decodeIfPresent(ObjectMeta.self, forKey: .metadata) ?? ObjectMeta()
        spec = try container.decodeIfPresent(NodeSpec.self, forKey: .spec) ?? NodeSpec()
        status = try container.decodeIfPresent(NodeStatus.self, forKey: .status) ?? NodeStatus()
    }

    public var name: String { metadata.name ?? "" }
    public var resourceVersion: String { metadata.resourceVersion ?? "" }
    /// Never nil: a node without annotations reads as an empty map.
    public var annotations: [String: String] { metadata.annotations ?? [:] }
}

public struct NodeSpec: Codable, Equatable, Sendable {
    public var podCIDR: String?
    /// At most one per family; podCIDRs[0] equals podCIDR on a real API server.
    public var podCIDRs: [String]?

    public init(podCIDR: String? = nil, podCIDRs: [String]? = nil) {
        self.podCIDR = podCIDR
        self.podCIDRs = podCIDRs
    }
}

public struct NodeStatus: Codable, Equatable, Sendable {
    public var conditions: [NodeCondition]?
    public var addresses: [NodeAddress]?

    public init(conditions: [NodeCondition]? = nil, addresses: [NodeAddress]? = nil) {
        self.conditions = conditions
        self.addresses = addresses
    }
}

/// Field order is core/v1's, so an encoded condition reads as the API server's do.
public struct NodeCondition: Codable, Equatable, Sendable {
    public var type: String
    public var status: String
    public var lastHeartbeatTime: String?
    public var lastTransitionTime: String?
    public var reason: String?
    public var message: String?

    public init(
        type: String,
        status: String,
        lastHeartbeatTime: String? = nil,
        lastTransitionTime: String? = nil,
        reason: String? = nil,
        message: String? = nil
    ) {
        self.type = type
        self.status = status
        self.lastHeartbeatTime = lastHeartbeatTime
        self.lastTransitionTime = lastTransitionTime
        self.reason = reason
        self.message = message
    }
}

public struct NodeAddress: Codable, Equatable, Sendable {
    /// "InternalIP", "ExternalIP", "Hostname", ...
    public var type: String
    public var address: String

    public init(type: String, address: String) {
        self.type = type
        self.address = address
    }
}

/// The first page or the whole of `GET /api/v1/nodes`.
public struct NodeList: Codable, Equatable, Sendable {
    public var kind: String?
    public var apiVersion: String?
    public var metadata: ListMeta
    public var items: [Node]

    public init(
        kind: String? = "NodeList",
        apiVersion: String? = "v1",
        metadata: ListMeta = ListMeta(),
        items: [Node] = []
    ) {
        self.kind = kind
        self.apiVersion = apiVersion
        self.metadata = metadata
        self.items = items
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        kind = try container.decodeIfPresent(String.self, forKey: .kind)
        apiVersion = try container.decodeIfPresent(String.self, forKey: .apiVersion)
        metadata = try container.decodeIfPresent(ListMeta.self, forKey: .metadata) ?? ListMeta()
        items = try container.decodeIfPresent([Node].self, forKey: .items) ?? []
    }
}

/// A core/v1 Pod, for its spec.nodeName only.
public struct Pod: Codable, Equatable, Sendable {
    public struct Spec: Codable, Equatable, Sendable {
        public var nodeName: String?
        public init(nodeName: String? = nil) { self.nodeName = nodeName }
    }

    public var metadata: ObjectMeta?
    public var spec: Spec?

    public init(metadata: ObjectMeta? = nil, spec: Spec? = nil) {
        self.metadata = metadata
        self.spec = spec
    }
}
