import Addressing
import Config
import ControlPlane
import Etcd

/// One lease key found under `<prefix>/subnets/`, parsed as far as it goes.
struct ListedLease {
    var kv: KeyValue
    var subnet: IPv4Prefix
    /// nil when the value is not flannel's JSON: the key still occupies its subnet.
    var attributes: LeaseAttributes?
}

/// What to do with one listing of `<prefix>/subnets/`: pure, so the order of preference is
/// decided in one place and the etcd round trips stay in `LeaseManager`.
enum SubnetChoice: Equatable {
    case reservation(KeyValue, IPv4Prefix)
    case existing(KeyValue, IPv4Prefix)
    case create(IPv4Prefix, LeaseOrigin)
    case outOfSubnets

    /// flannel's AcquireLease steps 2–4. `stale`: our own leased keys that no longer fit the
    /// config, which flannel deletes. `requested`: subnets to try by name, in order, before a random one.
    static func choose(
        listing: [ListedLease],
        config: NetworkConfig,
        publicIP: IPv4Address,
        requested: [IPv4Prefix],
        using generator: inout some RandomNumberGenerator
    ) -> (choice: SubnetChoice, stale: [KeyValue]) {
        let ours = listing.filter { $0.attributes?.publicIP == publicIP }
        let stale = ours.filter { $0.kv.lease != nil && !config.fits($0.subnet) }.map(\.kv)
        if let reserved = ours.first(where: { $0.kv.lease == nil && config.fits($0.subnet) }) {
            return (.reservation(reserved.kv, reserved.subnet), stale)
        }
        if let existing = ours.first(where: { $0.kv.lease != nil && config.fits($0.subnet) }) {
            return (.existing(existing.kv, existing.subnet), stale)
        }

        let staleKeys = Set(stale.map(\.key))
        let occupancy = Occupancy(
            listing.filter { !staleKeys.contains($0.kv.key) }.map(\.subnet),
            length: config.subnetLength
        )
        for subnet in requested where config.fits(subnet) && !occupancy.overlaps(subnet) {
            return (.create(subnet, .requested), stale)
        }
        // flannel collects at most the first 100 free subnets and picks one uniformly, so hosts
        // starting together rarely collide while the scan stays short.
        var free: [IPv4Prefix] = []
        for subnet in config.subnets where !occupancy.overlaps(subnet) {
            free.append(subnet)
            if free.count == 100 { break }
        }
        guard let pick = free.randomElement(using: &generator) else { return (.outOfSubnets, stale) }
        return (.create(pick, .random), stale)
    }
}

/// The subnets taken in etcd. Leases are almost always SubnetLen long, so those go in a set and
/// a candidate costs one hash probe; odd lengths (hand-made keys) are checked one by one.
struct Occupancy {
    private var exact: Set<IPv4Prefix> = []
    private var other: [IPv4Prefix] = []

    init(_ subnets: [IPv4Prefix], length: Int) {
        for subnet in subnets {
            if subnet.length == length { exact.insert(subnet) } else { other.append(subnet) }
        }
    }

    func overlaps(_ candidate: IPv4Prefix) -> Bool {
        exact.contains(candidate) || other.contains { $0.overlaps(candidate) }
    }
}

extension ListedLease {
    /// nil for keys that are not `<a.b.c.d>-<len>` (flannel skips them as "not a subnet").
    init?(_ kv: KeyValue) {
        guard let key = LeaseKey(parsing: kv.key) else { return nil }
        self.kv = kv
        subnet = key.subnet
        attributes = try? LeaseAttributes.parse(kv.value)
    }
}
