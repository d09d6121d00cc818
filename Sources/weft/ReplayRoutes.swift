import Addressing
import Routes

/// Turns a ROUTES.json into what the pipeline reads: a route table and our own lease.
struct ReplayRoutes: ~Copyable {
    let snapshot: RouteSnapshot
    /// The dual-stack leases' IPv6 subnets, each reached over its lease's IPv4 next hop, as the
    /// engine carries inner IPv6.
    let ipv6Snapshot: IPv6RouteSnapshot
    /// Some lease has an IPv6 subnet: the overlay carries IPv6 (without, the engine refuses inner
    /// IPv6 as it refuses any other non-IPv4 packet).
    let carriesIPv6: Bool
    /// What the pipeline's `ipv6Table` parameter takes.
    var ipv6Table: IPv6RouteTable? { carriesIPv6 ? ipv6Snapshot.table : nil }
    let network: IPv4Prefix
    /// The routes the table was built from, for messages.
    let routes: [Route]

    /// Routes for `backend`: vxlan takes only vxlan leases (flannel's vxlan backend ignores the
    /// others), (LeaseFile has checked their BackendData); udp takes every lease (flannel's udp backend
    /// does not filter by type). Every peer is reached on `port`, as flannel assumes. With no
    /// `network`, the smallest prefix covering every lease stands in for flannel's Network: replay
    /// has no etcd config, and the table's lookups give the same answers for any covering prefix.
    init(
        leases: LeaseFile,
        path: String,
        backend: Backend,
        port: UInt16,
        network: IPv4Prefix?,
        localSubnet: IPv4Prefix?,
        localIPv6Subnet: IPv6Prefix? = nil
    ) throws(CommandFailure) {
        var routes: [Route] = []
        var ipv6Routes: [IPv6Route] = []
        for lease in leases.leases {
            let nextHop: NextHop
            if backend == .vxlan {
                guard let mac = lease.vxlan?.vtepMAC else { continue }
                nextHop = NextHop(publicIP: lease.publicIP, port: port, vtepMAC: mac, backend: .vxlan)
            } else {
                nextHop = NextHop(publicIP: lease.publicIP, port: port, backend: .udp)
            }
            routes.append(Route(subnet: lease.subnet, nextHop: nextHop))
            if let subnet6 = lease.ipv6Subnet { ipv6Routes.append(IPv6Route(subnet: subnet6, nextHop: nextHop)) }
        }
        let subnets = leases.leases.map(\.subnet)
        let covering = network ?? ReplayRoutes.covering(subnets)
        if let network, let outside = subnets.first(where: { !network.contains($0) }) {
            throw CommandFailure(
                "cannot read routes \(path): lease \(outside.leaseKey) lies outside --network \(network)"
            )
        }
        let subnetLength = localSubnet?.length ?? subnets.first?.length ?? 24
        snapshot = RouteSnapshot(
            routes: routes,
            network: covering,
            subnetLength: subnetLength,
            localSubnet: localSubnet
        )
        self.network = covering
        self.routes = routes
        let subnets6 = leases.leases.compactMap(\.ipv6Subnet)
        carriesIPv6 = !subnets6.isEmpty
        ipv6Snapshot = IPv6RouteSnapshot(
            routes: ipv6Routes,
            network: ReplayRoutes.covering(subnets6),
            subnetLength: localIPv6Subnet?.length ?? subnets6.first?.length ?? 64,
            localSubnet: localIPv6Subnet
        )
    }

    /// The longest prefix holding every subnet (0.0.0.0/0 for none).
    static func covering(_ subnets: [IPv4Prefix]) -> IPv4Prefix {
        guard var prefix = subnets.first else { return IPv4Prefix(.any, length: 0) }
        for subnet in subnets.dropFirst() {
            while !prefix.contains(subnet) { prefix = IPv4Prefix(prefix.network, length: prefix.length - 1) }
        }
        return prefix
    }

    /// The same for IPv6 subnets (::/0 for none).
    static func covering(_ subnets: [IPv6Prefix]) -> IPv6Prefix {
        guard var prefix = subnets.first else { return IPv6Prefix(.any, length: 0) }
        for subnet in subnets.dropFirst() {
            while !prefix.contains(subnet) { prefix = IPv6Prefix(prefix.network, length: prefix.length - 1) }
        }
        return prefix
    }
}
