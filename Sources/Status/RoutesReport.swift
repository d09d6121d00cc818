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

        public init(subnet: String, publicIP: String, port: UInt16?, backend: String, vtepMAC: String?) {
            self.subnet = subnet
            self.publicIP = publicIP
            self.port = port
            self.backend = backend
            self.vtepMAC = vtepMAC
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
    /// Sorted by subnet.
    public var routes: [Entry]

    public init(generation: UInt64, publishedAt: String, ageSeconds: Double, network: String, localSubnet: String,
                backend: String, routes: [Entry]) {
        self.generation = generation
        self.publishedAt = publishedAt
        self.ageSeconds = ageSeconds
        self.network = network
        self.localSubnet = localSubnet
        self.backend = backend
        self.routes = routes
    }
}
