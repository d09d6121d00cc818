/// How the peer leases changed, for the dataplane.
public struct PeerLeaseChanges: Equatable, Sendable {
    public struct Replacement: Equatable, Sendable {
        public let old: PeerLease
        public let new: PeerLease

        public init(old: PeerLease, new: PeerLease) {
            self.old = old
            self.new = new
        }
    }

    public var added: [PeerLease]
    /// The same node with a different lease (public-ip, backend-data, backend-type or subnet):
    /// replace its route; remove the old subnet's route first when the subnet differs.
    public var replaced: [Replacement]
    public var removed: [PeerLease]
    /// One log line per node that became unusable or changed why: a node that keeps sending
    /// the same bad annotations is reported once, not at every update.
    public var skipped: [String]

    public init(
        added: [PeerLease] = [],
        replaced: [Replacement] = [],
        removed: [PeerLease] = [],
        skipped: [String] = []
    ) {
        self.added = added
        self.replaced = replaced
        self.removed = removed
        self.skipped = skipped
    }

    public var isEmpty: Bool { added.isEmpty && replaced.isEmpty && removed.isEmpty && skipped.isEmpty }
}

/// The peer leases the node mirror implies: nodes with `kube-subnet-manager: "true"`, not our
/// own, whose lease parses (flannel's handleAddLeaseEvent / handleUpdateLeaseEvent / nodeToLease).
///
/// Unlike flannel, a node that loses its kube-subnet-manager annotation or whose lease stops
/// parsing is removed: flannel's update handler ignores it and keeps the stale route.
public struct PeerLeaseView: Sendable {
    public let reader: PeerLeaseReader
    public private(set) var leases: [String: PeerLease] = [:]
    private var skipReasons: [String: String] = [:]

    public init(reader: PeerLeaseReader) {
        self.reader = reader
    }

    /// Every lease, by node name: the snapshot a dataplane starts from.
    public var snapshot: [PeerLease] { leases.values.sorted { $0.nodeName < $1.nodeName } }

    public mutating func apply(_ changes: NodeChanges) -> PeerLeaseChanges {
        var result = PeerLeaseChanges()
        for node in changes.added { take(node, into: &result) }
        for update in changes.updated { take(update.new, into: &result) }
        for node in changes.removed {
            skipReasons[node.name] = nil
            if let old = leases.removeValue(forKey: node.name) { result.removed.append(old) }
        }
        return result
    }

    private mutating func take(_ node: Node, into result: inout PeerLeaseChanges) {
        let name = node.name
        switch reader.read(node) {
        case .lease(let lease):
            skipReasons[name] = nil
            if let old = leases.updateValue(lease, forKey: name) {
                if old != lease { result.replaced.append(.init(old: old, new: lease)) }
            } else {
                result.added.append(lease)
            }
        case .ownNode, .notManaged:
            skipReasons[name] = nil
            if let old = leases.removeValue(forKey: name) { result.removed.append(old) }
        case .unusable(let line):
            if let old = leases.removeValue(forKey: name) { result.removed.append(old) }
            if skipReasons[name] != line {
                skipReasons[name] = line
                result.skipped.append(line)
            }
        }
    }
}
