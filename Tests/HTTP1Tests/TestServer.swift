import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A loopback HTTP/1.1 server on NIO for the client's tests. It counts the connections it
/// accepted and can close every one of them; paths choose the answer:
/// `/hello` 200 "hello" (keep-alive), `/close` 200 with `Connection: close`, `/chunked` three
/// chunks 100 ms apart, `/silent` nothing ever, `/partial` a head and half a body, `/echo` the
/// request body back, `/stream` a chunked answer at once that echoes each request body part as it comes.
final class TestServer: Sendable {
    let port: Int
    private let listener: any Channel
    private let state: ServerState

    var connections: Int { state.lock.withLock { $0.accepted } }
    var open: Int { state.lock.withLock { $0.channels.count } }

    init() async throws {
        let state = ServerState()
        self.state = state
        listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                state.opened(channel)
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Responder())
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        port = listener.localAddress!.port!
    }

    var url: String { "http://127.0.0.1:\(port)" }

    /// Closes every accepted connection (what a server does to idle keep-alive connections).
    func closeConnections() async {
        let channels = state.lock.withLock { Array($0.channels.values) }
        for channel in channels { try? await channel.close() }
    }

    func stop() async {
        await closeConnections()
        try? await listener.close()
    }
}

private final class ServerState: Sendable {
    struct Counts {
        var accepted = 0
        var channels: [ObjectIdentifier: any Channel] = [:]
    }

    let lock = Mutex(Counts())

    func opened(_ channel: any Channel) {
        lock.withLock {
            $0.accepted += 1
            $0.channels[ObjectIdentifier(channel)] = channel
        }
        channel.closeFuture.whenComplete { [self] _ in
            lock.withLock { _ = $0.channels.removeValue(forKey: ObjectIdentifier(channel)) }
        }
    }
}

private final class Responder: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private var path = ""
    private var received: [UInt8] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            path = head.uri
            received = []
            if path == "/stream" {
                respond(context, headers: ["Transfer-Encoding": "chunked"], body: nil, end: false)
            }
        case .body(let buffer):
            if path == "/stream" {
                context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            } else {
                received += buffer.readableBytesView
            }
        case .end:
            answer(context)
        }
    }

    private func answer(_ context: ChannelHandlerContext) {
        switch path {
        case "/hello":
            respond(context, headers: ["Content-Length": "5"], body: "hello")
        case "/close":
            respond(context, headers: ["Content-Length": "3", "Connection": "close"], body: "bye")
            context.close(promise: nil)
        case "/echo":
            respond(
                context,
                headers: ["Content-Length": String(received.count)],
                body: String(decoding: received, as: UTF8.self)
            )
        case "/chunked":
            respond(context, headers: ["Transfer-Encoding": "chunked"], body: nil, end: false)
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            for index in 0..<3 {
                context.eventLoop.scheduleTask(in: .milliseconds(100 * Int64(index + 1))) {
                    let (responder, context) = loopBound.value
                    responder.write(context, "part\(index);")
                    if index == 2 { context.writeAndFlush(responder.wrapOutboundOut(.end(nil)), promise: nil) }
                }
            }
        case "/partial":
            respond(context, headers: ["Content-Length": "10"], body: "half", end: false)
        case "/stream":
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        default:
            break  // "/silent": no answer, ever
        }
    }

    private func respond(_ context: ChannelHandlerContext, headers: HTTPHeaders, body: String?, end: Bool = true) {
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))),
            promise: nil
        )
        if let body { write(context, body) }
        if end { context.write(wrapOutboundOut(.end(nil)), promise: nil) }
        context.flush()
    }

    private func write(_ context: ChannelHandlerContext, _ text: String) {
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
    }
}
