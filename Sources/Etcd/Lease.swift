/// An etcd lease ID (an int64 in etcd's API; never 0, which means "no lease").
public struct LeaseID: Sendable, Hashable, CustomStringConvertible {
    public var value: Int64

    public init(_ value: Int64) { self.value = value }

    /// Hexadecimal, as etcdctl prints lease IDs.
    public var description: String { String(UInt64(bitPattern: value), radix: 16) }
}

/// A freshly granted lease.
public struct Lease: Sendable, Equatable {
    public var id: LeaseID
    /// Seconds etcd granted (it may differ from what was asked: etcd enforces a minimum).
    public var ttl: Int64
}

/// What `timeToLive` reports about a live lease.
public struct LeaseTimeToLive: Sendable, Equatable {
    /// Seconds left before expiry.
    public var ttl: Int64
    /// Seconds the lease was granted with (what each keep-alive restores).
    public var grantedTTL: Int64
}
