import Addressing
import Config
import ControlPlane
import Etcd

/// One lease key found under `<prefix>/subnets/`, parsed as far as it goes.
struct ListedLease {
    var kv: KeyValue
    /// Both subnets the key names (the IPv6 one for a dual-stack lease).
    var key: LeaseKey
    /// nil when the value is not flannel's JSON: the key still occupies its subnets.
    var attributes: LeaseAttributes?

    var subnet: IPv4Prefix? { key.subnet }
}

/// What to do with one listing of `<prefix>/subnets/`: pure, so the order of preference is
/// decided in one place and the etcd round trips stay in `LeaseManager`.
enum SubnetChoice: Equatable {
    case reservation(KeyValue, LeaseKey)
    case existing(KeyValue, LeaseKey)
    case create(LeaseKey, LeaseOrigin)
    case outOfSubnets
    /// No IPv6 subnet is free (the IPv4 ones are, or the network is IPv6-only): flannel's "out of subnets" too.
    case outOfIPv6Subnets(IPv6Allocation)

    /// flannel's AcquireLease steps 2–4. `stale`: our own leased keys that no longer fit the
    /// config (either half), which flannel deletes. `requested`: subnets to try by name, in
    /// order, before a random one.
    static func choose(
        listing: [ListedLease],
        config: NetworkConfig,
        attributes: LeaseAttributes,
        requested: [LeaseKey],
        using generator: inout some RandomNumberGenerator
    ) -> (choice: SubnetChoice, stale: [KeyValue]) {
        let ours = listing.filter { $0.attributes?.isSameHost(as: attributes, ipv6Only: config.isIPv6Only) == true }
        let stale = ours.filter { $0.kv.lease != nil && !config.fits($0.key) }.map(\.kv)
        if let reserved = ours.first(where: { $0.kv.lease == nil && config.fits($0.key) }) {
            return (.reservation(reserved.kv, reserved.key), stale)
        }
        if let existing = ours.first(where: { $0.kv.lease != nil && config.fits($0.key) }) {
            return (.existing(existing.kv, existing.key), stale)
        }

        let staleKeys = Set(stale.map(\.key))
        let taken = listing.filter { !staleKeys.contains($0.kv.key) }
        let occupancy = config.ipv4.map { Occupancy(taken.compactMap(\.key.subnet), length: $0.subnetLength) }
        let occupancy6 = config.ipv6.map { Occupancy(taken.compactMap(\.key.ipv6Subnet), length: $0.subnetLength) }
        func isFree(_ key: LeaseKey) -> Bool {
            if let occupancy, let subnet = key.subnet, occupancy.overlaps(subnet) { return false }
            guard let occupancy6, let subnet6 = key.ipv6Subnet else { return true }
            return !occupancy6.overlaps(subnet6)
        }
        for key in requested where config.fits(key) && isFree(key) {
            return (.create(key, .requested), stale)
        }
        // flannel collects at most the first 100 free subnets of each family and picks one of
        // each uniformly, so hosts starting together rarely collide while the scan stays short.
        var subnet: IPv4Prefix?
        if let ipv4 = config.ipv4, let occupancy {
            guard let free = occupancy.firstFree(in: ipv4).randomElement(using: &generator) else {
                return (.outOfSubnets, stale)
            }
            subnet = free
        }
        guard let ipv6 = config.ipv6, let occupancy6 else { return (.create(LeaseKey(subnet: subnet), .random), stale) }
        guard let subnet6 = occupancy6.firstFree(in: ipv6).randomElement(using: &generator) else {
            return (.outOfIPv6Subnets(ipv6), stale)
        }
        return (.create(LeaseKey(subnet: subnet, ipv6Subnet: subnet6), .random), stale)
    }
}

/// The subnets of one family taken in etcd. Leases are almost always SubnetLen long, so those go
/// in a set and a candidate costs one hash probe; odd lengths (hand-made keys) are checked one by one.
struct Occupancy<Prefix: AllocatablePrefix> {
    private var exact: Set<Prefix> = []
    private var other: [Prefix] = []

    init(_ subnets: [Prefix], length: Int) {
        for subnet in subnets {
            if subnet.length == length { exact.insert(subnet) } else { other.append(subnet) }
        }
    }

    func overlaps(_ candidate: Prefix) -> Bool {
        exact.contains(candidate) || other.contains { $0.overlaps(candidate) }
    }

    /// The first `limit` subnets from SubnetMin up to SubnetMax that nothing overlaps.
    func firstFree(in allocation: SubnetAllocation<Prefix>, limit: Int = 100) -> [Prefix] {
        var free: [Prefix] = []
        var candidate: Prefix? = Prefix(allocation.subnetMin, length: allocation.subnetLength)
        while let subnet = candidate, subnet.network <= allocation.subnetMax, free.count < limit {
            if !overlaps(subnet) { free.append(subnet) }
            candidate = subnet.next
        }
        return free
    }
}

extension ListedLease {
    /// nil for keys that are not flannel's `<a.b.c.d>-<len>[&<ipv6>-<len>]` (it skips them as
    /// "not a subnet").
    init?(_ kv: KeyValue) {
        guard let key = LeaseKey(parsing: kv.key) else { return nil }
        self.kv = kv
        self.key = key
        attributes = try? LeaseAttributes.parse(kv.value)
    }
}
