import Addressing
import Glibc
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// flanneld's --healthz-ip/--healthz-port endpoint: GET /healthz is 200 while the process runs,
/// GET /readyz is 200 once `readiness` says so and 503 with the reason before. With `status`, also
/// GET /metrics (Prometheus text) and GET /v1/routes, /v1/stats (JSON), which weftd serves on its
/// --status-socket too (same class, a Unix listener).
///
/// A kubelet probe must never wait on another client, so connections are served concurrently on
/// one event-loop thread shared by every server in the process, within `Limits`: 64 open
/// connections, a request head within 5 s of accept or of the previous answer (a kept-alive
/// connection, as HTTP/1.1 clients and Prometheus keep them, idles no longer), the answer written
/// within 10 s of the head. At the cap a new connection displaces the oldest one waiting for a
/// request head; if all 64 are being answered it is closed at once. Nothing queues behind a slow,
/// silent or idle client.
public final class HealthServer: Service {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// What one server allows its clients; tests shrink the numbers, weftd uses the defaults.
    public struct Limits: Sendable {
        /// Open connections at once: a bound on the descriptors that clients can make weftd hold.
        public var connections: Int
        /// From accept (or the previous answer) to a complete request head, however slowly its
        /// bytes arrive: a probe sends its head at once, a slow-loris or idle client is closed
        /// after this long.
        public var requestHead: Duration
        /// From the request head to the answer written: the status read plus a slow reader.
        public var answer: Duration

        public init(connections: Int = 64, requestHead: Duration = .seconds(5), answer: Duration = .seconds(10)) {
            self.connections = connections
            self.requestHead = requestHead
            self.answer = answer
        }
    }

    /// The port actually bound (the asked one, or the kernel's pick when asked for 0); 0 for a Unix socket.
    public let port: UInt16
    public let address: IPv4Address
    /// The Unix socket's path, nil for TCP.
    public let socketPath: String?
    /// The socket file's inode, so stop removes our file and not a successor's.
    private let socketInode: UInt64
    private let listener: any Channel
    private let connections: ConnectionRegistry
    private enum Phase { case bound, serving, closed }
    private let phase = Mutex(Phase.bound)

    /// The one event-loop thread of all health servers: probes and scrapes are a few a second at
    /// most, and a thread per server or per connection would buy nothing.
    static let eventLoops = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    /// Where /metrics, /v1/routes and /v1/stats are rendered: a large cluster's report takes
    /// milliseconds, which must not hold the loop that answers /healthz.
    static let statusReads: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        return pool
    }()

    /// Binds and listens; `start` serves. Port 0 takes an ephemeral port (tests); weftd itself
    /// never builds a server for --healthz-port=0.
    public convenience init(
        address: IPv4Address,
        port: UInt16,
        readiness: Readiness,
        status: (any StatusEndpoints)? = nil,
        limits: Limits = Limits()
    ) throws(Failure) {
        func fail(_ problem: String) -> Failure {
            Failure(
                description:
                    "health server on \(address):\(port): \(problem); choose another --healthz-ip/--healthz-port"
            )
        }
        let (fd, bound) = try Self.tcpListener(address: address, port: port, fail: fail)
        try self.init(
            listener: fd,
            port: bound,
            address: address,
            socketPath: nil,
            inode: 0,
            readiness: readiness,
            status: status,
            limits: limits,
            fail: fail
        )
    }

    /// Listens on a Unix socket at `path`, mode 0600 (root only: the counters are the host's). A
    /// socket file nobody answers on (a crashed run's) is replaced; one a live weftd answers on,
    /// or a file that is not a socket, is refused. The directory is made if missing (0755).
    public convenience init(
        socketPath path: String,
        readiness: Readiness,
        status: (any StatusEndpoints)?,
        limits: Limits = Limits()
    ) throws(Failure) {
        func fail(_ problem: String) -> Failure {
            Failure(
                description:
                    "status socket \(path): \(problem); choose another --status-socket, or --status-socket= to turn it off"
            )
        }
        let (fd, inode) = try Self.unixListener(path: path, fail: fail)
        try self.init(
            listener: fd,
            port: 0,
            address: IPv4Address(0),
            socketPath: path,
            inode: inode,
            readiness: readiness,
            status: status,
            limits: limits,
            fail: fail
        )
    }

    /// Hands the listening socket to NIO, which owns (and closes) it from here on.
    private init(
        listener fd: Int32,
        port: UInt16,
        address: IPv4Address,
        socketPath: String?,
        inode: UInt64,
        readiness: Readiness,
        status: (any StatusEndpoints)?,
        limits: Limits,
        fail: (String) -> Failure
    ) throws(Failure) {
        let connections = ConnectionRegistry(limit: limits.connections)
        let bootstrap = ServerBootstrap(group: Self.eventLoops)
            // Accepting starts with `start`: until then clients wait in the backlog, so a weftd
            // whose second listener fails never served on its first.
            .serverChannelOption(ChannelOptions.autoRead, value: false)
            // A client may send its request and shut its side; it still gets the answer.
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
                    try pipeline.addHandler(
                        HealthConnection(
                            readiness: readiness,
                            status: status,
                            connections: connections,
                            limits: limits
                        )
                    )
                }
            }
        do {
            listener = try bootstrap.withBoundSocket(fd).wait()
        } catch {
            // A channel that failed to register is closed by NIO, descriptor included.
            if let socketPath { unlink(socketPath) }
            throw fail("serving failed: \(error)")
        }
        self.connections = connections
        self.port = port
        self.address = address
        self.socketPath = socketPath
        self.socketInode = inode
    }

    deinit {
        if phase.withLock({ $0 }) != .closed {
            listener.close(promise: nil)
            for connection in connections.closeAll() { connection.close(promise: nil) }
        }
    }

    public func start() {
        try? accepting()?.wait()
    }

    /// Closes the listener and every open connection, waiting for both (milliseconds), then
    /// removes our socket file.
    public func stop() {
        try? closing()?.wait()
        removeSocketFile()
    }

    /// As one of weftd's services: serves until the group's graceful shutdown reaches it, which is
    /// last, so /readyz answers "stopping" while the rest of weftd stops.
    public func run() async {
        try? await accepting()?.get()
        try? await gracefulShutdown()
        try? await closing()?.get()
        removeSocketFile()
    }

    /// Turns accepting on, once; nil when it already was.
    private func accepting() -> EventLoopFuture<Void>? {
        guard
            phase.withLock({ phase in
                defer { if phase == .bound { phase = .serving } }
                return phase == .bound
            })
        else { return nil }
        return listener.setOption(ChannelOptions.autoRead, value: true)
    }

    /// Closes the listener, then every connection it accepted; nil when already closed.
    private func closing() -> EventLoopFuture<Void>? {
        let previous = phase.withLock { phase in
            defer { phase = .closed }
            return phase
        }
        guard previous != .closed else { return nil }
        // Connections are closed whether or not the listener closed cleanly.
        return listener.close().recover { _ in }.flatMap { [listener, connections] in
            EventLoopFuture.andAllComplete(connections.closeAll().map { $0.close() }, on: listener.eventLoop)
        }
    }

    private func removeSocketFile() {
        guard let socketPath else { return }
        var current = stat()
        if lstat(socketPath, &current) == 0, UInt64(current.st_ino) == socketInode { unlink(socketPath) }
    }
}
