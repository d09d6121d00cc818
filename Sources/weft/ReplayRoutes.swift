import Addressing
import Routes

/// Turns a ROUTES.json into what the pipeline reads: a route table and our own lease.
struct ReplayRoutes: ~Copyable {
    let snapshot: RouteSnapshot
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
        localSubnet: IPv4Prefix?
    ) throws(CommandFailure) {
        var routes: [Route] = []
        for lease in leases.leases {
            if backend == .vxlan {
                guard let mac = lease.vxlan?.vtepMAC else { continue }
                routes.append(
                    Route(
                        subnet: lease.subnet,
                        nextHop: NextHop(publicIP: lease.publicIP, port: port, vtepMAC: mac, backend: .vxlan)
                    )
                )
            } else {
                routes.append(
                    Route(subnet: lease.subnet, nextHop: NextHop(publicIP: lease.publicIP, port: port, backend: .udp))
                )
            }
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
    }

    /// The longest prefix holding every subnet (0.0.0.0/0 for none).
    static func covering(_ subnets: [IPv4Prefix]) -> IPv4Prefix {
        guard var prefix = subnets.first else { return IPv4Prefix(.any, length: 0) }
        for subnet in subnets.dropFirst() {
            while !prefix.contains(subnet) { prefix = IPv4Prefix(prefix.network, length: prefix.length - 1) }
        }
        return prefix
    }
}
