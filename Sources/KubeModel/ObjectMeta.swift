/// The metadata fields weftd reads. Every field is optional because the API omits empty ones:
/// a node created without annotations has no `annotations` key at all (flannel issue #969).
public struct ObjectMeta: Codable, Equatable, Sendable {
    public var name: String?
    public var namespace: String?
    public var uid: String?
    public var resourceVersion: String?
    public var creationTimestamp: String?
    public var labels: [String: String]?
    public var annotations: [String: String]?

    public init(
        name: String? = nil,
        namespace: String? = nil,
        uid: String? = nil,
        resourceVersion: String? = nil,
        creationTimestamp: String? = nil,
        labels: [String: String]? = nil,
        annotations: [String: String]? = nil
    ) {
        self.name = name
        self.namespace = namespace
        self.uid = uid
        self.resourceVersion = resourceVersion
        self.creationTimestamp = creationTimestamp
        self.labels = labels
        self.annotations = annotations
    }
}

/// A list's metadata: the snapshot's resourceVersion and, when paged, the token for the next page.
public struct ListMeta: Codable, Equatable, Sendable {
    public var resourceVersion: String?
    public var `continue`: String?

    public init(resourceVersion: String? = nil, continue token: String? = nil) {
        self.resourceVersion = resourceVersion
        self.continue = token
    }
}
