import Addressing
import Config
import ControlPlane
import Etcd

/// Why the etcd subnet manager could not read the network config or take a subnet, in etcd's
/// terms (keys, etcdctl commands). Thrown as a `LeaseError`, whose description is `description`.
public enum EtcdLeaseFailure: Sendable, Equatable, CustomStringConvertible {
    /// `<prefix>/config` does not exist (in etcd's v3 key space).
    case configMissing(key: String)
    /// `<prefix>/config` exists but is not a valid flannel network config.
    case configInvalid(key: String, ConfigError)
    /// Every subnet between SubnetMin and SubnetMax is taken.
    case outOfSubnets(network: IPv4Prefix, subnetMin: IPv4Address, subnetMax: IPv4Address, subnets: Int, prefix: String)
    /// IPv4 subnets are free, but every IPv6 subnet between IPv6SubnetMin and IPv6SubnetMax is taken.
    case outOfIPv6Subnets(network: IPv6Prefix, subnetMin: IPv6Address, subnetMax: IPv6Address, prefix: String)
    /// Other hosts kept winning the compare-and-create transaction.
    case contended(attempts: Int)
    /// The lease with our PublicIP belongs to another node (its owner key names another node ID).
    /// `subnets` as the key names them; `ipv6Only` when hosts are known by their PublicIPv6.
    case ownedByAnotherNode(
        subnets: String,
        publicIP: String,
        ipv6Only: Bool,
        key: String,
        ownerKey: String,
        owner: NodeOwner,
        us: NodeOwner
    )
    /// etcd could not be asked.
    case etcd(EtcdError)

    public var description: String {
        switch self {
        case .configMissing(let key):
            let example = #"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}"#
            return
                "network config not found at etcd key \(key); create it with ETCDCTL_API=3 etcdctl put \(key) '\(example)' "
                + "(data written with the v2 API, e.g. `etcdctl set`, is invisible to weft, as to flannel ≥ 0.18)"
        case .configInvalid(let key, let error):
            return
                "network config at etcd key \(key) is invalid: \(error.problem); fix it with ETCDCTL_API=3 etcdctl put \(key) '<json>'"
        case .outOfSubnets(let network, let subnetMin, let subnetMax, let subnets, let prefix):
            return
                "out of subnets: all \(subnets) subnets of \(network) between SubnetMin \(subnetMin) and SubnetMax \(subnetMax) are leased; "
                + "remove stale leases (ETCDCTL_API=3 etcdctl get --prefix \(EtcdPath.subnets(prefix: prefix))/) or widen SubnetMin/SubnetMax"
        case .outOfIPv6Subnets(let network, let subnetMin, let subnetMax, let prefix):
            return
                "out of IPv6 subnets: every subnet of \(network) between IPv6SubnetMin \(subnetMin) and IPv6SubnetMax \(subnetMax) is leased; "
                + "remove stale leases (ETCDCTL_API=3 etcdctl get --prefix \(EtcdPath.subnets(prefix: prefix))/) or widen IPv6SubnetMin/IPv6SubnetMax"
        case .contended(let attempts):
            return
                "lost the race for a free subnet \(attempts) times in a row (other hosts took each one first); retry, or check for many hosts starting at once"
        case .ownedByAnotherNode(let subnets, let publicIP, let ipv6Only, let key, let ownerKey, let owner, let us):
            let (name, flag) = ipv6Only ? ("PublicIPv6", "--public-ipv6") : ("PublicIP", "--public-ip")
            return
                "\(name) \(publicIP) already belongs to node \(owner.hostname) (node ID \(owner.nodeID)), which holds \(subnets); this node (\(us.hostname), \(us.nodeID)) will not take it: "
                + "two nodes cannot share a \(name). Give this node its own \(flag) (or --iface), or, if that node is gone for good, delete its lease: ETCDCTL_API=3 etcdctl del \(key) && etcdctl del \(ownerKey)"
        case .etcd(let error):
            return error.description
        }
    }

    /// The generic error weftd's run loop sees.
    public var leaseError: LeaseError {
        switch self {
        case .configMissing: LeaseError(.configMissing, description)
        case .configInvalid: LeaseError(.configInvalid, description)
        case .outOfSubnets, .outOfIPv6Subnets: LeaseError(.noSubnet, description)
        case .contended: LeaseError(.contended, description)
        case .ownedByAnotherNode: LeaseError(.ownedByAnotherNode, description)
        case .etcd(let error): LeaseError(.store, description, problem: Self.problem(error))
        }
    }

    /// etcd being away is one problem whatever the errno text; each server answer is its own.
    static func problem(_ error: EtcdError) -> String {
        switch error.reason {
        case .unreachable, .timedOut: "etcd unreachable"
        case .server(let code, _): "etcd server \(code)"
        default: "etcd \(error.reason)"
        }
    }
}

extension LeaseError {
    /// A failure of the etcd subnet manager.
    public init(_ failure: EtcdLeaseFailure) { self = failure.leaseError }
}
