/// One key as etcd stores it. Keys and values are bytes in etcd; Weft's are UTF-8 text
/// (flannel stores JSON), so non-UTF-8 bytes decode with replacement characters rather than failing.
public struct KeyValue: Sendable, Equatable {
    public var key: String
    public var value: String
    /// Revision of the put that created the key (it is 0 only in a delete event's kv).
    public var createRevision: Int64
    /// Revision of the last put or delete of the key.
    public var modRevision: Int64
    /// Number of puts since creation; 0 means the key does not exist.
    public var version: Int64
    /// The lease the key is attached to, if any.
    public var lease: LeaseID?

    public init(key: String, value: String, createRevision: Int64, modRevision: Int64, version: Int64, lease: LeaseID?)
    {
        self.key = key
        self.value = value
        self.createRevision = createRevision
        self.modRevision = modRevision
        self.version = version
        self.lease = lease
    }

    init(_ wire: Wire.KeyValue) {
        key = wire.key?.text ?? ""
        value = wire.value?.text ?? ""
        createRevision = wire.create_revision?.value ?? 0
        modRevision = wire.mod_revision?.value ?? 0
        version = wire.version?.value ?? 0
        lease = wire.lease.flatMap { $0.value == 0 ? nil : LeaseID($0.value) }
    }
}

/// The answer to a get or a prefix range: the keys found and the store's revision when read.
public struct RangeResult: Sendable, Equatable {
    public var kvs: [KeyValue]
    /// How many keys matched (can exceed `kvs.count` only when a limit was given).
    public var count: Int64
    /// The store's revision at the time of the read; watch from `revision + 1` to see what follows.
    public var revision: Int64
    /// The etcd cluster that answered (a uint64's bit pattern); 0 when the answer did not say.
    public var clusterID: Int64

    init(_ wire: Wire.RangeResponse) {
        kvs = (wire.kvs ?? []).map(KeyValue.init)
        count = wire.count?.value ?? 0
        revision = wire.header?.revision?.value ?? 0
        clusterID = wire.header?.cluster_id?.value ?? 0
    }
}

/// The end of the range that holds exactly the keys starting with `prefix`: the prefix with its last
/// byte incremented (trailing 0xff bytes dropped first). An empty or all-0xff prefix means "every
/// key", which etcd spells as range_end "\0".
func prefixRangeEnd(_ prefix: [UInt8]) -> [UInt8] {
    var end = prefix
    while let last = end.last {
        if last < 0xff {
            end[end.count - 1] = last + 1
            return end
        }
        end.removeLast()
    }
    return [0]
}
