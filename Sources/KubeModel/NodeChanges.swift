/// What a relist or a watch event changed in the node mirror.
public struct NodeChanges: Equatable, Sendable {
    public struct Update: Equatable, Sendable {
        public let old: Node
        public let new: Node

        public init(old: Node, new: Node) {
            self.old = old
            self.new = new
        }
    }

    public var added: [Node]
    /// Nodes whose object differs from the one held (a resourceVersion bump alone counts).
    public var updated: [Update]
    /// Deleted nodes as last seen. After a relist this includes the nodes deleted while the watch
    /// was down: client-go delivers those as DeletedFinalStateUnknown.
    public var removed: [Node]

    public init(added: [Node] = [], updated: [Update] = [], removed: [Node] = []) {
        self.added = added
        self.updated = updated
        self.removed = removed
    }

    public var isEmpty: Bool { added.isEmpty && updated.isEmpty && removed.isEmpty }
}

/// What the watch loop does after an event.
public enum WatchOutcome: Equatable, Sendable {
    /// The mirror changed (possibly not at all, e.g. an ADDED for a node already held unchanged).
    case changes(NodeChanges)
    /// A BOOKMARK: only the resourceVersion moved.
    case progressed
    /// An ERROR event: 410 Expired (the server no longer holds our resourceVersion) or another
    /// error. List again with `listResourceVersion`, then `replace`.
    case relist(Status)
    /// An ERROR 429: wait, then watch again from the same resourceVersion.
    case backOff(Duration, Status)
}
