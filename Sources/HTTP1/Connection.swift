import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOTLS
import Synchronization

/// One TCP (and TLS) connection speaking HTTP/1.1, used by one request or stream at a time: the
/// pool hands an idle one to a single task, and a stream keeps its own for its lifetime.
final class Connection: @unchecked Sendable {
    let origin: Origin
    let channel: any Channel
    private let sink: ResponseSink
    /// Read only by the task that holds the connection (hence @unchecked Sendable).
    private var parts: AsyncThrowingStream<HTTPClientResponsePart, any Error>.Iterator
    /// Counts the requests this connection carried; a deadline set for one request closes the
    /// connection only while that request still holds it.
    private let requests = Atomic(0)

    private init(
        origin: Origin,
        channel: any Channel,
        sink: ResponseSink,
        parts: AsyncThrowingStream<HTTPClientResponsePart, any Error>
    ) {
        self.origin = origin
        self.channel = channel
        self.sink = sink
        self.parts = parts.makeAsyncIterator()
    }

    var isOpen: Bool { channel.isActive && !sink.hasFailed }

    /// Connects to `origin` and, for https, completes the TLS handshake, all within `timeout`.
    static func connect(
        to origin: Origin,
        group: any EventLoopGroup,
        tls: NIOSSLContext?,
        keepalive: TCPKeepalive,
        timeout: Duration
    ) async throws(HTTP1Error) -> Connection {
        if Task.isCancelled { throw HTTP1Error(.cancelled, "cancelled before connecting to \(origin)") }
        let deadline = NIODeadline.now() + .nanoseconds(max(timeout.nanoseconds, 1))
        let (parts, continuation) = AsyncThrowingStream<HTTPClientResponsePart, any Error>.makeStream()
        let sink = ResponseSink(continuation)
        // NIOSSL refuses an IP address as SNI; without a name it checks the certificate against the address.
        let serverName = origin.isTLS && !Self.isIPAddress(origin.host) ? origin.host : nil
        var bootstrap = ClientBootstrap(group: group).connectTimeout(.nanoseconds(max(timeout.nanoseconds, 1)))
        for (option, value) in keepalive.socketOptions {
            bootstrap = bootstrap.channelOption(option, value: value)
        }
        bootstrap = bootstrap.channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                if let tls {
                    try channel.pipeline.syncOperations.addHandler(
                        try NIOSSLClientHandler(context: tls, serverHostname: serverName)
                    )
                }
                try channel.pipeline.syncOperations.addHTTPClientHandlers()
                try channel.pipeline.syncOperations.addHandler(ResponseHandler(sink: sink, waitsForTLS: tls != nil))
            }
        }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: origin.host, port: origin.port).get()
        } catch {
            throw HTTP1Error(.notConnected, "cannot connect to \(origin) (\(Self.describe(error)))", underlying: error)
        }
        let connection = Connection(origin: origin, channel: channel, sink: sink, parts: parts)
        // A task cancelled while it waits for the answer stops waiting; the connection cannot carry anything after that.
        continuation.onTermination = { termination in
            guard case .cancelled = termination else { return }
            sink.record(HTTP1Error(.cancelled, "cancelled while waiting for \(origin)"))
            channel.close(promise: nil)
        }
        // Plain HTTP is ready once connected (the pipeline was built before the connect future
        // completed); arming a timer anyway would race it: after a connect that used up the
        // deadline on a busy machine, the timer fires at once and closes a connection that works.
        let handshake =
            tls == nil
            ? nil
            : channel.eventLoop.scheduleTask(deadline: deadline) {
                connection.close(HTTP1Error(.notConnected, "no TLS handshake with \(origin) within \(timeout)"))
            }
        defer { handshake?.cancel() }
        do {
            // Set when the pipeline was built, which the connect future waited for.
            try await sink.ready!.get()
        } catch {
            connection.close(HTTP1Error.from(error, connected: false))
            throw HTTP1Error.from(error, connected: false)
        }
        if Task.isCancelled {
            connection.close(HTTP1Error(.cancelled, "cancelled while connecting"))
            throw HTTP1Error(.cancelled, "cancelled while connecting to \(origin)")
        }
        return connection
    }

    /// Ends the connection; `reason` is what a waiting reader is told (the first reason wins).
    func close(_ reason: HTTP1Error) {
        sink.record(reason)
        channel.close(promise: nil)
    }

    /// What a deadline waits for: the response head (a stream), or the end of the answer.
    enum Milestone {
        case head, end
    }

    /// Starts a request's turn on the connection: past `deadline` the connection closes with
    /// `reason`, unless `finishRequest` came first or `milestone` arrived from the server. The
    /// second check runs where the bytes arrive (the event loop), so an answer that came in time
    /// counts even when the task reading it was slow to be scheduled (a busy concurrency pool).
    func startRequest(deadline: NIODeadline, until milestone: Milestone = .end, reason: HTTP1Error) -> Scheduled<Void> {
        let request = requests.add(1, ordering: .relaxed).newValue
        let seen = sink.arrived(milestone)
        return channel.eventLoop.scheduleTask(deadline: deadline) { [self] in
            if requests.load(ordering: .relaxed) == request, sink.arrived(milestone) == seen { close(reason) }
        }
    }

    func finishRequest(_ timer: Scheduled<Void>) {
        requests.add(1, ordering: .relaxed)
        timer.cancel()
    }

    /// Queues `part` without waiting for it to reach the socket.
    func send(_ part: HTTPClientRequestPart, flush: Bool = false) {
        if flush { channel.writeAndFlush(part, promise: nil) } else { channel.write(part, promise: nil) }
    }

    /// Writes `part`, flushing it; waits until it went to the socket.
    func write(_ part: HTTPClientRequestPart) async throws(HTTP1Error) {
        do {
            try await channel.writeAndFlush(part).get()
        } catch {
            throw sink.reason ?? HTTP1Error.from(error, connected: true)
        }
    }

    /// The next piece of the response; throws why the connection ended if it did.
    func nextPart() async throws(HTTP1Error) -> HTTPClientResponsePart {
        let part: HTTPClientResponsePart?
        do {
            part = try await parts.next()
        } catch {
            throw HTTP1Error.from(error, connected: true)
        }
        guard let part else {
            // The stream ends without an error only when the waiting task was cancelled.
            throw sink.reason ?? HTTP1Error(.cancelled, "cancelled while waiting for \(origin)")
        }
        return part
    }

    /// Reads up to and including the response head, skipping informational (1xx) heads.
    func readHead() async throws(HTTP1Error) -> HTTPResponseHead {
        while true {
            switch try await nextPart() {
            case .head(let head)
            where head.status.code >= 100 && head.status.code < 200 && head.status != .switchingProtocols:
                continue
            case .head(let head):
                return head
            case .body, .end:
                throw HTTP1Error(.malformedResponse, "\(origin) sent a body before a response head")
            }
        }
    }

    static func isIPAddress(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }

    static func describe(_ error: any Error) -> String {
        oneLine(String(describing: error))
    }
}

/// What the channel hands the task that reads: response parts, the reason the connection ended,
/// and when it became ready to carry a request (connected, and the TLS handshake done).
final class ResponseSink: Sendable {
    let continuation: AsyncThrowingStream<HTTPClientResponsePart, any Error>.Continuation
    private let state = Mutex<(reason: HTTP1Error?, ready: EventLoopFuture<Void>?)>((nil, nil))
    /// Response heads and ends received so far, counted on the event loop as they arrive.
    private let heads = Atomic(0)
    private let ends = Atomic(0)

    func arrived(_ milestone: Connection.Milestone) -> Int {
        milestone == .head ? heads.load(ordering: .relaxed) : ends.load(ordering: .relaxed)
    }

    func received(_ part: HTTPClientResponsePart) {
        switch part {
        case .head: heads.add(1, ordering: .relaxed)
        case .end: ends.add(1, ordering: .relaxed)
        case .body: break
        }
        continuation.yield(part)
    }

    init(_ continuation: AsyncThrowingStream<HTTPClientResponsePart, any Error>.Continuation) {
        self.continuation = continuation
    }

    var reason: HTTP1Error? { state.withLock { $0.reason } }
    var hasFailed: Bool { reason != nil }
    var ready: EventLoopFuture<Void>? { state.withLock { $0.ready } }

    func setReady(_ future: EventLoopFuture<Void>) {
        state.withLock { $0.ready = future }
    }

    /// Keeps the first reason; returns the one kept.
    @discardableResult
    func record(_ reason: HTTP1Error) -> HTTP1Error {
        state.withLock { state in
            if state.reason == nil { state.reason = reason }
            return state.reason!
        }
    }

    func finish() {
        continuation.finish(throwing: record(HTTP1Error(.connectionClosed, "the server closed the connection")))
    }
}

/// The last handler of a connection's pipeline: passes response parts on and turns the channel's
/// end (an error, then inactive) into the reason the reader sees.
final class ResponseHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let sink: ResponseSink
    private var ready: EventLoopPromise<Void>?
    private let waitsForTLS: Bool
    /// Connected, and the TLS handshake done: a failure from now on may follow a request.
    private var isReady = false
    private var isSettled = false

    init(sink: ResponseSink, waitsForTLS: Bool) {
        self.sink = sink
        self.waitsForTLS = waitsForTLS
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let ready = context.eventLoop.makePromise(of: Void.self)
        self.ready = ready
        sink.setReady(ready.futureResult)
    }

    /// A connect that failed never makes the channel active (nor inactive); closing it removes the handler.
    func handlerRemoved(context: ChannelHandlerContext) {
        fail(sink.record(HTTP1Error(isReady ? .connectionClosed : .notConnected, "the connection closed")))
        sink.finish()
    }

    func channelActive(context: ChannelHandlerContext) {
        if !waitsForTLS { becomeReady() }
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted? = event as? TLSUserEvent { becomeReady() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        sink.received(unwrapInboundIn(data))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let reason = sink.record(HTTP1Error.from(error, connected: isReady))
        fail(reason)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(sink.record(HTTP1Error(isReady ? .connectionClosed : .notConnected, "the server closed the connection")))
        sink.finish()
        context.fireChannelInactive()
    }

    private func becomeReady() {
        guard !isSettled else { return }
        isSettled = true
        isReady = true
        ready?.succeed()
    }

    private func fail(_ reason: HTTP1Error) {
        guard !isSettled else { return }
        isSettled = true
        ready?.fail(reason)
    }
}
