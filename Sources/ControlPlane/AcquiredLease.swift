import Addressing
import Config
import Etcd

/// The subnet this host holds, as last written to etcd.
public struct AcquiredLease: Sendable, Equatable {
    public var subnet: IPv4Prefix
    /// `<prefix>/subnets/<a.b.c.d>-<len>`.
    public var key: String
    /// The etcd lease the key is attached to; nil for a reservation, which has no TTL.
    public var etcdLease: LeaseID?
    /// What etcd granted (it may round a requested TTL up); nil for a reservation.
    public var ttl: Duration?
    /// modRevision of the key as we last wrote or checked it: watch events on our own key at or
    /// below it are echoes of our own writes.
    public var revision: Int64
    public var origin: LeaseOrigin
    /// The network config the subnet was chosen under.
    public var config: NetworkConfig
    /// The exact value in etcd: our LeaseAttributes JSON, byte for byte as flannel writes it.
    public var value: String
}

/// What happened to our lease, in order, on `LeaseManager.changes`. A loss is followed by an
/// `.acquired` as soon as a subnet could be taken again; its subnet may differ, and then
/// subnet.env and the local routes must follow.
public enum LeaseChange: Sendable, Equatable {
    case acquired(AcquiredLease)
    case renewed(AcquiredLease)
    case lost(AcquiredLease, reason: String)
}
