import Foundation
import HTTP1
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization
import Timing

/// Whether a request may be sent again after it possibly reached etcd.
enum RetrySafety {
    /// Repeating it changes nothing a caller relies on (reads, put of the same value, delete, lease calls).
    case idempotent
    /// Sent at most once once it may have reached etcd. A txn is the case: if a create-if-absent
    /// txn timed out after etcd applied it, a blind retry fails its compare against our own write
    /// and reports "someone else holds this key" — the caller would then give up a lease it owns.
    /// Only failures that prove the request never left (no connection) are retried.
    case atMostOnce
}

/// POSTs JSON to etcd's gateway, failing over across endpoints with backoff.
final class GatewayTransport: Sendable {
    let http: HTTP1Client
    let endpoints: [String]
    /// Where each endpoint's connections go, by endpoint.
    private let origins: [String: Origin]
    let configuration: EtcdClient.Configuration
    /// The endpoint that answered last; requests start there so a dead first endpoint costs one failover, not one per call.
    private let preferred = Mutex(0)
    /// The auth token sent with every request: nil until the first authentication, "" when no
    /// credentials are configured or etcd has authentication disabled.
    let token: Mutex<String?>
    /// How many times `authenticate` asked etcd for a token (tests check re-authentication happens once).
    let authentications = Atomic(0)

    /// Where the next request goes first.
    var preferredEndpoint: String { endpoints[preferred.withLock { $0 }] }

    /// `endpoints` are validated client URLs. `group`: where connections run (tests pass a thread of their own).
    init(
        endpoints: [String],
        configuration: EtcdClient.Configuration,
        tls: TLSConfiguration?,
        group: (any EventLoopGroup)? = nil
    ) throws(EtcdError) {
        var httpConfiguration = HTTP1Client.Configuration()
        httpConfiguration.tls = tls
        httpConfiguration.connectTimeout = configuration.connectTimeout
        do throws(HTTP1Error) {
            if let group {
                http = try HTTP1Client(configuration: httpConfiguration, group: group)
            } else {
                http = try HTTP1Client(configuration: httpConfiguration)
            }
        } catch {
            throw EtcdError(operation: "configure", endpoint: "TLS", reason: .tls(error.detail))
        }
        var origins: [String: Origin] = [:]
        for endpoint in endpoints {
            guard let origin = Origin(endpoint) else {
                throw EtcdError(operation: "configure", endpoint: endpoint, reason: .invalidEndpoint(endpoint))
            }
            origins[endpoint] = origin
        }
        self.origins = origins
        self.endpoints = endpoints
        self.configuration = configuration
        token = Mutex(configuration.username == nil ? "" : nil)
    }

    func shutdown() async throws {
        await http.shutdown()
    }

    /// One unary call: encodes `body`, decodes the first JSON object of the answer as `Response`.
    func call<Response: Decodable>(
        _ operation: String,
        path: String,
        body: some Encodable,
        safety: RetrySafety,
        as _: Response.Type = Response.self
    ) async throws(EtcdError) -> Response {
        let payload = try encode(body, operation: operation)
        return try await withAuthentication(operation) { (token) throws(EtcdError) in
            try await withFailover(operation, safety: safety) { (endpoint) throws(Failure) in
                let (status, bytes) = try await post(
                    payload,
                    to: endpoint,
                    path: path,
                    token: token,
                    timeout: configuration.requestTimeout
                )
                return try decodeAnswer(status: status, bytes: bytes, operation: operation, endpoint: endpoint)
            }
        }
    }

    /// Opens a streaming call (watch): returns once response headers arrived, with the endpoint that
    /// answered and the request stream of that attempt. The request body stays open: `first` is its
    /// first message (encoded JSON), and what the caller yields to the returned continuation
    /// follows on the same connection (finish it to end the request). Until the response head
    /// arrives, `nudge` is sent every 100 ms (see below). The caller wraps it in
    /// `withAuthentication`, since a stream reports a bad token only in its first message.
    ///
    /// Why the nudge: etcd's Go HTTP server (Go 1.19 in Debian's etcd 3.4) takes the request
    /// body's lock before it writes the response head, and the gateway's reader holds that lock
    /// while it waits for the next message, so the head goes out only when a message arrives
    /// after the answer is ready (seen with curl and with this client: without one, nothing for
    /// minutes). A harmless message until the head arrives costs at most 100 ms.
    func openStream(
        _ operation: String,
        path: String,
        first: [UInt8],
        nudge: [UInt8],
        token: String,
        headers: [(String, String)] = []
    )
        async throws(EtcdError) -> (
            endpoint: String, response: HTTP1Stream, requests: AsyncStream<ByteBuffer>.Continuation
        )
    {
        try await withFailover(operation, safety: .idempotent) { (endpoint) throws(Failure) in
            let (messages, requests) = AsyncStream<ByteBuffer>.makeStream()
            let nudging = Task {
                while !Task.isCancelled {
                    do { try await Task.sleep(for: .milliseconds(100)) } catch { return }
                    requests.yield(ByteBuffer(bytes: nudge))
                }
            }
            defer { nudging.cancel() }
            // A length no stream reaches, not chunked encoding: etcd's Go server (1.19 in Debian's
            // 3.4) drains a chunked body before it writes the response head, so a chunked stream
            // that stays open never gets an answer; with a long Content-Length it answers at once.
            var request = makeRequest(
                .stream(messages, length: Self.openStreamLength, first: first),
                endpoint: endpoint,
                path: path,
                token: token
            )
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            let response: HTTP1Stream
            do throws(HTTP1Error) {
                // The deadline covers only connecting and the response head; the body streams for as long as the watch lives.
                response = try await http.openStream(request, timeout: configuration.requestTimeout)
            } catch {
                requests.finish()
                throw Self.classify(error, endpoint: endpoint)
            }
            if response.status != .ok {
                requests.finish()
                let bytes = (try? await response.collect(upTo: 1 << 20, timeout: configuration.requestTimeout)) ?? []
                throw .answered(
                    Self.serverError(
                        bytes: bytes,
                        status: Int(response.status.code),
                        operation: operation,
                        endpoint: endpoint
                    )
                )
            }
            return (endpoint, response, requests)
        }
    }

    /// The Content-Length of a request stream that stays open (1 TiB): more than any watch sends.
    static let openStreamLength: Int64 = 1 << 40

    /// Why one attempt at one endpoint failed, and so whether another attempt may follow.
    enum Failure: Error {
        /// No connection was made: the request never left, any request may go to the next endpoint.
        case notConnected(String)
        /// The request may have reached etcd but no answer came (in time, or before the connection closed).
        case timedOut(String)
        /// etcd answered "unavailable" (no leader, shutting down); nothing was applied.
        case unavailable(EtcdError)
        /// A definite answer (success handled by the caller, or an error worth reporting as is).
        case answered(EtcdError)
        /// The TLS session failed (untrusted certificate, refused client certificate): etcd processed
        /// nothing, so another endpoint may be tried, but this is what to report if none works.
        case rejected(String)
    }

    func withFailover<T>(
        _ operation: String,
        safety: RetrySafety,
        attempt: (String) async throws(Failure) -> T
    ) async throws(EtcdError) -> T {
        let start = preferred.withLock { $0 }
        var generator = SystemRandomNumberGenerator()
        var lastProblem = ""
        var rejection: EtcdError?
        let attempts = endpoints.count * max(configuration.passes, 1)
        for index in 0..<attempts {
            if index > 0, index % endpoints.count == 0 {
                try? await Task.sleep(
                    for: configuration.backoff.delay(attempt: index / endpoints.count - 1, using: &generator)
                )
            }
            if Task.isCancelled { break }
            let slot = (start + index) % endpoints.count
            let endpoint = endpoints[slot]
            do throws(Failure) {
                let result = try await attempt(endpoint)
                preferred.withLock { $0 = slot }
                return result
            } catch {
                switch error {
                case .notConnected(let problem):
                    lastProblem = "\(endpoint): \(problem)"
                case .unavailable(let problem):
                    lastProblem = problem.description
                case .timedOut(let problem):
                    guard safety == .idempotent else {
                        throw EtcdError(
                            operation: operation,
                            endpoint: endpoint,
                            reason: .timedOut(seconds: Self.seconds(configuration.requestTimeout))
                        )
                    }
                    lastProblem = "\(endpoint): \(problem)"
                case .answered(let problem):
                    throw problem
                case .rejected(let detail):
                    rejection = EtcdError(operation: operation, endpoint: endpoint, reason: .tls(detail))
                    lastProblem = "\(endpoint): \(detail)"
                }
            }
        }
        // "Unreachable" would send the user to check that etcd runs; a TLS failure needs a different fix.
        if let rejection { throw rejection }
        throw EtcdError(
            operation: operation,
            endpoint: endpoints.joined(separator: ","),
            reason: .unreachable(attempts: attempts, lastError: lastProblem)
        )
    }

    func encode(_ body: some Encodable, operation: String) throws(EtcdError) -> [UInt8] {
        do {
            return Array(try JSONEncoder().encode(body))
        } catch {
            throw EtcdError(
                operation: operation,
                endpoint: "-",
                reason: .malformedResponse("cannot encode request: \(error)")
            )
        }
    }

    private func makeRequest(_ body: HTTP1Request.Body, endpoint: String, path: String, token: String) -> HTTP1Request {
        var headers: HTTPHeaders = ["Content-Type": "application/json"]
        // etcd's gateway takes the bare token (no "Bearer").
        if !token.isEmpty { headers.add(name: "Authorization", value: token) }
        // Validated in init: every endpoint has its origin.
        return HTTP1Request(method: .POST, origin: origins[endpoint]!, path: path, headers: headers, body: body)
    }

    /// Sends one request and reads its whole body, connecting included, all within `timeout`.
    func post(
        _ payload: [UInt8],
        to endpoint: String,
        path: String,
        token: String,
        timeout: Duration
    ) async throws(Failure) -> (Int, [UInt8]) {
        let request = makeRequest(.bytes(payload), endpoint: endpoint, path: path, token: token)
        do throws(HTTP1Error) {
            let response = try await http.execute(request, timeout: timeout)
            return (Int(response.status.code), response.body)
        } catch {
            throw Self.classify(error, endpoint: endpoint)
        }
    }

    /// Sorts the HTTP client's errors into "never sent" and "may have been sent".
    static func classify(_ error: HTTP1Error, endpoint: String) -> Failure {
        switch error.kind {
        case .notConnected, .shutDown:
            return .notConnected(error.detail)
        case .tls:
            // A failed handshake or an alert from etcd (with TLS 1.3 a refused client certificate
            // arrives as an alert after the handshake) means etcd processed nothing. A TLS connection
            // that merely closes is an ordinary broken connection (`connectionClosed`).
            return .rejected(describeTLSFailure(error.underlying ?? error, endpoint: endpoint))
        case .timedOut:
            return .timedOut("timed out")
        case .connectionClosed, .malformedResponse, .cancelled:
            // The request may have been written.
            return .timedOut(error.detail)
        }
    }

    func decodeAnswer<Response: Decodable>(
        status: Int,
        bytes: [UInt8],
        operation: String,
        endpoint: String
    ) throws(Failure) -> Response {
        guard status == 200 else {
            let error = Self.serverError(bytes: bytes, status: status, operation: operation, endpoint: endpoint)
            if case .server(code: 14, _) = error.reason { throw .unavailable(error) }
            throw .answered(error)
        }
        // Streaming endpoints (lease keepalive) answer one JSON object per line; unary ones a single object.
        let line = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true).first ?? []
        do {
            return try JSONDecoder().decode(Response.self, from: Data(line))
        } catch {
            throw .answered(
                EtcdError(
                    operation: operation,
                    endpoint: endpoint,
                    reason: .malformedResponse("\(Self.snippet(bytes)): \(Self.decodingProblem(error))")
                )
            )
        }
    }

    /// The gateway's {"error", "code", "message"} body as an EtcdError; anything else is malformed.
    static func serverError(bytes: [UInt8], status: Int, operation: String, endpoint: String) -> EtcdError {
        if let body = try? JSONDecoder().decode(Wire.GatewayErrorBody.self, from: Data(bytes)),
            let message = body.message ?? body.error
        {
            return EtcdError(
                operation: operation,
                endpoint: endpoint,
                reason: .server(code: body.code ?? 2, message: message)
            )
        }
        return EtcdError(
            operation: operation,
            endpoint: endpoint,
            reason: .malformedResponse("HTTP \(status): \(snippet(bytes))")
        )
    }

    static func snippet(_ bytes: [UInt8]) -> String {
        let text = String(decoding: bytes.prefix(120), as: UTF8.self).replacingOccurrences(of: "\n", with: " ")
        return text.isEmpty ? "empty body" : text
    }

    static func decodingProblem(_ error: any Error) -> String {
        guard let decoding = error as? DecodingError else { return String(describing: error) }
        switch decoding {
        case .dataCorrupted(let context), .keyNotFound(_, let context), .typeMismatch(_, let context),
            .valueNotFound(_, let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? context.debugDescription : "\(path): \(context.debugDescription)"
        @unknown default:
            return String(describing: decoding)
        }
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.nanoseconds) / 1e9
    }
}
