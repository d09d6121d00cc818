import Addressing
import Config
import Routes

/// Why a peer's record (a key under `<prefix>/subnets/`, a Node) does not become a route. Other
/// records are unaffected.
public enum PeerSkipReason: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// The key is not `<a.b.c.d>-<len>` (flannel: "not a subnet").
    case badKey = "bad key"
    /// The value is not flannel's lease JSON.
    case badJSON = "bad JSON"
    /// The value has no PublicIP (or 0.0.0.0; on an IPv6-only network no PublicIPv6), so there is
    /// nowhere to send to.
    case missingPublicIP = "missing PublicIP"
    /// The subnet does not lie inside the Network (IPv6-only: the IPv6Network), or the lease lacks
    /// the half the network needs.
    case outsideNetwork = "subnet outside Network"
    /// The subnet overlaps ours without being our own key.
    case overlapsLocal = "overlaps our subnet"
    /// A vxlan peer without a readable BackendData.VtepMAC.
    case badBackendData = "bad BackendData"
    /// A lease of another backend in a host-gw Network: flannel's hostgw ignores it ("Ignoring
    /// non-host-gw subnet"), since that host may not forward for its subnet from the underlay.
    case otherBackend = "BackendType is not host-gw"

    public var description: String { rawValue }
}

/// One peer's lease as its store holds it, parsed as far as it goes: the store's own reading
/// (an etcd key and value, a Node's podCIDR and annotations) turns into this, and the table
/// decides the rest the same way for every store.
public enum PeerRecord: Sendable, Equatable {
    /// `ipv6Subnet`: the IPv6 half of a dual-stack lease (the key's or the Node's second podCIDR);
    /// `subnet` is nil for an IPv6-only lease.
    case lease(subnet: IPv4Prefix?, attributes: LeaseAttributes, ipv6Subnet: IPv6Prefix? = nil)
    /// Unreadable for `reason`; `subnet` when known (the record still occupies it).
    case unreadable(PeerSkipReason, subnet: IPv4Prefix?)
}

/// The peers' leases as last seen, by the store's name for each (an etcd key, a node name), and
/// the routes they make. Pure: a subnet manager's watcher feeds it listings and changes.
public struct PeerTable: Sendable {
    enum Entry: Equatable {
        /// `subnet` is nil on an IPv6-only network, where `ipv6` is always set.
        case peer(subnet: IPv4Prefix?, nextHop: NextHop, ipv6: IPv6Peer? = nil)
        case skipped(PeerSkipReason, subnet: IPv4Prefix?)
    }

    private(set) var records: [String: Entry] = [:]
    /// Every peer entry's route in (network, length) order, kept in step with `records` so a
    /// publish neither sorts nor rebuilds the list (at 5,000 peers the sort was a fifth of the
    /// Kubernetes watcher's CPU).
    private var ordered: [Route] = []
    /// How many skipped entries each reason has; a reason at zero has no key.
    private var skippedCounts: [PeerSkipReason: Int] = [:]
    public let config: NetworkConfig

    public init(config: NetworkConfig) {
        self.config = config
    }

    /// How many records the table holds, valid or not.
    public var count: Int { records.count }

    /// Puts `record` under `name`; returns whether the table changed.
    @discardableResult
    public mutating func put(_ name: String, _ record: PeerRecord) -> Bool {
        let entry = Self.entry(record, config: config)
        let old = records.updateValue(entry, forKey: name)
        guard old != entry else { return false }
        if let old { forget(old) }
        include(entry)
        return true
    }

    /// Removes `name`; returns whether it was there.
    @discardableResult
    public mutating func remove(_ name: String) -> Bool {
        guard let old = records.removeValue(forKey: name) else { return false }
        forget(old)
        return true
    }

    /// Replaces everything with a fresh listing; returns how many names were added, removed or changed.
    @discardableResult
    public mutating func replace(with listing: [String: PeerRecord]) -> (added: Int, removed: Int, changed: Int) {
        var fresh: [String: Entry] = [:]
        for (name, record) in listing { fresh[name] = Self.entry(record, config: config) }
        var added = 0
        var changed = 0
        for (name, entry) in fresh {
            if let old = records[name] {
                if old != entry { changed += 1 }
            } else {
                added += 1
            }
        }
        let removed = records.keys.count { fresh[$0] == nil }
        records = fresh
        ordered = []
        skippedCounts = [:]
        for entry in fresh.values {
            switch entry {
            case .skipped(let reason, _): skippedCounts[reason, default: 0] += 1
            case .peer(let subnet?, let nextHop, _): ordered.append(Route(subnet: subnet, nextHop: nextHop))
            case .peer(nil, _, _): break
            }
        }
        ordered.sort { Self.precedes($0.subnet, $1.subnet) }
        return (added, removed, changed)
    }

    /// The routes to every valid peer: our own subnet is left out, and a record overlapping it
    /// is skipped. Also returns how many records each reason currently skips.
    /// In (network, length) order, so equal tables compare equal and the snapshot is built
    /// deterministically. Without a route touching `localSubnet` (the usual case) this is the
    /// kept list itself, not a copy.
    public func routes(localSubnet: IPv4Prefix?) -> (routes: [Route], skipped: [PeerSkipReason: Int]) {
        guard let localSubnet, ordered.contains(where: { $0.subnet.overlaps(localSubnet) }) else {
            return (ordered, skippedCounts)
        }
        var routes: [Route] = []
        routes.reserveCapacity(ordered.count)
        var skipped = skippedCounts
        for route in ordered {
            if route.subnet == localSubnet { continue }
            if route.subnet.overlaps(localSubnet) {
                skipped[.overlapsLocal, default: 0] += 1
                continue
            }
            routes.append(route)
        }
        return (routes, skipped)
    }

    /// The IPv6 halves of every valid peer's lease in (network, length) order, ours and any
    /// overlapping `localSubnet` left out: what an IPv6 dataplane routes.
    public func ipv6Peers(localSubnet: IPv6Prefix?) -> [IPv6Peer] {
        var peers: [IPv6Peer] = []
        for case .peer(_, _, let ipv6?) in records.values {
            if let localSubnet, ipv6.subnet.overlaps(localSubnet) { continue }
            peers.append(ipv6)
        }
        return peers.sorted { ($0.subnet.network, $0.subnet.length) < ($1.subnet.network, $1.subnet.length) }
    }

    private mutating func include(_ entry: Entry) {
        switch entry {
        case .skipped(let reason, _):
            skippedCounts[reason, default: 0] += 1
        case .peer(let subnet?, let nextHop, _):
            // After any routes of the same subnet: the newest of equal subnets comes last.
            ordered.insert(Route(subnet: subnet, nextHop: nextHop), at: firstIndex { Self.precedes(subnet, $0) })
        case .peer(nil, _, _):
            break
        }
    }

    private mutating func forget(_ entry: Entry) {
        switch entry {
        case .skipped(let reason, _):
            let left = (skippedCounts[reason] ?? 1) - 1
            skippedCounts[reason] = left > 0 ? left : nil
        case .peer(nil, _, _):
            break
        case .peer(let subnet?, let nextHop, _):
            let route = Route(subnet: subnet, nextHop: nextHop)
            var index = firstIndex { !Self.precedes($0, subnet) }
            while index < ordered.count, ordered[index].subnet == subnet, ordered[index] != route { index += 1 }
            precondition(
                index < ordered.count && ordered[index] == route,
                "a peer entry's route is in the ordered list"
            )
            ordered.remove(at: index)
        }
    }

    /// The first index of `ordered` whose route satisfies `isAfter` (false up to some point, true from it).
    private func firstIndex(where isAfter: (IPv4Prefix) -> Bool) -> Int {
        var low = 0
        var high = ordered.count
        while low < high {
            let middle = (low + high) / 2
            if isAfter(ordered[middle].subnet) { high = middle } else { low = middle + 1 }
        }
        return low
    }

    static func precedes(_ a: IPv4Prefix, _ b: IPv4Prefix) -> Bool {
        (a.network, a.length) < (b.network, b.length)
    }

    static func entry(_ record: PeerRecord, config: NetworkConfig) -> Entry {
        let subnet: IPv4Prefix?
        let attributes: LeaseAttributes
        let ipv6Subnet: IPv6Prefix?
        switch record {
        case .unreadable(let reason, let known): return .skipped(reason, subnet: known)
        case .lease(let leased, let published, let leased6):
            (subnet, attributes, ipv6Subnet) = (leased, published, leased6)
        }
        let publicIP = attributes.publicIP
        // An IPv6-only network's peers are reached over their PublicIPv6 alone (flannel writes
        // PublicIP "0.0.0.0" there), and their vxlan MAC is BackendV6Data's.
        let ipv6Only = config.isIPv6Only
        if let network = config.network {
            guard let subnet, network.contains(subnet) else { return .skipped(.outsideNetwork, subnet: subnet) }
            guard publicIP != .any else { return .skipped(.missingPublicIP, subnet: subnet) }
        } else {
            guard let ipv6Subnet, let network6 = config.ipv6?.network, network6.contains(ipv6Subnet) else {
                return .skipped(.outsideNetwork, subnet: subnet)
            }
            guard attributes.publicIPv6Address != nil else { return .skipped(.missingPublicIP, subnet: subnet) }
        }
        let port = config.backend.effectivePort
        let nextHop: NextHop
        switch config.backend.kind {
        case .udp:
            nextHop = NextHop(publicIP: publicIP, port: port, backend: .udp)
        case .hostGateway:
            guard attributes.backendType == Backend.hostGateway.rawValue else {
                return .skipped(.otherBackend, subnet: subnet)
            }
            nextHop = NextHop(publicIP: publicIP, port: 0, backend: .hostGateway)
        case .vxlan:
            guard let data = try? (ipv6Only ? attributes.vxlanV6Data() : attributes.vxlanData()) else {
                return .skipped(.badBackendData, subnet: subnet)
            }
            nextHop = NextHop(publicIP: publicIP, port: port, vtepMAC: data.vtepMAC, backend: .vxlan)
        }
        // The IPv6 half rides along when the network has one and the subnet lies in it; without
        // it the peer is still reached over IPv4, as flanneld's IPv4 half works alone.
        let ipv6 = ipv6Subnet.flatMap { subnet6 -> IPv6Peer? in
            guard let network6 = config.ipv6?.network, network6.contains(subnet6) else { return nil }
            return IPv6Peer(
                subnet: subnet6,
                nextHop: nextHop,
                publicIPv6: attributes.publicIPv6Address,
                vtepMAC: try? attributes.vxlanV6Data().vtepMAC
            )
        }
        return .peer(subnet: ipv6Only ? nil : subnet, nextHop: nextHop, ipv6: ipv6)
    }
}
