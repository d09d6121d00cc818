import NIOCore
import NIOHTTP1

/// One accepted connection of a health server. Its requests are answered one at a time, in order
/// (a pipelining client's later heads wait in `queue`). After an answer the connection stays open
/// if the request asked for it (HTTP/1.1's default): its next request head is then due within
/// `limits.requestHead` of that answer as a new connection's is of accept, and meanwhile it may be
/// displaced at the cap like one. Each answer is written within `limits.answer` of its head.
final class HealthConnection: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = ByteBuffer

    private enum Request {
        case head(HTTPRequestHead)
        /// Bytes the decoder rejected: answered 400, then closed (the decoder reads no further).
        case malformed
    }

    /// Pipelined heads beyond this close the connection: a probe or scrape sends one at a time,
    /// and the queue is memory a client could otherwise make weftd hold.
    static let pipelineLimit = 16

    private let readiness: Readiness
    private let status: (any StatusEndpoints)?
    private let connections: ConnectionRegistry
    private let limits: HealthServer.Limits
    private var id: ConnectionRegistry.ID?
    private var deadline: Scheduled<Void>?
    private var queue: [Request] = []
    private var answering = false
    /// The client shut its side: what it sent is answered, then the connection is closed.
    private var inputClosed = false

    init(
        readiness: Readiness,
        status: (any StatusEndpoints)?,
        connections: ConnectionRegistry,
        limits: HealthServer.Limits
    ) {
        self.readiness = readiness
        self.status = status
        self.connections = connections
        self.limits = limits
    }

    func channelActive(context: ChannelHandlerContext) {
        switch connections.admit(context.channel) {
        case .refused:
            context.close(promise: nil)
            return
        case .admitted(let id, let displaced):
            self.id = id
            displaced?.close(promise: nil)
        }
        // Counted from accept, not from the last byte: a client dribbling its head is closed too.
        arm(context, limits.requestHead)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        if let id { connections.remove(id) }
        context.fireChannelInactive()
    }

    /// Bodies are not read: the decoder frames them, so the next head is found after one.
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        enqueue(.head(head), context)
    }

    /// The request decoder's parse errors get the 400 a malformed request line gets.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is HTTPParserError else { return context.close(promise: nil) }
        enqueue(.malformed, context)
    }

    /// A client that shut its side sends nothing more: once what it sent is answered, close.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if (event as? ChannelEvent) == .inputClosed {
            inputClosed = true
            if !answering { context.close(promise: nil) }
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func enqueue(_ request: Request, _ context: ChannelHandlerContext) {
        guard queue.count < Self.pipelineLimit else { return context.close(promise: nil) }
        queue.append(request)
        if !answering { answerNext(context) }
    }

    /// Answers the oldest queued request, or, with none left, waits for the next head.
    private func answerNext(_ context: ChannelHandlerContext) {
        guard !queue.isEmpty else {
            answering = false
            if inputClosed { return context.close(promise: nil) }
            if let id { connections.waiting(id) }
            arm(context, limits.requestHead)
            return
        }
        answering = true
        if let id { connections.answering(id) }
        arm(context, limits.answer)
        guard case .head(let head) = queue.removeFirst() else {
            return write(HealthServer.badRequest, keepAlive: false, context)
        }
        let keepAlive = HealthServer.keepsAlive(head)
        let (method, target, version) = (
            head.method.rawValue, head.uri, "HTTP/\(head.version.major).\(head.version.minor)"
        )
        let (readiness, status) = (self.readiness.current, self.status)
        guard status != nil && HealthServer.readsStatus(target) else {
            let bytes = HealthServer.response(
                method: method,
                target: target,
                version: version,
                readiness: readiness,
                keepAlive: keepAlive
            )
            return write(bytes, keepAlive: keepAlive, context)
        }
        HealthServer.statusReads.runIfActive(eventLoop: context.eventLoop) {
            HealthServer.response(
                method: method,
                target: target,
                version: version,
                readiness: readiness,
                status: status,
                keepAlive: keepAlive
            )
        }.assumeIsolated().whenComplete { result in
            // Closed meanwhile (a deadline, stop): the pipeline and this handler are gone.
            guard context.channel.isActive, case .success(let bytes) = result else {
                return context.channel.close(promise: nil)
            }
            self.write(bytes, keepAlive: keepAlive, context)
        }
    }

    private func write(_ bytes: [UInt8], keepAlive: Bool, _ context: ChannelHandlerContext) {
        let buffer = context.channel.allocator.buffer(bytes: bytes)
        context.writeAndFlush(wrapOutboundOut(buffer)).assumeIsolated().whenComplete { result in
            guard case .success = result, keepAlive, context.channel.isActive else {
                return context.channel.close(promise: nil)
            }
            self.answerNext(context)
        }
    }

    private func arm(_ context: ChannelHandlerContext, _ amount: Duration) {
        deadline?.cancel()
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: TimeAmount(amount)) { channel.close(promise: nil) }
    }
}
