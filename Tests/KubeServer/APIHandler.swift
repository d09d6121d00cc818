import NIOCore
import NIOHTTP1

/// One connection's HTTP/1.1 requests: whole requests to the API, whole responses back, or a watch
/// stream held open (chunked, one JSON event per line) until it times out, is closed by a test
/// control, or the connection drops.
final class APIHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let api: KubeAPI
    private let control: Bool
    private let bookmarkInterval: TimeAmount
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var stream: WatchStream?

    init(api: KubeAPI, control: Bool, bookmarkInterval: TimeAmount) {
        self.api = api
        self.control = control
        self.bookmarkInterval = bookmarkInterval
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let received):
            head = received
            body = []
        case .body(var chunk):
            body += chunk.readBytes(length: chunk.readableBytes) ?? []
        case .end:
            guard let head else { return }
            self.head = nil
            let request = APIRequest(
                method: head.method.rawValue,
                uri: head.uri,
                authorization: head.headers.first(name: "authorization"),
                contentType: head.headers.first(name: "content-type"),
                host: head.headers.first(name: "host"),
                body: body,
                control: control
            )
            switch api.handle(request) {
            case .full(let code, let headers, let bytes):
                respond(context, head, code: code, headers: headers, body: bytes)
            case .watch(let plan):
                startWatch(context, head, plan)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        stream?.stop()
        stream = nil
        context.fireChannelInactive()
    }

    private func respond(
        _ context: ChannelHandlerContext,
        _ request: HTTPRequestHead,
        code: Int,
        headers: [(String, String)],
        body: [UInt8]
    ) {
        var fields = HTTPHeaders(headers)
        fields.add(name: "Content-Length", value: String(body.count))
        fields.add(name: "Cache-Control", value: "no-cache, private")
        let head = HTTPResponseHead(
            version: request.version,
            status: HTTPResponseStatus(statusCode: code),
            headers: fields
        )
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        let keepAlive = request.isKeepAlive
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !keepAlive { channel.close(promise: nil) }
        }
    }

    private func startWatch(_ context: ChannelHandlerContext, _ request: HTTPRequestHead, _ plan: WatchPlan) {
        let stream = WatchStream(channel: context.channel, store: api.store, resource: plan.resource)
        let start: WatchStart
        do {
            start = try api.store.watch(
                plan.resource,
                namespace: plan.namespace,
                selector: plan.selector,
                from: plan.from,
                sink: stream
            )
        } catch {
            respond(
                context,
                request,
                code: error.code,
                headers: [("Content-Type", "application/json")],
                body: error.body
            )
            return
        }
        let head = HTTPResponseHead(
            version: request.version,
            status: .ok,
            headers: [
                "Content-Type": "application/json", "Transfer-Encoding": "chunked",
                "Cache-Control": "no-cache, private",
            ]
        )
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        switch start {
        case .expired(let line):
            // kube-apiserver answers 200 and puts the 410 in the stream, then ends it.
            context.write(wrapOutboundOut(.body(.byteBuffer(line))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        case .started(let initial):
            if initial.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(initial))), promise: nil) }
            context.flush()
            self.stream = stream
            stream.schedule(
                timeout: plan.timeoutSeconds.map { .seconds(Int64($0)) },
                bookmarks: plan.bookmarks ? bookmarkInterval : nil
            )
        }
    }
}

/// What kube-apiserver does with a request head before the API sees it: it answers
/// `Expect: 100-continue` (curl asks before sending a body over 1 KiB and otherwise waits a second),
/// and gzip is the only encoding it offers, so other `Accept-Encoding` values are dropped before the
/// response compressor reads them. Sits before the compressor, which must see only final responses.
final class RequestHeadFilter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(var head) = unwrapInboundIn(data) else { return context.fireChannelRead(data) }
        if head.headers.first(name: "expect")?.lowercased() == "100-continue" {
            context.writeAndFlush(
                wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))),
                promise: nil
            )
        }
        let gzip = head.headers[canonicalForm: "accept-encoding"].contains { $0.lowercased().hasPrefix("gzip") }
        head.headers.remove(name: "accept-encoding")
        if gzip { head.headers.add(name: "Accept-Encoding", value: "gzip") }
        context.fireChannelRead(wrapInboundOut(.head(head)))
    }
}

/// An open watch response. Its state lives on the channel's event loop; the store's deliveries hop there.
final class WatchStream: WatchSink, @unchecked Sendable {
    private let channel: any Channel
    private let store: ObjectStore
    private let resource: Resource
    private var finished = false
    private var timeout: Scheduled<Void>?
    private var bookmarks: RepeatedTask?

    init(channel: any Channel, store: ObjectStore, resource: Resource) {
        self.channel = channel
        self.store = store
        self.resource = resource
    }

    func schedule(timeout seconds: TimeAmount?, bookmarks interval: TimeAmount?) {
        if let seconds { timeout = channel.eventLoop.scheduleTask(in: seconds) { self.end() } }
        if let interval {
            bookmarks = channel.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
                self.store.bookmark(self, resource: self.resource)
            }
        }
    }

    func send(_ line: ByteBuffer) {
        channel.eventLoop.execute {
            guard !self.finished else { return }
            self.channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(line)), promise: nil)
        }
    }

    func finish() {
        channel.eventLoop.execute { self.end() }
    }

    /// On the event loop: the zero-length chunk; the connection stays open for the next request.
    private func end() {
        guard !finished else { return }
        stop()
        channel.writeAndFlush(HTTPServerResponsePart.end(nil), promise: nil)
    }

    /// On the event loop: the connection is gone, or the stream ended.
    func stop() {
        finished = true
        timeout?.cancel()
        bookmarks?.cancel()
        store.unregister(self)
    }
}
