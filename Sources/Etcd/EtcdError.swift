/// Every failure the etcd client reports: which operation, against which endpoint, and why.
/// `description` is one line a user can act on.
public struct EtcdError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: Sendable, Equatable {
        /// An endpoint string that is not `http://host:port` or `https://host:port`.
        case invalidEndpoint(String)
        /// No endpoint accepted a connection (every one was tried, with backoff, `attempts` times in all).
        case unreachable(attempts: Int, lastError: String)
        /// The request was sent but no complete answer came within the per-request deadline.
        case timedOut(seconds: Double)
        /// The gateway answered with an error body: a gRPC status code and etcd's message.
        case server(code: Int, message: String)
        /// The gateway answered, but not with the JSON shape etcd 3.4 documents.
        case malformedResponse(String)
        /// A watch asked for history etcd has already compacted away; re-read, then watch from `revision`.
        case compacted(revision: Int64)
        /// The watch stream ended without an error (the server closed it).
        case watchClosed
        /// The watch delivered neither events nor the progress it was asked for within `seconds`.
        case watchSilent(seconds: Double)
        /// TLS is misconfigured (a file, plain http with TLS files) or the handshake failed; the detail
        /// names the flag to fix. Never followed by a plaintext attempt.
        case tls(String)
    }

    public let operation: String
    public let endpoint: String
    public let reason: Reason

    public init(operation: String, endpoint: String, reason: Reason) {
        self.operation = operation
        self.endpoint = endpoint
        self.reason = reason
    }

    public var description: String {
        let prefix = "etcd \(operation) at \(endpoint)"
        switch reason {
        case .invalidEndpoint(let value):
            return
                "etcd endpoint \"\(value)\" is not http://host:port or https://host:port; fix --etcd-endpoints (comma-separated)"
        case .unreachable(let attempts, let lastError):
            return
                "\(prefix): no endpoint reachable after \(attempts) attempts (\(lastError)); check that etcd runs and --etcd-endpoints lists its client URLs"
        case .timedOut(let seconds):
            return
                "\(prefix): no answer within \(seconds) s; check etcd's health (etcdctl endpoint health) or raise the request timeout"
        case .server(let code, let message):
            return "\(prefix) failed: \(message) (gRPC code \(code)); \(Self.advice(forCode: code, message: message))"
        case .malformedResponse(let detail):
            return "\(prefix): unexpected answer (\(detail)); check that the endpoint is an etcd ≥ 3.4 client URL"
        case .compacted(let revision):
            return
                "\(prefix): history before revision \(revision) was compacted; re-read the keys and watch from their revision"
        case .watchClosed:
            return "\(prefix): the server closed the watch stream; watch again from the last revision seen + 1"
        case .watchSilent(let seconds):
            return
                "\(prefix): no events and no progress for \(seconds) s although progress was asked for; the connection is taken for dead (etcd unreachable, or restarted while unreachable); watch again from the last revision seen + 1"
        case .tls(let detail):
            return "\(prefix): \(detail)"
        }
    }

    /// gRPC status codes etcd uses (google.golang.org/grpc/codes); auth failures share code 3 with
    /// malformed requests, so those are told apart by etcd's message.
    private static func advice(forCode code: Int, message: String) -> String {
        if message.contains("user name is empty") {
            return "etcd has authentication enabled; give --etcd-username and --etcd-password"
        }
        if message.contains("invalid user ID or password") {
            return "etcd refused the credentials; check --etcd-username and --etcd-password"
        }
        if message.contains("database space exceeded") {
            return
                "etcd's backend is full and its NOSPACE alarm refuses writes; free it (etcdctl compact <revision>, etcdctl defrag), then etcdctl alarm disarm; weft retries meanwhile"
        }
        return switch code {
        case 3: "the request was malformed; this is a client bug"
        case 5: "the key or lease does not exist (an expired lease must be granted again)"
        case 7:
            "the --etcd-username user lacks permission on this key; grant its role readwrite on the prefix (etcdctl role grant-permission)"
        case 11: "the revision was compacted; read again at the current revision"
        case 14: "etcd is unavailable (no leader?); it is retried on other endpoints"
        case 16:
            "etcd rejected the auth token even after authenticating again; check --etcd-username and --etcd-password"
        default: "see etcd's log"
        }
    }
}
