import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOHTTPCompression
import NIOPosix
import NIOSSL

/// A Kubernetes API server for tests: core/v1 nodes and pods over HTTP/1.1 and TLS, with bearer
/// tokens, the flannel ClusterRole, list/watch/patch as kube-apiserver answers them, and controls a
/// test uses to make the failures a client must survive (expired history, closed watches, 429s, an
/// outage). Start one per test with `start`, always `shutdown` it.
public final class KubeTestServer: TestControls, @unchecked Sendable {
    public struct Configuration: Sendable {
        public var host = "127.0.0.1"
        /// 0 picks a free port; `port` tells which. The same port is bound again after `comeUp`.
        public var port = 0
        /// PEM files; both nil serves plain HTTP.
        public var certificateFile: String?
        public var keyFile: String?
        /// kube-apiserver's `--token-auth-file` format (`TokenFile`); re-read when it changes.
        public var tokenFile: String
        /// Users other than `system:masters` members get only the rules of their role here.
        public var roles: [String: Role] = [User.flannel: .flannel]
        /// A request with no credentials is `system:anonymous` (kube-apiserver's `--anonymous-auth`
        /// default), and gets 403 where it is not allowed; false answers it 401.
        public var anonymousAuth = true
        /// How often a watch with `allowWatchBookmarks=true` gets a BOOKMARK.
        public var bookmarkInterval: Duration = .seconds(60)
        public var historyLimit = 100_000
        /// A Unix socket serving the `/weft-test/` controls over plain HTTP without a token.
        public var controlSocket: String?

        public init(tokenFile: String, certificateFile: String? = nil, keyFile: String? = nil) {
            self.tokenFile = tokenFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
        }
    }

    public let configuration: Configuration
    public let store: ObjectStore
    public private(set) var port: Int
    let api: KubeAPI
    private let group: MultiThreadedEventLoopGroup
    private let tls: NIOSSLContext?
    private let lock = NIOLock()
    private var listener: (any Channel)?
    private var controlListener: (any Channel)?
    private var connections: [ObjectIdentifier: any Channel] = [:]
    /// Set by `goDown` before the listener closes: a connection accepted in that moment is dropped too.
    private var down = false

    public var url: String {
        let host = configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host
        return "\(tls == nil ? "http" : "https")://\(host):\(port)"
    }

    private init(configuration: Configuration, tls: NIOSSLContext?) {
        self.configuration = configuration
        self.tls = tls
        port = configuration.port
        store = ObjectStore(historyLimit: configuration.historyLimit)
        api = KubeAPI(
            store: store,
            tokens: TokenFile(path: configuration.tokenFile),
            roles: configuration.roles,
            anonymous: configuration.anonymousAuth
        )
        group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    }

    public static func start(_ configuration: Configuration) async throws -> KubeTestServer {
        var tls: NIOSSLContext?
        if let certificate = configuration.certificateFile, let key = configuration.keyFile {
            var settings = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
            )
            settings.applicationProtocols = ["http/1.1"]
            tls = try NIOSSLContext(configuration: settings)
        }
        let server = KubeTestServer(configuration: configuration, tls: tls)
        server.api.controls = server
        do {
            try await server.bind()
            if let path = configuration.controlSocket {
                let channel = try await server.bootstrap(control: true)
                    .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
                server.lock.withLock { server.controlListener = channel }
            }
        } catch {
            try? await server.shutdown()
            throw error
        }
        return server
    }

    private func bootstrap(control: Bool) -> ServerBootstrap {
        let interval = TimeAmount.nanoseconds(
            configuration.bookmarkInterval.components.seconds * 1_000_000_000 + configuration.bookmarkInterval
                .components.attoseconds / 1_000_000_000
        )
        let tls = control ? nil : self.tls
        return ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [api] channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(RequestHeadFilter())
                    // kube-apiserver gzips a response of 128 KiB or more when the client accepts it
                    // (Go's transport always does); watch streams are never compressed.
                    try channel.pipeline.syncOperations.addHandler(
                        HTTPResponseCompressor(responseCompressionPredicate: { head, _ in
                            (head.headers.first(name: "content-length").flatMap { Int($0) } ?? 0) >= 128 * 1024
                                ? .compressIfPossible : .doNotCompress
                        })
                    )
                    try channel.pipeline.syncOperations.addHandler(
                        APIHandler(api: api, control: control, bookmarkInterval: interval)
                    )
                    if !control { self.track(channel) }
                }
            }
    }

    private func bind() async throws {
        let channel = try await bootstrap(control: false).bind(host: configuration.host, port: port).get()
        lock.withLock {
            listener = channel
            port = channel.localAddress?.port ?? port
        }
    }

    private func track(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        let accepted = lock.withLock {
            if !down { connections[id] = channel }
            return !down
        }
        guard accepted else { return channel.close(promise: nil) }
        channel.closeFuture.whenComplete { _ in _ = self.lock.withLock { self.connections.removeValue(forKey: id) } }
    }

    public func shutdown() async throws {
        let channels: [any Channel] = lock.withLock {
            let all = [listener, controlListener].compactMap { $0 } + Array(connections.values)
            listener = nil
            controlListener = nil
            return all
        }
        for channel in channels { try? await channel.close() }
        try await group.shutdownGracefully()
        if let path = configuration.controlSocket { try? FileManager.default.removeItem(atPath: path) }
    }

    /// Puts every object of a JSON file (one object, a `List` with `items`, or an array) into the
    /// store without validation; each object's `kind` picks its resource (Node when absent).
    public func seed(fromFile path: String) throws -> Int {
        let value = try JSONValue.parse(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
        let objects = value.array ?? value["items"]?.array ?? [value]
        for object in objects {
            let kind = object["kind"]?.string ?? "Node"
            guard let resource = Resource.all.first(where: { $0.kind == kind }) else {
                throw JSONParseError(description: "\(path): kind \(kind) is not served (only Node and Pod)")
            }
            store.put(resource, object)
        }
        return objects.count
    }

    // MARK: Controls

    /// Forgets the event history: the next watch from an older resourceVersion gets ERROR 410.
    public func compactHistory() { store.compact() }

    /// Ends every open watch cleanly (the zero-length chunk).
    public func closeWatches() { store.closeWatches() }

    /// The next `count` authenticated API requests get 429 TooManyRequests with `Retry-After`.
    public func throttle(next count: Int, retryAfterSeconds: Int = 1) {
        api.throttle(next: count, retryAfterSeconds: retryAfterSeconds)
    }

    public var requests: [RecordedRequest] { api.requests }
    public func clearRequests() { api.clearRequests() }

    /// The first logged request matching `condition` (already logged or arriving within `seconds`),
    /// nil if none came: e.g. "weftd has sent its status PATCH".
    public func waitForRequest(
        seconds: Double = 10,
        where condition: (RecordedRequest) -> Bool
    ) async throws -> RecordedRequest? {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while true {
            if let found = requests.first(where: condition) { return found }
            guard ContinuousClock.now < deadline else { return nil }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Waits until `count` watches are open (a client has connected its watch); false on timeout.
    public func waitForWatches(_ count: Int, seconds: Double = 10) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while store.openWatches < count {
            guard ContinuousClock.now < deadline else { return false }
            try await Task.sleep(for: .milliseconds(20))
        }
        return true
    }

    /// Stops accepting (connections are refused) and drops every open connection, watches included.
    public func goDown() async {
        let channels: [any Channel] = lock.withLock {
            down = true
            let all = [listener].compactMap { $0 } + Array(connections.values)
            listener = nil
            return all
        }
        for channel in channels { try? await channel.close() }
    }

    /// Listens again on the same address and port.
    public func comeUp() async throws {
        guard lock.withLock({ listener == nil }) else { return }
        lock.withLock { down = false }
        try await bind()
    }

    public var isUp: Bool { lock.withLock { listener != nil } }

    /// The control path's forms (they run on an event loop, so they only start the work).
    func requestDown(restoreAfter seconds: Double?) {
        Task {
            await goDown()
            if let seconds {
                try? await Task.sleep(for: .seconds(seconds))
                try? await comeUp()
            }
        }
    }

    func requestUp() {
        Task { try? await comeUp() }
    }
}
