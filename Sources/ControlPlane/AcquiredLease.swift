import Addressing
import Config
import Routes

/// The subnet this host holds, as its subnet manager last wrote or confirmed it. Says nothing of
/// where it is kept (an etcd key and lease, a Node's podCIDR): `location` names that for log lines.
public struct AcquiredLease: Sendable, Equatable {
    /// The IPv4 subnet; nil on an IPv6-only network (EnableIPv4 false).
    public var subnet: IPv4Prefix?
    /// The IPv6 half of a dual-stack lease; nil when the network has no IPv6 (EnableIPv6 false).
    public var ipv6Subnet: IPv6Prefix?
    /// How long the lease lasts unless renewed; nil when it does not expire (an etcd
    /// reservation, a Kubernetes node's podCIDR).
    public var ttl: Duration?
    public var origin: LeaseOrigin
    /// The network config the subnet was taken under.
    public var config: NetworkConfig
    /// What the lease publishes: PublicIP, backend type and data, as flannel writes them.
    public var attributes: LeaseAttributes
    /// Where the lease is kept, for log lines ("/coreos.com/network/subnets/10.244.3.0-24",
    /// "node n1's podCIDR").
    public var location: String

    public init(
        subnet: IPv4Prefix?,
        ttl: Duration?,
        origin: LeaseOrigin,
        config: NetworkConfig,
        attributes: LeaseAttributes,
        location: String,
        ipv6Subnet: IPv6Prefix? = nil
    ) {
        self.subnet = subnet
        self.ipv6Subnet = ipv6Subnet
        self.ttl = ttl
        self.origin = origin
        self.config = config
        self.attributes = attributes
        self.location = location
    }
}

/// Where an acquired subnet came from, in flannel's order of preference.
public enum LeaseOrigin: Sendable, Equatable {
    /// A key with no etcd lease naming our PublicIP: an operator's reservation, kept without TTL.
    case reservation
    /// Our own lease from an earlier run (same PublicIP), moved to a fresh etcd lease.
    case existing
    /// A subnet we asked for by name: the one we held before a loss, or subnet.env's FLANNEL_SUBNET.
    case requested
    /// A free subnet drawn at random between SubnetMin and SubnetMax.
    case random
    /// Assigned by someone else (a Kubernetes node's podCIDR, set by kube-controller-manager).
    case assigned
}

/// What happened to our lease, in order, on a `LeaseKeeper`'s `changes`. A loss is followed by
/// an `.acquired` as soon as a subnet could be taken again; its subnet may differ, and then
/// subnet.env and the local routes must follow.
public enum LeaseChange: Sendable, Equatable {
    case acquired(AcquiredLease)
    case renewed(AcquiredLease)
    case lost(AcquiredLease, reason: String)
}

extension AcquiredLease {
    /// Both subnets, as the etcd key names them.
    public var leaseKey: LeaseKey { LeaseKey(subnet: subnet, ipv6Subnet: ipv6Subnet) }

    /// "10.244.3.0/24", "10.244.3.0/24 and fc00:0:0:3::/64" or "fc00:0:0:3::/64", for log lines.
    public var subnets: String { leaseKey.subnets }

    /// The subnet that names the lease in log lines: the IPv4 one, or the IPv6 one of an IPv6-only lease.
    public var label: String { leaseKey.label }

    /// A publisher of an empty table for this lease's network and subnet: what a peer watcher
    /// publishes into, before its first publication.
    public func emptyPublisher() -> RouteTablePublisher {
        RouteTablePublisher(
            RouteSnapshot(routes: [], config: config, localSubnet: subnet)
        )
    }
}
