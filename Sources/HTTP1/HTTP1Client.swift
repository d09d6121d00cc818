import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A small HTTP/1.1 client for the control plane's API servers (etcd's JSON gateway, the
/// Kubernetes API): unary calls with a deadline over idle connections reused per origin, and
/// streams that own a connection for their lifetime. Every connection has TCP keepalive and a
/// user timeout (`TCPKeepalive`), so a server that vanished is noticed even while nothing is sent.
/// Call `shutdown()` before dropping the client.
public final class HTTP1Client: Sendable {
    public struct Configuration: Sendable {
        /// Bound on connecting (TCP, then the TLS handshake); also bounded by a call's own deadline.
        public var connectTimeout: Duration = .seconds(2)
        /// Idle connections kept per origin for the next call.
        public var maximumIdleConnections = 8
        /// The largest body a unary call reads.
        public var maximumBodySize = 64 << 20
        /// For https origins: trust roots, client certificate and key. Nil: https is refused.
        public var tls: TLSConfiguration?
        public var keepalive = TCPKeepalive()

        public init() {}
    }

    public let configuration: Configuration
    let pool: ConnectionPool
    private let group: any EventLoopGroup
    private let tls: NIOSSLContext?

    /// `group`: where connections run (NIO's shared one unless a test puts its own thread elsewhere).
    public init(
        configuration: Configuration = Configuration(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) throws(HTTP1Error) {
        self.configuration = configuration
        self.group = group
        pool = ConnectionPool(maximumIdle: configuration.maximumIdleConnections)
        do {
            tls = try configuration.tls.map { try NIOSSLContext(configuration: $0) }
        } catch {
            throw HTTP1Error(
                .tls,
                "the TLS configuration is unusable (\(Connection.describe(error)))",
                underlying: error
            )
        }
    }

    /// Closes every connection; open streams end with `.shutDown`, later calls fail with it.
    public func shutdown() async {
        await pool.shutdown()
    }

    /// Connections open now, idle or busy.
    public var openConnections: Int { pool.openCount }

    /// Sends `request` and reads the whole answer, connecting included, within `timeout`.
    /// The connection goes back to the pool only after a complete answer that allows keep-alive.
    public func execute(_ request: HTTP1Request, timeout: Duration) async throws(HTTP1Error) -> HTTP1Response {
        let deadline = NIODeadline.now() + .nanoseconds(timeout.nanoseconds)
        let connection = try await connection(to: request.origin, deadline: deadline)
        let timer = connection.startRequest(
            deadline: deadline,
            reason: HTTP1Error(.timedOut, "no complete answer from \(request.origin) within \(timeout)")
        )
        let writer = send(request, on: connection)
        do throws(HTTP1Error) {
            let head = try await connection.readHead()
            var body: [UInt8] = []
            reading: while true {
                switch try await connection.nextPart() {
                case .body(let buffer):
                    guard body.count + buffer.readableBytes <= configuration.maximumBodySize else {
                        throw HTTP1Error(
                            .malformedResponse,
                            "a body from \(request.origin) larger than \(configuration.maximumBodySize) bytes"
                        )
                    }
                    body += buffer.readableBytesView
                case .end:
                    break reading
                case .head:
                    throw HTTP1Error(.malformedResponse, "\(request.origin) sent a second response head")
                }
            }
            connection.finishRequest(timer)
            // A request body still being streamed leaves the connection in the middle of a request.
            if let writer {
                writer.cancel()
                connection.close(HTTP1Error(.connectionClosed, "the request body was still being sent"))
            } else if head.isKeepAlive {
                pool.release(connection)
            } else {
                connection.close(HTTP1Error(.connectionClosed, "\(request.origin) closes after each answer"))
            }
            return HTTP1Response(status: head.status, headers: head.headers, body: body)
        } catch {
            writer?.cancel()
            connection.finishRequest(timer)
            connection.close(error)
            throw error
        }
    }

    /// Sends `request` on a connection of its own and returns once the response head arrived,
    /// connecting included, within `timeout`; the body is then read from the stream for as long
    /// as it lasts. A streamed request body goes on being sent until its stream finishes.
    public func openStream(_ request: HTTP1Request, timeout: Duration) async throws(HTTP1Error) -> HTTP1Stream {
        let deadline = NIODeadline.now() + .nanoseconds(timeout.nanoseconds)
        // Never an idle one: a stream's connection closes with the stream, and a fresh one has not been half-closed by the server.
        let connection = try await newConnection(to: request.origin, deadline: deadline)
        let timer = connection.startRequest(
            deadline: deadline,
            until: .head,
            reason: HTTP1Error(.timedOut, "no response head from \(request.origin) within \(timeout)")
        )
        let writer = send(request, on: connection)
        let head: HTTPResponseHead
        do throws(HTTP1Error) {
            head = try await connection.readHead()
        } catch {
            writer?.cancel()
            connection.finishRequest(timer)
            connection.close(error)
            throw error
        }
        connection.finishRequest(timer)
        return HTTP1Stream(head: head, connection: connection, writer: writer)
    }

    /// An idle connection to `origin`, or a new one.
    private func connection(to origin: Origin, deadline: NIODeadline) async throws(HTTP1Error) -> Connection {
        if let idle = pool.takeIdle(origin) { return idle }
        return try await newConnection(to: origin, deadline: deadline)
    }

    private func newConnection(to origin: Origin, deadline: NIODeadline) async throws(HTTP1Error) -> Connection {
        guard !origin.isTLS || tls != nil else {
            throw HTTP1Error(.tls, "\(origin) is https but the client has no TLS configuration")
        }
        let left = Duration.nanoseconds((deadline - .now()).nanoseconds)
        let connection = try await Connection.connect(
            to: origin,
            group: group,
            tls: origin.isTLS ? tls : nil,
            keepalive: configuration.keepalive,
            timeout: min(configuration.connectTimeout, left)
        )
        try pool.adopt(connection)
        return connection
    }

    /// Writes the head and a whole body; a streamed body is written by the returned task.
    /// Nothing waits for the writes: a server may answer and close before the last of the request
    /// went out (a GET's empty end, an early error), and then the answer is what counts; a write
    /// that fails for any other reason closes the connection, which the read reports.
    private func send(_ request: HTTP1Request, on connection: Connection) -> Task<Void, Never>? {
        switch request.body {
        case .bytes(let bytes):
            connection.send(.head(request.head))
            if !bytes.isEmpty { connection.send(.body(.byteBuffer(ByteBuffer(bytes: bytes)))) }
            connection.send(.end(nil), flush: true)
            return nil
        case .stream(let parts, let length, let first):
            connection.send(.head(request.head), flush: first.isEmpty)
            if !first.isEmpty { connection.send(.body(.byteBuffer(ByteBuffer(bytes: first))), flush: true) }
            return Task {
                for await part in parts {
                    do throws(HTTP1Error) {
                        try await connection.write(.body(.byteBuffer(part)))
                    } catch {
                        return
                    }
                }
                // A chunked body ends with its last chunk; a declared length that was not reached cannot end.
                if length == nil, !Task.isCancelled { try? await connection.write(.end(nil)) }
            }
        }
    }
}
