import Addressing
import CShims
import Forwarding
import Glibc
import Routes
import Synchronization
import Timing

/// The dataplane of one host: a multi-queue TUN, one UDP socket and one thread per worker, and
/// the I/O loop that moves packets between them. The control plane publishes route tables into
/// `publisher` (and, when the overlay carries IPv6, IPv6 ones into `ipv6Publisher`) and reads
/// `counters`; nothing else crosses.
///
/// `start()` runs in the calling thread's network namespace, and the workers inherit it. It makes
/// the TUN but leaves it down and unaddressed: the caller sets it up (`configuration.link`).
/// `stop()` (or releasing the engine) stops and joins the workers and closes every fd, which
/// removes the TUN and, with it, its addresses and routes.
public final class Engine: @unchecked Sendable {
    // @unchecked: the mutable state is only touched inside `lifecycle`'s lock.

    /// Receives the engine's few log lines (start, engine choice, worker failures).
    public typealias Log = @Sendable (String) -> Void

    public let configuration: EngineConfiguration
    public let counters: EngineCounters
    public let publisher: RouteTablePublisher
    /// IPv6 routes beside `publisher`'s, published and read the same way. Its tables are empty and
    /// unread unless the configuration has an IPv6 subnet.
    public let ipv6Publisher: IPv6RouteTablePublisher
    private let log: Log
    private let stopSignal = StopSignal()
    private let lifecycle = Mutex(())
    private let failures = WorkerFailures()
    private var running: Running?
    private var started = false

    /// What a started engine owns, released in `stop()`.
    private final class Running {
        let kind: EngineKind
        var tun: TUNDevice?
        var sockets: [OwnedSocket]
        /// Per worker, the IPv6 underlay's socket (vxlan with PublicIPv6; else none).
        var ipv6Sockets: [OwnedSocket] = []
        /// Per worker, the IP_PMTUDISC_OMIT socket of `PathMTUs`.
        var pathSockets: [OwnedSocket] = []
        /// vxlan: each worker's source-port sockets, the IPv4 ones and then (with the IPv6
        /// underlay) the IPv6 ones from `ipv6SourceStart` on, and their fds in one block the
        /// workers read.
        var sourceSockets: [OwnedSocket] = []
        let sourceFDs: UnsafeMutableBufferPointer<Int32>
        let ipv6SourceStart: Int
        var threads: [pthread_t] = []

        init(
            kind: EngineKind,
            tun: consuming TUNDevice,
            sockets: [OwnedSocket],
            sourceSockets: [OwnedSocket],
            ipv6SourceSockets: [OwnedSocket]
        ) {
            self.kind = kind
            self.tun = .some(tun)
            self.sockets = sockets
            self.sourceSockets = sourceSockets + ipv6SourceSockets
            ipv6SourceStart = sourceSockets.count
            sourceFDs = .allocate(capacity: self.sourceSockets.count)
            _ = sourceFDs.initialize(from: self.sourceSockets.map { $0.socket.fd })
        }

        /// Worker `index`'s slice of the source-port sockets of the IPv4 or the IPv6 underlay
        /// (none without the IPv6 underlay).
        func sourcePorts(worker index: Int, perWorker: Int, ipv6: Bool = false) -> SourcePorts {
            let start = (ipv6 ? ipv6SourceStart : 0) + index * perWorker
            guard start + perWorker <= sourceFDs.count else { return .none }
            return SourcePorts(sockets: UnsafeBufferPointer(rebasing: sourceFDs[start..<start + perWorker]))
        }

        /// Only once no worker runs.
        func release() {
            sockets = []
            ipv6Sockets = []
            sourceSockets = []
            pathSockets = []
            tun = nil
            sourceFDs.deallocate()
        }
    }

    /// `routes` and `ipv6Routes` are the initial tables (the control plane publishes later ones
    /// into `publisher` and `ipv6Publisher`).
    public init(
        configuration: EngineConfiguration,
        routes: [Route] = [],
        ipv6Routes: [IPv6Route] = [],
        log: @escaping Log = { _ in }
    ) {
        self.configuration = configuration
        self.log = log
        counters = EngineCounters(workerCount: max(configuration.workers, 1))
        publisher = RouteTablePublisher(
            RouteSnapshot(
                routes: routes,
                network: configuration.network,
                subnetLength: configuration.subnetLength,
                localSubnet: configuration.localSubnet
            )
        )
        ipv6Publisher = IPv6RouteTablePublisher(
            IPv6RouteSnapshot(
                routes: ipv6Routes,
                network: configuration.ipv6Network ?? IPv6Prefix(IPv6Address(0), length: 0),
                subnetLength: configuration.ipv6SubnetLength,
                localSubnet: configuration.ipv6Subnet
            )
        )
    }

    deinit { stop() }

    /// Why io_uring cannot run here, or nil when it can.
    public static var uringUnavailable: EngineError? { UringWorker.probe() }

    /// The I/O loop the workers run; nil before start() and after stop().
    public var kind: EngineKind? { lifecycle.withLock { _ in running?.kind } }

    /// Errors that ended a worker early (each was also logged).
    public var workerFailures: [EngineError] { failures.errors.withLock { $0 } }

    /// The TUN, with offloads: checksums, TCP segmentation (TSO4, TSO6) and UDP segmentation (USO,
    /// Linux ≥ 6.2), so applications' UDP GSO sends arrive as one super-packet too. Both families
    /// are offered whether or not the overlay carries IPv6 (the kernel takes USO for both or
    /// neither; without IPv6 on the TUN no IPv6 packet reaches it). A kernel that refuses USO
    /// gets one line and TCP offloads.
    private static func openTUN(
        _ configuration: EngineConfiguration,
        offloads: Bool,
        log: (String) -> Void
    ) throws(EngineError) -> TUNDevice {
        guard offloads else { return try TUNDevice(name: configuration.tunName, queueCount: configuration.workers) }
        do {
            return try TUNDevice(
                name: configuration.tunName,
                queueCount: configuration.workers,
                offloads: [.checksum, .tso4, .tso6, .uso4, .uso6]
            )
        } catch  where error.code == EINVAL {
            log(
                "TUN \(configuration.tunName): the kernel refuses UDP segmentation offload (USO, Linux 6.2+); TCP offloads only"
            )
            return try TUNDevice(
                name: configuration.tunName,
                queueCount: configuration.workers,
                offloads: [.checksum, .tso4, .tso6]
            )
        }
    }

    /// Creates the TUN and sockets, picks the I/O loop and starts the workers. Returns the loop
    /// chosen. Throws on the first failure, having released whatever it created. The TUN is left
    /// down: `configuration.link.configure` brings it up with its addresses and routes, and the
    /// workers move packets from then on.
    @discardableResult
    public func start() throws(EngineError) -> EngineKind {
        try start(adopting: nil)
    }

    /// Starts on `tun` instead of a kernel TUN: nothing is configured on it, and offloads are on
    /// when it carries virtio-net headers (and the loop is io_uring). The sockets are the
    /// engine's own, on the configured address. The rootless tests run the engine this way, on
    /// socketpairs and loopback sockets.
    @discardableResult
    package func start(adopting tun: consuming TUNDevice) throws(EngineError) -> EngineKind {
        try start(adopting: Optional(tun))
    }

    private func start(adopting adopted: consuming TUNDevice?) throws(EngineError) -> EngineKind {
        var adopted = adopted
        return try lifecycle.withLock { _ throws(EngineError) -> EngineKind in
            // The stop signal, once raised, stays raised: a restart is a new Engine.
            precondition(!started, "an Engine starts once; make a new one to start again")
            started = true
            let configuration = self.configuration
            try configuration.validate()
            let kind = try chooseKind(configuration.engine)

            let offloads: Bool
            let tun: TUNDevice
            switch adopted.take() {
            case .some(let given):
                offloads = given.virtioHeaderSize > 0 && kind == .uring
                precondition(
                    given.virtioHeaderSize == 0 || offloads,
                    "an adopted TUN with virtio-net headers needs the io_uring engine"
                )
                precondition(given.queues.count == configuration.workers, "one adopted TUN queue per worker")
                tun = given
            case .none:
                offloads = configuration.offloads && kind == .uring
                if configuration.offloads && !offloads { log("offloads off: the \(kind.rawValue) engine has none") }
                tun = try Self.openTUN(configuration, offloads: offloads, log: log)
            }
            var sockets: [OwnedSocket] = []
            var segmentation: [Bool] = []
            var pathSockets: [OwnedSocket] = []
            for index in 0..<configuration.workers {
                let socket = try UDPSocket(address: configuration.publicIP, port: configuration.port)
                try socket.setPathMTUDiscovery(weft_pmtu_do)
                let pathSocket = try UDPSocket.sendOnly(
                    address: configuration.publicIP,
                    pathMTUDiscovery: weft_pmtu_omit
                )
                pathSockets.append(OwnedSocket(pathSocket))
                if offloads {
                    try socket.enableReceiveCoalescing()
                    let probe = weft_probe_segmentation(socket.fd)
                    if probe < 0 {
                        log(
                            "worker \(index): UDP_SEGMENT refused (\(EngineError("setsockopt(UDP_SEGMENT)", "probe", code: -probe))): "
                                + "sending one datagram per segment"
                        )
                    }
                    segmentation.append(probe == 0)
                } else {
                    segmentation.append(false)
                }
                sockets.append(OwnedSocket(socket))
            }
            var ipv6Sockets: [OwnedSocket] = []
            if configuration.hasIPv6Underlay, let publicIPv6 = configuration.publicIPv6 {
                for _ in 0..<configuration.workers {
                    let socket = try UDPSocket(ipv6: publicIPv6, port: configuration.port)
                    if offloads { try socket.enableReceiveCoalescing() }
                    ipv6Sockets.append(OwnedSocket(socket))
                }
            }
            let perWorker = configuration.sourceSocketsPerWorker
            var sourceSockets: [OwnedSocket] = []
            for _ in 0..<(configuration.workers * perWorker) {
                // Its port comes from ip_local_port_range, the range the kernel's vxlan device spreads flows over.
                let socket = try UDPSocket.sendOnly(address: configuration.publicIP, pathMTUDiscovery: weft_pmtu_do)
                sourceSockets.append(OwnedSocket(socket))
            }
            var ipv6SourceSockets: [OwnedSocket] = []
            if let publicIPv6 = configuration.publicIPv6, !ipv6Sockets.isEmpty {
                for _ in 0..<(configuration.workers * perWorker) {
                    ipv6SourceSockets.append(OwnedSocket(try UDPSocket.sendOnly(ipv6: publicIPv6)))
                }
            }
            let queues = tun.queues
            // A TUN that takes USO takes the UDP super-packets the coalescer makes (GSO_UDP_L4).
            let coalescesUDP = tun.offloads.contains(.uso4)
            let running = Running(
                kind: kind,
                tun: tun,
                sockets: sockets,
                sourceSockets: sourceSockets,
                ipv6SourceSockets: ipv6SourceSockets
            )
            running.pathSockets = pathSockets
            running.ipv6Sockets = ipv6Sockets
            self.running = running
            let pathReports = PathMTUReports(log: log)

            let forwarder = Forwarder(
                backend: configuration.backend,
                vni: configuration.vni,
                vtepMAC: configuration.vtepMAC,
                localSubnet: configuration.localSubnet,
                ipv6Subnet: configuration.ipv6Subnet,
                overlayMTU: configuration.tunMTU,
                ipv6VtepMAC: configuration.hasIPv6Underlay ? configuration.effectiveIPv6VtepMAC : nil
            )
            for index in 0..<configuration.workers {
                let setup = WorkerSetup(
                    index: index,
                    tunQueue: queues[index],
                    socket: sockets[index].socket.fd,
                    ipv6Socket: ipv6Sockets.isEmpty ? -1 : ipv6Sockets[index].socket.fd,
                    forwarder: forwarder,
                    publisher: publisher,
                    ipv6Publisher: ipv6Publisher,
                    counters: counters.workers[index],
                    batchSize: configuration.batchSize,
                    mtu: configuration.tunMTU,
                    stop: stopSignal,
                    sourcePorts: running.sourcePorts(worker: index, perWorker: perWorker),
                    ipv6SourcePorts: running.sourcePorts(worker: index, perWorker: perWorker, ipv6: true),
                    offloads: offloads,
                    segmentation: segmentation[index],
                    coalescesUDP: coalescesUDP,
                    busyPoll: configuration.busyPoll,
                    pathSocket: pathSockets[index].socket.fd,
                    pathReports: pathReports
                )
                let launch = WorkerLaunch(setup: setup, kind: kind, log: log, failures: failures)
                do throws(EngineError) {
                    running.threads.append(try WorkerLaunch.spawn(launch))
                } catch {
                    releaseLocked()
                    throw error
                }
            }
            let backend =
                configuration.backend == .vxlan
                ? "vxlan vni \(configuration.vni) vtep \(configuration.vtepMAC), \(perWorker) source port(s) per worker, "
                : "udp, "
            log(
                "engine \(kind.rawValue)\(offloads ? " with offloads" : ""): \(configuration.workers) worker(s), batch \(configuration.batchSize), "
                    + backend
                    + "\(configuration.tunName) mtu \(configuration.tunMTU), \(configuration.publicIP):\(configuration.port)"
                    + (configuration.hasIPv6Underlay
                        ? ", IPv6 underlay [\(configuration.publicIPv6!)]:\(configuration.port) vtep \(configuration.effectiveIPv6VtepMAC) inner mtu \(configuration.ipv6UnderlayMTU)"
                        : "")
                    + (configuration.busyPoll > .zero ? ", busy poll \(configuration.busyPoll.microseconds) µs" : "")
            )
            return kind
        }
    }

    /// Stops and joins the workers (each notices within `WorkerSetup.idleWait`), then closes the
    /// sockets and the TUN. Safe to call more than once.
    public func stop() {
        lifecycle.withLock { _ in releaseLocked() }
    }

    private func releaseLocked() {
        guard let running else { return }
        stopSignal.stop()
        for thread in running.threads { pthread_join(thread, nil) }
        running.release()
        self.running = nil
    }

    private func chooseKind(_ selection: EngineConfiguration.Selection) throws(EngineError) -> EngineKind {
        switch selection {
        case .mmsg:
            return .mmsg
        case .uring:
            if let why = UringWorker.probe() { throw why }
            return .uring
        case .auto:
            guard let why = UringWorker.probe() else { return .uring }
            log("io_uring unavailable (\(why)): running the recvmmsg/sendmmsg engine")
            return .mmsg
        }
    }
}

/// A socket in a class box, so an array can hold the noncopyable owners.
final class OwnedSocket {
    let socket: UDPSocket
    init(_ socket: consuming UDPSocket) { self.socket = socket }
}

/// Errors that ended workers, shared by the engine and its worker threads.
final class WorkerFailures: Sendable {
    let errors = Mutex<[EngineError]>([])
}

/// Carries a worker's setup onto its new thread.
final class WorkerLaunch: @unchecked Sendable {
    // @unchecked: `setup` is written before the thread starts and taken once on it.
    private var setup: WorkerSetup?
    private let index: Int
    private let kind: EngineKind
    private let log: Engine.Log
    private let failures: WorkerFailures

    init(setup: consuming WorkerSetup, kind: EngineKind, log: @escaping Engine.Log, failures: WorkerFailures) {
        index = setup.index
        self.setup = .some(setup)
        self.kind = kind
        self.log = log
        self.failures = failures
    }

    static func spawn(_ launch: WorkerLaunch) throws(EngineError) -> pthread_t {
        var thread = pthread_t()
        let argument = Unmanaged.passRetained(launch).toOpaque()
        let result = pthread_create(
            &thread,
            nil,
            { argument in
                let launch = Unmanaged<WorkerLaunch>.fromOpaque(argument!).takeRetainedValue()
                launch.run()
                return nil
            },
            argument
        )
        if result != 0 {
            Unmanaged<WorkerLaunch>.fromOpaque(argument).release()
            throw EngineError("pthread_create", "worker \(launch.index)", code: result)
        }
        return thread
    }

    private func run() {
        guard let setup = setup.take() else { return }
        do throws(EngineError) {
            switch kind {
            case .mmsg: try MmsgWorker.run(setup)
            case .uring: try UringWorker.run(setup, log: log)
            }
        } catch {
            failures.errors.withLock { $0.append(error) }
            log("worker \(index) (\(kind.rawValue)) stopped: \(error)")
        }
    }
}
