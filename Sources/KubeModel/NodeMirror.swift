/// The nodes as a client-go reflector and informer keep them: filled by a LIST, kept current by
/// WATCH events, with the resourceVersion to resume from (reference §3.3, §3.7).
///
///     list  GET APIRequest.listNodes(resourceVersion: mirror.listResourceVersion)  → replace
///     watch GET APIRequest.watchNodes(resourceVersion: mirror.lastResourceVersion) → apply each event
///     stream ends normally → watch again from lastResourceVersion (no relist)
///     .relist, or the watch GET itself answering 410 → list again; a LIST that answers 410 →
///     listExpired(), then list again
public struct NodeMirror: Sendable {
    public private(set) var nodes: [String: Node] = [:]
    /// client-go's lastSyncResourceVersion: the list's, then every event's, bookmarks included.
    public private(set) var lastResourceVersion = ""
    /// True once a list has been applied (client-go's HasSynced).
    public private(set) var hasSynced = false
    private var lastResourceVersionUnavailable = false

    public init() {}

    /// The resourceVersion for the next LIST (reflector.relistResourceVersion): "0" at first (any
    /// cached state will do), then the last one seen, and "" (a quorum read) when the server said
    /// that one is too old.
    public var listResourceVersion: String {
        if lastResourceVersionUnavailable { return "" }
        return lastResourceVersion.isEmpty ? "0" : lastResourceVersion
    }

    /// The LIST at `listResourceVersion` answered 410 Expired: the next one reads from etcd.
    public mutating func listExpired() {
        lastResourceVersionUnavailable = true
    }

    /// A complete list (all pages) replaces the mirror; the difference is what changed while we
    /// were not watching.
    public mutating func replace(_ items: [Node], resourceVersion: String) -> NodeChanges {
        var changes = NodeChanges()
        var fresh: [String: Node] = [:]
        fresh.reserveCapacity(items.count)
        for node in items {
            fresh[node.name] = node
            if let old = nodes[node.name] {
                if old != node { changes.updated.append(.init(old: old, new: node)) }
            } else {
                changes.added.append(node)
            }
        }
        for (name, old) in nodes where fresh[name] == nil {
            changes.removed.append(old)
        }
        changes.added.sort { $0.name < $1.name }
        changes.updated.sort { $0.new.name < $1.new.name }
        changes.removed.sort { $0.name < $1.name }
        nodes = fresh
        lastResourceVersion = resourceVersion
        lastResourceVersionUnavailable = false
        hasSynced = true
        return changes
    }

    public mutating func apply(_ event: WatchEvent) -> WatchOutcome {
        switch event {
        case .added(let node), .modified(let node):
            // An informer treats ADDED for a known name as an update and MODIFIED for an unknown one as an add.
            advance(node.resourceVersion)
            let old = nodes.updateValue(node, forKey: node.name)
            guard let old else { return .changes(NodeChanges(added: [node])) }
            return .changes(old == node ? NodeChanges() : NodeChanges(updated: [.init(old: old, new: node)]))
        case .deleted(let node):
            advance(node.resourceVersion)
            let old = nodes.removeValue(forKey: node.name)
            return .changes(NodeChanges(removed: [old ?? node]))
        case .bookmark(let version):
            advance(version)
            return .progressed
        case .error(let status):
            if status.code == 429 {
                let seconds = max(1, status.details?.retryAfterSeconds ?? 1)
                return .backOff(.seconds(seconds), status)
            }
            return .relist(status)
        }
    }

    private mutating func advance(_ version: String) {
        if !version.isEmpty { lastResourceVersion = version }
    }
}
