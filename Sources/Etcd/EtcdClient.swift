import NIOCore
import Timing

/// An etcd v3 client over etcd's JSON gateway (`/v3/...` on each client URL, etcd ≥ 3.4).
/// One HTTP connection pool shared by every call; call `shutdown()` before dropping the client.
public final class EtcdClient: Sendable {
    public struct Configuration: Sendable {
        /// Bound on one attempt at one endpoint, from connecting to the last byte of the answer.
        public var requestTimeout: Duration = .seconds(5)
        /// Bound on establishing a TCP connection; a dead endpoint costs at most this before failover.
        public var connectTimeout: Duration = .seconds(2)
        /// How often a watch asks etcd for a progress notification (on its own request stream).
        public var watchProgressInterval: Duration = .seconds(3)
        /// A watch that delivers neither events nor progress for this long is taken for dead and
        /// ends with `.watchSilent` (a black-holed etcd, a connection to a peer that restarted).
        public var watchSilenceLimit: Duration = .seconds(10)
        /// How many times the whole endpoint list is tried before giving up.
        public var passes: Int = 3
        /// Wait between passes.
        public var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(2), jitter: .full)
        /// flanneld's --etcd-cafile: PEM CA bundle that signed etcd's server certificate. Nil: the system trust store.
        public var caFile: String?
        /// flanneld's --etcd-certfile and --etcd-keyfile: the client certificate (PEM chain) and its
        /// unencrypted PEM key, for an etcd started with --client-cert-auth. Both or neither.
        public var certificateFile: String?
        public var keyFile: String?
        /// flanneld's --etcd-username and --etcd-password, for an etcd with authentication enabled.
        public var username: String?
        public var password: String?

        public init() {}
    }

    let transport: GatewayTransport

    /// `endpoints`: client URLs (`http://host:port` or `https://host:port`), tried in order, e.g. from
    /// `parseEtcdEndpoints`. With any TLS file configured every endpoint must be https: a plain http
    /// endpoint would send what the files were meant to protect in the clear.
    public convenience init(endpoints: [String], configuration: Configuration = Configuration()) throws(EtcdError) {
        try self.init(endpoints: endpoints, configuration: configuration, group: nil)
    }

    /// `group`: where the connections run; nil for NIO's shared threads (tests pass a thread of their own).
    init(endpoints: [String], configuration: Configuration, group: (any EventLoopGroup)?) throws(EtcdError) {
        guard !endpoints.isEmpty else {
            throw EtcdError(operation: "configure", endpoint: "", reason: .invalidEndpoint(""))
        }
        let validated = try endpoints.map { (endpoint) throws(EtcdError) in try validateEndpoint(endpoint) }
        if configuration.hasTLSFiles, let plain = validated.first(where: { $0.hasPrefix("http://") }) {
            throw EtcdError(
                operation: "configure",
                endpoint: plain,
                reason: .tls(
                    "the endpoint is plain http but --etcd-cafile/--etcd-certfile/--etcd-keyfile were given; use https:// in --etcd-endpoints"
                )
            )
        }
        let tls =
            configuration.hasTLSFiles || validated.contains(where: { $0.hasPrefix("https://") })
            ? try makeTLSConfiguration(configuration) : nil
        transport = try GatewayTransport(endpoints: validated, configuration: configuration, tls: tls, group: group)
    }

    /// `endpoints`: flanneld's comma-separated `--etcd-endpoints` value.
    public convenience init(endpoints: String, configuration: Configuration = Configuration()) throws(EtcdError) {
        try self.init(endpoints: parseEtcdEndpoints(endpoints), configuration: configuration)
    }

    public var endpoints: [String] { transport.endpoints }

    /// Closes every connection; open watches end with `.unreachable` (their streams broke).
    public func shutdown() async throws {
        try await transport.shutdown()
    }

    // MARK: Keys

    /// The key if it exists (an empty `kvs` otherwise), with the store's revision.
    public func get(_ key: String) async throws(EtcdError) -> RangeResult {
        try await range(Wire.RangeRequest(key: GatewayBytes(key)), "get \(key)")
    }

    /// Every key starting with `prefix`, in key order, with the store's revision.
    public func range(prefix: String) async throws(EtcdError) -> RangeResult {
        let request = Wire.RangeRequest(
            key: GatewayBytes(prefix),
            range_end: GatewayBytes(prefixRangeEnd(Array(prefix.utf8)))
        )
        return try await range(request, "range \(prefix)")
    }

    private func range(_ request: Wire.RangeRequest, _ operation: String) async throws(EtcdError) -> RangeResult {
        RangeResult(
            try await transport.call(
                operation,
                path: "/v3/kv/range",
                body: request,
                safety: .idempotent,
                as: Wire.RangeResponse.self
            )
        )
    }

    /// Sets `key`, attached to `lease` if given; returns the revision of the write.
    @discardableResult
    public func put(_ key: String, _ value: String, lease: LeaseID? = nil) async throws(EtcdError) -> Int64 {
        let request = Wire.PutRequest(
            key: GatewayBytes(key),
            value: GatewayBytes(value),
            lease: lease.map { GatewayInt64($0.value) }
        )
        let response = try await transport.call(
            "put \(key)",
            path: "/v3/kv/put",
            body: request,
            safety: .idempotent,
            as: Wire.PutResponse.self
        )
        return response.header?.revision?.value ?? 0
    }

    /// Deletes `key`; returns how many keys were deleted (0 or 1).
    @discardableResult
    public func delete(_ key: String) async throws(EtcdError) -> Int64 {
        let response = try await transport.call(
            "delete \(key)",
            path: "/v3/kv/deleterange",
            body: Wire.DeleteRangeRequest(key: GatewayBytes(key)),
            safety: .idempotent,
            as: Wire.DeleteRangeResponse.self
        )
        return response.deleted?.value ?? 0
    }

    /// Runs `success` if every compare holds, `failure` otherwise, atomically.
    /// Never retried once it may have reached etcd (see `RetrySafety.atMostOnce`): a timeout throws `.timedOut`,
    /// and the caller must read the keys back to learn whether it applied.
    public func transaction(
        compare: [Compare],
        success: [TransactionOperation],
        failure: [TransactionOperation] = []
    ) async throws(EtcdError) -> TransactionResult {
        let request = Wire.TxnRequest(
            compare: compare.map(\.wire),
            success: success.map(\.wire),
            failure: failure.map(\.wire)
        )
        let name = "txn " + (compare.first?.key ?? success.first.map { "\($0)" } ?? "")
        let response = try await transport.call(
            name,
            path: "/v3/kv/txn",
            body: request,
            safety: .atMostOnce,
            as: Wire.TxnResponse.self
        )
        let responses = (response.responses ?? []).map { (op: Wire.ResponseOp) -> TransactionResponse in
            if let range = op.response_range { return .range(RangeResult(range)) }
            if let delete = op.response_delete_range { return .delete(deleted: delete.deleted?.value ?? 0) }
            // A put answers {"response_put": {...}}; an empty op object can only be a put too,
            // since its header is the one field that may be present.
            return .put
        }
        return TransactionResult(
            succeeded: response.succeeded ?? false,
            revision: response.header?.revision?.value ?? 0,
            responses: responses
        )
    }

    /// Discards history before `revision`; watches from older revisions then fail with `.compacted`.
    public func compact(revision: Int64) async throws(EtcdError) {
        _ = try await transport.call(
            "compact \(revision)",
            path: "/v3/kv/compaction",
            body: Wire.CompactionRequest(revision: GatewayInt64(revision)),
            safety: .idempotent,
            as: Wire.Empty.self
        )
    }
}
