/// GET /v1/routes: the route table a running weftd forwards with, as `weft routes` shows it.
public struct RoutesReport: Codable, Equatable, Sendable {
    /// One peer subnet and how packets reach it.
    public struct Entry: Codable, Equatable, Sendable {
        /// "10.244.2.0/24".
        public var subnet: String
        /// The peer's underlay address, the outer destination.
        public var publicIP: String
        /// The peer's UDP port (8285 udp, 8472 vxlan); nil for host-gw, which sends no datagrams.
        public var port: UInt16?
        /// flannel's backend name: "udp", "vxlan" or "host-gw".
        public var backend: String
        /// The peer's VTEP MAC (vxlan only).
        public var vtepMAC: String?
        /// vxlan with DirectRouting: true when the subnet is routed by a kernel route via the
        /// PublicIP (the peer is directly connected), false when through VXLAN; nil without
        /// DirectRouting (and from a weftd older than the field).
        public var direct: Bool?

        public init(
            subnet: String,
            publicIP: String,
            port: UInt16?,
            backend: String,
            vtepMAC: String?,
            direct: Bool? = nil
        ) {
            self.subnet = subnet
            self.publicIP = publicIP
            self.port = port
            self.backend = backend
            self.vtepMAC = vtepMAC
            self.direct = direct
        }
    }

    /// What the kernel holds for a kernel dataplane (vxlan's flannel.<VNI>): the entries Weft owns,
    /// each in the shape `ip neigh`, `bridge fdb` and `ip route` print it (devices by name).
    public struct KernelEntries: Codable, Equatable, Sendable {
        /// "flannel.1".
        public var device: String
        public var neighbours: [String]
        public var fdb: [String]
        public var routes: [String]
        /// How the entries differ from the lease table ("missing neighbour 10.244.2.0 lladdr ...",
        /// "stale route ..."): what the next reconcile would change; empty when in step.
        public var differences: [String]
        /// Why the entries could not be read, when they could not.
        public var error: String?
        /// DirectRouting's routes through the underlay (`<subnet> via <PublicIP> dev eth0 proto 87`),
        /// for peers the device does not carry; nil with DirectRouting off.
        public var direct: [String]?

        public init(
            device: String,
            neighbours: [String],
            fdb: [String],
            routes: [String],
            differences: [String] = [],
            error: String? = nil,
            direct: [String]? = nil
        ) {
            self.device = device
            self.neighbours = neighbours
            self.fdb = fdb
            self.routes = routes
            self.differences = differences
            self.error = error
            self.direct = direct
        }
    }

    /// A dual-stack network's IPv6 side: the IPv6Network, our IPv6 subnet and the peers' IPv6 subnets,
    /// each with the address it is sent to (the PublicIPv6 for host-gw).
    public struct IPv6Routes: Codable, Equatable, Sendable {
        public var network: String
        public var localSubnet: String
        /// Sorted by subnet; `publicIP` "-" for a peer whose lease has no PublicIPv6 (not routed).
        public var routes: [Entry]

        public init(network: String, localSubnet: String, routes: [Entry]) {
            self.network = network
            self.localSubnet = localSubnet
            self.routes = routes
        }
    }

    /// Increases by one with every table the peer watcher publishes (0: none published yet).
    public var generation: UInt64
    /// When that table was published (the dataplane's start for generation 0), ISO 8601 in UTC:
    /// a string, so every JSON encoder writes it the same way.
    public var publishedAt: String
    /// Seconds from `publishedAt` to the moment the report was made.
    public var ageSeconds: Double
    /// The Network of the config the dataplane runs with, "10.244.0.0/16".
    public var network: String
    /// This host's lease, "10.244.1.0/24".
    public var localSubnet: String
    public var backend: String
    /// What moves the packets: "weft" (the user-space engine: udp, and vxlan with
    /// --vxlan-dataplane=weft) or "kernel" (host-gw's routes, vxlan's kernel device). nil from a
    /// weftd older than the field.
    public var dataplane: String?
    /// Sorted by subnet.
    public var routes: [Entry]
    /// The kernel dataplane's own entries (vxlan); nil for the others.
    public var kernel: KernelEntries?
    /// The IPv6 side of a dual-stack lease; nil for an IPv4-only one (and from an older weftd).
    public var ipv6: IPv6Routes?

    public init(
        generation: UInt64,
        publishedAt: String,
        ageSeconds: Double,
        network: String,
        localSubnet: String,
        backend: String,
        dataplane: String? = nil,
        routes: [Entry],
        kernel: KernelEntries? = nil,
        ipv6: IPv6Routes? = nil
    ) {
        self.generation = generation
        self.publishedAt = publishedAt
        self.ageSeconds = ageSeconds
        self.network = network
        self.localSubnet = localSubnet
        self.backend = backend
        self.dataplane = dataplane
        self.routes = routes
        self.kernel = kernel
        self.ipv6 = ipv6
    }
}
