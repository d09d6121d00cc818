/// One change seen by a watch.
public struct WatchEvent: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case put
        case delete
    }

    public var kind: Kind
    /// The key after the change; for a delete only `key` and `modRevision` are set.
    public var kv: KeyValue
    /// The revision of the change (the kv's modRevision).
    public var revision: Int64 { kv.modRevision }

    public init(kind: Kind, kv: KeyValue) {
        self.kind = kind
        self.kv = kv
    }
}
