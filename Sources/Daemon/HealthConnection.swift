import NIOCore
import NIOHTTP1
import Synchronization

/// One accepted connection of a health server: its request head within `limits.requestHead` of
/// accept, one answer written within `limits.answer` of the head, then closed.
final class HealthConnection: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = ByteBuffer

    private let readiness: Readiness
    private let status: (any StatusEndpoints)?
    private let connections: ConnectionRegistry
    private let limits: HealthServer.Limits
    private var id: ConnectionRegistry.ID?
    private var deadline: Scheduled<Void>?
    private var answered = false

    init(readiness: Readiness, status: (any StatusEndpoints)?, connections: ConnectionRegistry, limits: HealthServer.Limits) {
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

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data), !answered else { return }
        beginAnswer(context)
        let channel = context.channel
        let (method, target, version) = (head.method.rawValue, head.uri, "HTTP/\(head.version.major).\(head.version.minor)")
        let (readiness, status) = (self.readiness.current, self.status)
        guard status != nil && HealthServer.readsStatus(target) else {
            return Self.send(HealthServer.response(method: method, target: target, version: version, readiness: readiness), on: channel)
        }
        HealthServer.statusReads.runIfActive(eventLoop: context.eventLoop) {
            HealthServer.response(method: method, target: target, version: version, readiness: readiness, status: status)
        }.whenComplete { result in
            guard case .success(let bytes) = result else { return channel.close(promise: nil) }
            Self.send(bytes, on: channel)
        }
    }

    /// The request decoder's parse errors get the 400 a malformed request line gets.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is HTTPParserError, !answered else { return context.close(promise: nil) }
        beginAnswer(context)
        Self.send(HealthServer.badRequest, on: context.channel)
    }

    /// A client that shut its side before sending a whole request head will send none.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if (event as? ChannelEvent) == .inputClosed, !answered { context.close(promise: nil) }
        context.fireUserInboundEventTriggered(event)
    }

    private func beginAnswer(_ context: ChannelHandlerContext) {
        answered = true
        if let id { connections.answering(id) }
        arm(context, limits.answer)
    }

    private func arm(_ context: ChannelHandlerContext, _ amount: Duration) {
        deadline?.cancel()
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: TimeAmount(amount)) { channel.close(promise: nil) }
    }

    private static func send(_ bytes: [UInt8], on channel: any Channel) {
        channel.writeAndFlush(channel.allocator.buffer(bytes: bytes)).whenComplete { _ in channel.close(promise: nil) }
    }
}

/// The open connections of one server, in the order they were accepted: for the cap, and for
/// stop to close them all.
final class ConnectionRegistry: Sendable {
    typealias ID = UInt64

    enum Admission {
        /// `displaced` is the connection closed to make room, if the cap was reached.
        case admitted(ID, displaced: (any Channel)?)
        case refused
    }

    private struct Entry {
        let channel: any Channel
        var answering = false
    }

    private struct State {
        var stopped = false
        var next: ID = 0
        var open: [ID: Entry] = [:]
    }

    let limit: Int
    private let state = Mutex(State())

    init(limit: Int) {
        self.limit = limit
    }

    /// At the cap, room is made by closing the oldest connection still waiting for its request
    /// head: a probe sends its head at once, so only slow or silent clients are displaced, never
    /// one being answered. With every connection being answered, the new one is refused.
    func admit(_ channel: any Channel) -> Admission {
        state.withLock { state in
            guard !state.stopped else { return .refused }
            var displaced: (any Channel)?
            if state.open.count >= limit {
                guard let oldest = state.open.filter({ !$0.value.answering }).keys.min() else { return .refused }
                displaced = state.open.removeValue(forKey: oldest)?.channel
            }
            let id = state.next
            state.next += 1
            state.open[id] = Entry(channel: channel)
            return .admitted(id, displaced: displaced)
        }
    }

    func answering(_ id: ID) {
        state.withLock { $0.open[id]?.answering = true }
    }

    func remove(_ id: ID) {
        state.withLock { _ = $0.open.removeValue(forKey: id) }
    }

    /// Refuses every later connection and returns the open ones, for the caller to close.
    func closeAll() -> [any Channel] {
        state.withLock { state in
            state.stopped = true
            defer { state.open = [:] }
            return state.open.values.map(\.channel)
        }
    }
}
