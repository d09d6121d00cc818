import Addressing
import Forwarding
import Routes
import Synchronization

/// Which I/O loop a worker runs. Both run the same per-packet pipeline (`Forwarder`).
public enum EngineKind: String, Sendable, CaseIterable {
    /// io_uring: provided-buffer ring, multishot recvmsg on the socket, multishot read on the TUN.
    case uring
    /// recvmmsg/sendmmsg + poll: runs where io_uring is disabled (sysctl, seccomp).
    case mmsg
}

/// A stop request shared by the engine and its workers. Workers check it between batches and
/// never block longer than `WorkerSetup.idleWait`, so a stop takes effect within that bound.
public final class StopSignal: Sendable {
    private let stopped = Atomic(false)
    public init() {}
    public func stop() { stopped.store(true, ordering: .releasing) }
    public var isStopped: Bool { stopped.load(ordering: .acquiring) }
}

/// Everything one worker thread needs, handed over whole when its thread starts. The worker owns
/// the fds it is given for the duration of `run` but does not close them (the engine does).
public struct WorkerSetup: ~Copyable {
    /// Longest a worker waits in the kernel before checking `stop` and passing a quiescent point.
    public static let idleWait: Duration = .milliseconds(100)

    public let index: Int
    /// This worker's TUN queue (blocking fd).
    public let tunQueue: Int32
    /// This worker's UDP socket (SO_REUSEPORT, bound to the backend port).
    public let socket: Int32
    /// The IPv6 underlay's socket ([PublicIPv6]:port, IPV6_V6ONLY), or -1 when there is none.
    public let ipv6Socket: Int32
    /// vxlan: the sockets sends leave from, by inner flow (empty: from `socket`).
    public let sourcePorts: SourcePorts
    /// The same on the IPv6 underlay (empty: from `ipv6Socket`).
    public let ipv6SourcePorts: SourcePorts
    public let forwarder: Forwarder
    /// Created on the worker's own thread (`publisher.makeReader()` must run there).
    public let publisher: RouteTablePublisher
    /// IPv6 routes, read only when the forwarder has an IPv6 subnet.
    public let ipv6Publisher: IPv6RouteTablePublisher
    public let counters: WorkerCounters
    /// Packets per batch; 1 makes the mmsg loop move one packet per syscall (flannel's udp backend).
    public let batchSize: Int
    /// Largest packet the TUN hands out (its MTU) and so the largest inner packet we receive.
    public let mtu: Int
    public let stop: StopSignal
    /// The TUN queue carries virtio-net headers (TSO4 + CSUM) and the socket has UDP_GRO (uring only).
    public let offloads: Bool
    /// The socket takes UDP_SEGMENT sends (probed at start).
    public let segmentation: Bool
    /// The TUN takes UDP super-packets (USO), so received datagrams of one flow are coalesced too.
    public let coalescesUDP: Bool
    /// How long to keep looking for work after a batch before sleeping (`BusyPoll`); zero: sleep at once.
    public let busyPoll: Duration
    /// IP_PMTUDISC_OMIT socket of this worker: path MTU look-ups and sends that do not fit (`PathMTUs`).
    public let pathSocket: Int32
    let pathReports: PathMTUReports

    public init(
        index: Int,
        tunQueue: Int32,
        socket: Int32,
        ipv6Socket: Int32 = -1,
        forwarder: Forwarder,
        publisher: RouteTablePublisher,
        ipv6Publisher: IPv6RouteTablePublisher? = nil,
        counters: WorkerCounters,
        batchSize: Int,
        mtu: Int,
        stop: StopSignal,
        sourcePorts: SourcePorts = .none,
        ipv6SourcePorts: SourcePorts = .none,
        offloads: Bool = false,
        segmentation: Bool = false,
        coalescesUDP: Bool = false,
        busyPoll: Duration = .zero,
        pathSocket: Int32 = -1,
        log: @escaping Engine.Log = { _ in }
    ) {
        self.init(
            index: index,
            tunQueue: tunQueue,
            socket: socket,
            ipv6Socket: ipv6Socket,
            forwarder: forwarder,
            publisher: publisher,
            ipv6Publisher: ipv6Publisher ?? Self.noIPv6Routes(),
            counters: counters,
            batchSize: batchSize,
            mtu: mtu,
            stop: stop,
            sourcePorts: sourcePorts,
            ipv6SourcePorts: ipv6SourcePorts,
            offloads: offloads,
            segmentation: segmentation,
            coalescesUDP: coalescesUDP,
            busyPoll: busyPoll,
            pathSocket: pathSocket,
            pathReports: PathMTUReports(log: log)
        )
    }

    init(
        index: Int,
        tunQueue: Int32,
        socket: Int32,
        ipv6Socket: Int32,
        forwarder: Forwarder,
        publisher: RouteTablePublisher,
        ipv6Publisher: IPv6RouteTablePublisher,
        counters: WorkerCounters,
        batchSize: Int,
        mtu: Int,
        stop: StopSignal,
        sourcePorts: SourcePorts,
        ipv6SourcePorts: SourcePorts,
        offloads: Bool,
        segmentation: Bool,
        coalescesUDP: Bool,
        busyPoll: Duration,
        pathSocket: Int32,
        pathReports: PathMTUReports
    ) {
        precondition(batchSize >= 1, "a batch holds at least one packet")
        self.index = index
        self.tunQueue = tunQueue
        self.socket = socket
        self.ipv6Socket = ipv6Socket
        self.sourcePorts = sourcePorts
        self.ipv6SourcePorts = ipv6SourcePorts
        self.forwarder = forwarder
        self.publisher = publisher
        self.ipv6Publisher = ipv6Publisher
        self.counters = counters
        self.batchSize = batchSize
        self.mtu = mtu
        self.stop = stop
        self.offloads = offloads
        self.segmentation = segmentation
        self.coalescesUDP = coalescesUDP
        self.busyPoll = busyPoll
        self.pathSocket = pathSocket
        self.pathReports = pathReports
    }

    /// An empty IPv6 table, for a worker whose forwarder carries no IPv6.
    static func noIPv6Routes() -> IPv6RouteTablePublisher {
        IPv6RouteTablePublisher(
            IPv6RouteSnapshot(routes: [], network: IPv6Prefix(IPv6Address(0), length: 0), subnetLength: 64)
        )
    }

    var pathMTUs: PathMTUs {
        PathMTUs(socket: pathSocket, counters: counters, encapsulation: forwarder.headroom, reports: pathReports)
    }
}
