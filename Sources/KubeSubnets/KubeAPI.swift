import HTTP1
import KubeModel
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

/// flannel's requests (`APIRequest`) over HTTP1 to the API server a `ClientConfig` names: TLS
/// with the config's CA and client certificate, the bearer token from `TokenSource` (re-read
/// when due and at once after a 401), every failure one `KubeError` line with its fix.
final class KubeAPI: Sendable {
    /// A unary call, connecting included.
    static let requestTimeout: Duration = .seconds(15)
    /// A watch's connect and response head; the body then lasts until the server's timeoutSeconds.
    static let watchHeadTimeout: Duration = .seconds(15)
    /// The largest error body read from a failed watch.
    static let errorBodyLimit = 1 << 20

    let config: ClientConfig
    private let http: HTTP1Client
    private let origin: Origin
    private let tokens: TokenSource?
    private let warn: @Sendable (String) -> Void
    /// The last token-rotation failure logged, so a file that stays unreadable costs one line.
    private let lastRotationFailure = Mutex<String?>(nil)

    init(config: ClientConfig, warn: @escaping @Sendable (String) -> Void) throws(KubeError) {
        self.config = config
        self.warn = warn
        origin = Origin(isTLS: config.server.scheme == .https, host: config.server.host, port: config.server.port)
        tokens = config.bearerToken.map { TokenSource(origin: $0) }
        var configuration = HTTP1Client.Configuration()
        // client-go's TLS handshake bound (net/http's TLSHandshakeTimeout): a loaded API server or
        // node can take longer than the 2 s etcd's client allows, and a refused connect still fails at once.
        configuration.connectTimeout = .seconds(10)
        if config.server.scheme == .https { configuration.tls = try Self.tls(config) }
        do {
            http = try HTTP1Client(configuration: configuration)
        } catch {
            throw KubeError(
                .clientConfig,
                "cannot set up TLS for \(config.server.url): \(error)",
                fix:
                    "check the certificate-authority and client certificate in the kubeconfig (or ca.crt in the service account)"
            )
        }
    }

    /// Trust roots: the config's CA, else the system's; the client certificate when given.
    /// Verification is off only when the config says insecure-skip-tls-verify (its loader returns a warning to log).
    private static func tls(_ config: ClientConfig) throws(KubeError) -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        // NIOSSL waits this long for the server's close_notify before closing each connection
        // (5 s by default); weftd's stop waits for its connections, and a server that never
        // answers (black-holed, or one that just closes) held every SIGTERM for 5 s.
        tls.shutdownTimeout = .milliseconds(300)
        do {
            if let ca = config.certificateAuthority {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(ca))
            }
            if let client = config.clientCertificate {
                tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(client.certificate).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: client.key, format: .pem))
            }
        } catch {
            throw KubeError(
                .clientConfig,
                "a certificate or key for \(config.server.url) is not usable PEM: \(error)",
                fix: "check certificate-authority(-data) and client-certificate/key(-data) in the kubeconfig"
            )
        }
        if config.insecureSkipTLSVerify { tls.certificateVerification = .none }
        return tls
    }

    func shutdown() async {
        await http.shutdown()
    }

    /// Which credentials went out, for a 401's message.
    private var credentials: String { tokens?.summary() ?? config.credentialSummary }

    /// Sends `request` (with `body` for a PATCH) and returns the answer's body; a non-2xx answer
    /// is the matching KubeError. A 401 is tried once more with the token read again.
    func call(_ request: APIRequest, body: String? = nil) async throws(KubeError) -> [UInt8] {
        var retriedUnauthorized = false
        while true {
            let response: HTTP1Response
            do {
                response = try await http.execute(httpRequest(request, body: body), timeout: Self.requestTimeout)
            } catch {
                throw APIFailure.unreachable(request: request, config: config, reason: error.description)
            }
            let code = Int(response.status.code)
            if (200..<300).contains(code) { return response.body }
            if code == 401, !retriedUnauthorized, let tokens {
                tokens.invalidate()
                retriedUnauthorized = true
                continue
            }
            throw APIFailure.from(
                httpStatus: code,
                body: response.body,
                retryAfter: response.headers.first(name: "Retry-After"),
                request: request,
                config: config,
                credentials: credentials
            )
        }
    }

    /// Opens the watch `request` and hands each event to `handle` until the server ends the stream
    /// (returns normally), `handle` returns false, or the stream fails (throws). `opened` runs
    /// once the API server accepted the watch. A 401 is tried once more with the token read again,
    /// as `call` does, so a rotated token does not interrupt the peer watch.
    nonisolated(nonsending) func watch(
        _ request: APIRequest,
        opened: () async -> Void,
        handle: (WatchEvent) async -> Bool
    ) async throws(KubeError) {
        var retriedUnauthorized = false
        var answer: HTTP1Stream
        while true {
            do {
                answer = try await http.openStream(httpRequest(request, body: nil), timeout: Self.watchHeadTimeout)
            } catch {
                throw APIFailure.unreachable(request: request, config: config, reason: error.description)
            }
            let code = Int(answer.status.code)
            if code == 200 { break }
            let body = (try? await answer.collect(upTo: Self.errorBodyLimit, timeout: Self.requestTimeout)) ?? []
            if code == 401, let tokens {
                tokens.invalidate()
                if !retriedUnauthorized {
                    retriedUnauthorized = true
                    continue
                }
            }
            throw APIFailure.from(
                httpStatus: code,
                body: body,
                retryAfter: answer.head.headers.first(name: "Retry-After"),
                request: request,
                config: config,
                credentials: credentials
            )
        }
        let stream = answer
        await opened()
        let result: Result<Void, KubeError> = await withTaskCancellationHandler {
            await Self.read(stream, request: request, config: config, handle: handle)
        } onCancel: {
            stream.close()
        }
        stream.close()
        try result.get()
    }

    /// The events of an open watch until it ends, `handle` declines, or it fails.
    nonisolated(nonsending) private static func read(
        _ stream: HTTP1Stream,
        request: APIRequest,
        config: ClientConfig,
        handle: (WatchEvent) async -> Bool
    ) async -> Result<Void, KubeError> {
        var decoder = WatchStreamDecoder()
        do throws(KubeError) {
            do {
                for try await buffer in stream {
                    decoder.append(buffer.readableBytesView)
                    while let event = try decoder.next() {
                        guard await handle(event) else { return .success(()) }
                    }
                }
            } catch let error as KubeError {
                throw error
            } catch {
                throw APIFailure.unreachable(request: request, config: config, reason: "the watch broke: \(error)")
            }
            decoder.finish()
            while let event = try decoder.next() {
                guard await handle(event) else { return .success(()) }
            }
            return .success(())
        } catch {
            return .failure(error)
        }
    }

    private func httpRequest(_ request: APIRequest, body: String?) -> HTTP1Request {
        var headers = HTTPHeaders()
        headers.add(name: "Accept", value: "application/json")
        headers.add(name: "User-Agent", value: "weftd (flannel kube subnet manager)")
        if let reading = tokens?.token() {
            let failure = reading.rotationFailure?.description
            let changed = lastRotationFailure.withLock { last in
                defer { last = failure }
                return last != failure
            }
            if changed, let failure { warn(failure) }
            if !reading.token.isEmpty { headers.add(name: "Authorization", value: "Bearer \(reading.token)") }
        }
        if let contentType = request.contentType { headers.add(name: "Content-Type", value: contentType) }
        let method: HTTPMethod = request.method == "PATCH" ? .PATCH : .GET
        return HTTP1Request(
            method: method,
            origin: origin,
            path: config.server.basePath + request.path,
            headers: headers,
            body: .bytes(body.map { Array($0.utf8) } ?? [])
        )
    }
}
