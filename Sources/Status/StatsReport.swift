/// GET /v1/stats: what a running weftd's dataplane has moved and dropped since it started.
public struct StatsReport: Codable, Equatable, Sendable {
    /// One peer's traffic, both directions, keyed by its PublicIP (that is what a datagram names).
    public struct Peer: Codable, Equatable, Sendable {
        public var publicIP: String
        /// The peer's subnet in the current route table; nil once its lease is gone.
        public var subnet: String?
        public var sentPackets: UInt64
        public var sentBytes: UInt64
        public var receivedPackets: UInt64
        public var receivedBytes: UInt64
        /// The path MTU to the peer the engine learned from the kernel (a smaller MTU on the way);
        /// nil while none was learned (the interface's MTU applies).
        public var pathMTU: Int?

        public init(
            publicIP: String,
            subnet: String?,
            sentPackets: UInt64,
            sentBytes: UInt64,
            receivedPackets: UInt64,
            receivedBytes: UInt64,
            pathMTU: Int? = nil
        ) {
            self.publicIP = publicIP
            self.subnet = subnet
            self.sentPackets = sentPackets
            self.sentBytes = sentBytes
            self.receivedPackets = receivedPackets
            self.receivedBytes = receivedBytes
            self.pathMTU = pathMTU
        }
    }

    /// The packet engine in use: "uring" or "mmsg"; "kernel" for host-gw, where the kernel forwards
    /// and weftd counts nothing per packet.
    public var engine: String
    /// Engine worker threads (0 for host-gw).
    public var workers: Int
    public var backend: String
    public var localSubnet: String
    /// Engine totals by snake_case name ("tun_read_packets", "wire_sent_bytes", ...); empty for host-gw.
    public var traffic: [String: UInt64]
    /// Every drop reason by its snake_case name ("no_route", ...), zeros included; empty for host-gw.
    public var drops: [String: UInt64]
    /// Sorted by publicIP; empty for host-gw.
    public var peers: [Peer]
    /// What the port filter (the nft rule in front of the udp/vxlan port) dropped since this weftd
    /// started: datagrams from addresses that hold no lease, which the engine never sees. nil
    /// without the filter (host-gw, --port-filter=false, or not installed yet).
    public var portFilter: Dropped?
    /// The same over the IPv6 underlay (kernel vxlan's flannel-v6.<VNI> in a dual-stack network):
    /// datagrams from addresses no peer publishes as its PublicIPv6. nil without that filter.
    public var portFilterIPv6: Dropped?

    /// Packets and bytes dropped.
    public struct Dropped: Codable, Equatable, Sendable {
        public var packets: UInt64
        public var bytes: UInt64

        public init(packets: UInt64, bytes: UInt64) {
            self.packets = packets
            self.bytes = bytes
        }
    }

    public init(
        engine: String,
        workers: Int,
        backend: String,
        localSubnet: String,
        traffic: [String: UInt64],
        drops: [String: UInt64],
        peers: [Peer],
        portFilter: Dropped? = nil,
        portFilterIPv6: Dropped? = nil
    ) {
        self.engine = engine
        self.workers = workers
        self.backend = backend
        self.localSubnet = localSubnet
        self.traffic = traffic
        self.drops = drops
        self.peers = peers
        self.portFilter = portFilter
        self.portFilterIPv6 = portFilterIPv6
    }
}
