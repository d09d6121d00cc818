import Addressing
import Glibc
import Netlink
import Packets
import Routes
import Timing

/// Everything an `Engine` needs to know before it starts: the device, this host's lease, the
/// socket, and how many workers and which I/O loop to run.
public struct EngineConfiguration: Sendable {
    /// Which I/O loop to run: one named, or `auto` (io_uring when it can be set up, else mmsg).
    public enum Selection: String, Sendable, CaseIterable {
        case uring, mmsg, auto
    }

    /// The TUN device, created with one queue per worker (flannel: `flannel0`).
    public var tunName: String
    /// flannel's Network: routed into the TUN as a whole.
    public var network: IPv4Prefix
    /// flannel's SubnetLen (lets the route table index directly).
    public var subnetLength: Int
    /// This host's lease; its network address goes on the TUN as a /32 (`link`) and sources ICMP replies.
    public var localSubnet: IPv4Prefix
    /// flannel's IPv6Network, when the overlay carries IPv6 too (over the same IPv4 underlay);
    /// routed into the TUN as a whole, as `network` is.
    public var ipv6Network: IPv6Prefix?
    /// flannel's IPv6SubnetLen (64 by default).
    public var ipv6SubnetLength: Int
    /// This host's IPv6 lease: its network address goes on the TUN and sources ICMPv6 errors.
    /// Set together with `ipv6Network`.
    public var ipv6Subnet: IPv6Prefix?
    /// The address the UDP sockets bind (the lease's PublicIP).
    public var publicIP: IPv4Address
    /// vxlan: the lease's PublicIPv6. With it (and an IPv6 subnet) each worker also binds
    /// [publicIPv6]:port and inner IPv6 crosses the IPv6 underlay to peers that have one too, as
    /// flannel's `flannel-v6.<VNI>` carries it.
    public var publicIPv6: IPv6Address?
    /// BackendV6Data's VtepMAC: flannel-v6's own MAC (nil: `vtepMAC`).
    public var ipv6VtepMAC: MACAddress?
    public var port: UInt16
    /// udp (the inner packet is the whole datagram) or vxlan (over an L3 TUN, headers in front).
    public var backend: Backend
    public var vni: UInt32
    public var vtepMAC: MACAddress
    public var engine: Selection
    public var workers: Int
    /// Packets per batch and per syscall; 1 moves one packet per syscall, as flannel's proxy does.
    public var batchSize: Int
    /// The external interface's MTU; the TUN gets this minus the backend's overhead.
    public var underlayMTU: Int
    /// vxlan: sockets per worker that datagrams leave from, each on an ephemeral port, picked by
    /// inner flow (see `SourcePorts`); 0 sends everything from `port`. The udp backend always
    /// sends from `port`, as flannel's proxy does.
    public var sourcePortCount: Int
    /// TUN offloads (64 KB TCP super-packets, segmented into one UDP_SEGMENT send) and UDP_GRO
    /// receives coalesced back into super-packets: udp and vxlan backends, uring engine only.
    public var offloads: Bool
    /// How long a worker keeps polling for work after its last batch before it sleeps in the kernel
    /// (`WorkerSetup.busyPoll`); zero sleeps at once.
    public var busyPoll: Duration

    public init(
        tunName: String = "flannel0",
        network: IPv4Prefix,
        subnetLength: Int? = nil,
        localSubnet: IPv4Prefix,
        publicIP: IPv4Address,
        port: UInt16 = 8285,
        backend: Backend = .udp,
        vni: UInt32 = 1,
        vtepMAC: MACAddress = MACAddress(0),
        engine: Selection = .auto,
        workers: Int = 1,
        batchSize: Int = 64,
        underlayMTU: Int = 1500,
        sourcePortCount: Int = EngineConfiguration.defaultSourcePortCount,
        offloads: Bool = false,
        busyPoll: Duration = .zero,
        ipv6Network: IPv6Prefix? = nil,
        ipv6Subnet: IPv6Prefix? = nil,
        ipv6SubnetLength: Int? = nil,
        publicIPv6: IPv6Address? = nil,
        ipv6VtepMAC: MACAddress? = nil
    ) {
        self.publicIPv6 = publicIPv6
        self.ipv6VtepMAC = ipv6VtepMAC
        self.tunName = tunName
        self.ipv6Network = ipv6Network
        self.ipv6Subnet = ipv6Subnet
        self.ipv6SubnetLength = ipv6SubnetLength ?? ipv6Subnet?.length ?? 64
        self.network = network
        self.subnetLength = subnetLength ?? localSubnet.length
        self.localSubnet = localSubnet
        self.publicIP = publicIP
        self.port = port
        self.backend = backend
        self.vni = vni
        self.vtepMAC = vtepMAC
        self.engine = engine
        self.workers = workers
        self.batchSize = batchSize
        self.underlayMTU = underlayMTU
        self.sourcePortCount = sourcePortCount
        self.offloads = offloads
        self.busyPoll = busyPoll
    }

    /// Enough distinct ports to spread a host's flows over RSS queues and ECMP paths; each costs an
    /// fd and an ephemeral port.
    public static let defaultSourcePortCount = 16
    public static let maximumSourcePortCount = 256

    /// Source-port sockets each worker opens: none for udp.
    public var sourceSocketsPerWorker: Int { backend == .vxlan ? sourcePortCount : 0 }

    /// Longest busy poll: a worker never sleeps longer than this either (`WorkerSetup.idleWait`).
    public static let maximumBusyPoll = WorkerSetup.idleWait

    /// Largest batch a worker preallocates for; beyond a few hundred a batch only adds latency.
    public static let maximumBatchSize = 1024

    /// Outer IPv4 + UDP (28) plus what the backend puts in front of the inner packet: udp 28
    /// (flannel's MTU − 28), vxlan 50.
    public var overhead: Int { 28 + (backend == .vxlan ? VXLAN.overhead : 0) }

    /// The TUN's MTU.
    public var tunMTU: Int { underlayMTU - overhead }

    /// The overlay carries inner IPv6 too.
    public var carriesIPv6: Bool { ipv6Subnet != nil }

    /// Each worker has an IPv6 socket on [publicIPv6]:port (vxlan, dual-stack, with PublicIPv6).
    public var hasIPv6Underlay: Bool { backend == .vxlan && publicIPv6 != nil && ipv6Subnet != nil }

    /// The IPv6 underlay's VtepMAC: BackendV6Data's, or the IPv4 one when none was given.
    public var effectiveIPv6VtepMAC: MACAddress { ipv6VtepMAC ?? vtepMAC }

    /// Outer IPv6 + UDP (48) plus VXLAN and inner Ethernet (22): flannel-v6's 70.
    public static let ipv6UnderlayOverhead = 48 + VXLAN.overhead

    /// The largest inner IPv6 packet the IPv6 underlay carries; the TUN routes the IPv6 network
    /// with it, so TCP picks its MSS without a Packet Too Big first.
    public var ipv6UnderlayMTU: Int { underlayMTU - Self.ipv6UnderlayOverhead }

    /// What the TUN gets once `Engine.start` has made it: the engine moves packets on whatever the
    /// TUN is given, and whoever starts it sets the link up (`TUNLink.configure`).
    public var link: TUNLink {
        TUNLink(
            name: tunName,
            mtu: tunMTU,
            network: network,
            subnet: localSubnet,
            ipv6: ipv6Network.flatMap { network in ipv6Subnet.map { (network, $0) } },
            ipv6RouteMTU: hasIPv6Underlay ? ipv6UnderlayMTU : nil
        )
    }

    /// The first thing wrong with this configuration, as an error naming the field and the fix.
    func validate() throws(EngineError) {
        func refuse(_ problem: String) throws(EngineError) {
            throw EngineError("engine configuration", problem, code: EINVAL)
        }
        if workers < 1 { try refuse("workers \(workers): run at least 1") }
        if batchSize < 1 || batchSize > Self.maximumBatchSize {
            try refuse("batch size \(batchSize): use 1 to \(Self.maximumBatchSize)")
        }
        if tunMTU < 68 { try refuse("underlay MTU \(underlayMTU): leaves a TUN MTU below 68 (IPv4's minimum)") }
        if backend == .hostGateway { try refuse("backend host-gw: forwards in the kernel, it needs no engine") }
        if backend == .vxlan {
            if vni > 0xFF_FFFF { try refuse("VNI \(vni): a VXLAN VNI has 24 bits, use 0 to 16777215") }
            if vtepMAC.value == 0 || vtepMAC.byte(0) & 1 != 0 {
                try refuse(
                    "VTEP MAC \(vtepMAC): give the VTEP a unicast MAC (flannel picks a random locally administered one)"
                )
            }
            if sourcePortCount < 0 || sourcePortCount > Self.maximumSourcePortCount {
                try refuse(
                    "source ports \(sourcePortCount): use 0 (send from port \(port)) to \(Self.maximumSourcePortCount)"
                )
            }
        }
        if busyPoll < .zero || busyPoll > Self.maximumBusyPoll {
            try refuse("busy poll \(busyPoll.microseconds) µs: use 0 (off) to \(Self.maximumBusyPoll.microseconds) µs")
        }
        if offloads && engine == .mmsg {
            try refuse("offloads with engine mmsg: only the uring engine has them; use --engine uring")
        }
        if !network.contains(localSubnet) { try refuse("subnet \(localSubnet) lies outside the network \(network)") }
        if (ipv6Network == nil) != (ipv6Subnet == nil) {
            let given = ipv6Network.map { "IPv6 network \($0)" } ?? ipv6Subnet.map { "IPv6 subnet \($0)" } ?? ""
            try refuse("\(given) alone: give the IPv6 network and this host's IPv6 subnet together")
        }
        if let publicIPv6 {
            if backend != .vxlan {
                try refuse(
                    "public IPv6 \(publicIPv6) with backend udp: flannel's udp is IPv4-only; drop the IPv6 underlay"
                )
            }
            if ipv6Subnet == nil {
                try refuse("public IPv6 \(publicIPv6) without an IPv6 subnet: give the IPv6 network and subnet too")
            }
            if ipv6UnderlayMTU < IPv6Header.minimumMTU {
                try refuse(
                    "underlay MTU \(underlayMTU): leaves \(ipv6UnderlayMTU) for inner IPv6 over the IPv6 underlay, below IPv6's minimum of \(IPv6Header.minimumMTU)"
                )
            }
            let mac = effectiveIPv6VtepMAC
            if mac.value == 0 || mac.byte(0) & 1 != 0 {
                try refuse("IPv6 VTEP MAC \(mac): give the IPv6 VTEP a unicast MAC")
            }
        }
        if let ipv6Network, let ipv6Subnet {
            if !ipv6Network.contains(ipv6Subnet) {
                try refuse("IPv6 subnet \(ipv6Subnet) lies outside the IPv6 network \(ipv6Network)")
            }
            if tunMTU < IPv6Header.minimumMTU {
                try refuse(
                    "underlay MTU \(underlayMTU): leaves a TUN MTU of \(tunMTU), below IPv6's minimum of \(IPv6Header.minimumMTU)"
                )
            }
        }
    }
}
