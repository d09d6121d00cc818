extension EtcdClient {
    /// Grants a lease of `ttl` seconds; keys put with it vanish when it expires or is revoked.
    public func grantLease(ttl: Int64) async throws(EtcdError) -> Lease {
        // Retrying a grant after a timeout may leave an orphan lease; it expires on its own after `ttl`.
        let response = try await transport.call(
            "grant lease",
            path: "/v3/lease/grant",
            body: Wire.LeaseGrantRequest(TTL: GatewayInt64(ttl)),
            safety: .idempotent,
            as: Wire.LeaseGrantResponse.self
        )
        if let problem = response.error, !problem.isEmpty {
            throw EtcdError(
                operation: "grant lease",
                endpoint: transport.endpoints[0],
                reason: .server(code: 2, message: problem)
            )
        }
        guard let id = response.ID?.value, id != 0 else {
            throw EtcdError(
                operation: "grant lease",
                endpoint: transport.endpoints[0],
                reason: .malformedResponse("no lease ID in the answer")
            )
        }
        return Lease(id: LeaseID(id), ttl: response.TTL?.value ?? 0)
    }

    /// Renews `lease` once; returns its new TTL in seconds, or nil if etcd no longer has it
    /// (expired or revoked: the keys attached to it are gone and a new lease must be granted).
    public func keepAliveOnce(lease: LeaseID) async throws(EtcdError) -> Int64? {
        let chunk = try await leaseCall(
            "keep lease \(lease) alive",
            "/v3/lease/keepalive",
            lease,
            as: Wire.LeaseKeepAliveChunk.self
        )
        if let error = chunk.error {
            throw EtcdError(
                operation: "keep lease \(lease) alive",
                endpoint: transport.endpoints[0],
                reason: .server(
                    code: error.grpc_code ?? error.code ?? 2,
                    message: error.message ?? error.error ?? "unknown"
                )
            )
        }
        // A lost lease answers {"result": {"header":…, "ID":…}}: TTL 0 is the default and so omitted.
        guard let ttl = chunk.result?.TTL?.value, ttl > 0 else { return nil }
        return ttl
    }

    /// Revokes `lease`, deleting every key attached to it. Revoking an unknown lease throws `.server(code: 5)`.
    public func revokeLease(_ lease: LeaseID) async throws(EtcdError) {
        _ = try await leaseCall("revoke lease \(lease)", "/v3/lease/revoke", lease, as: Wire.Empty.self)
    }

    /// The time left on `lease`, or nil if it expired or never existed (etcd answers TTL -1).
    public func timeToLive(lease: LeaseID) async throws(EtcdError) -> LeaseTimeToLive? {
        let response = try await leaseCall(
            "lease \(lease) time-to-live",
            "/v3/lease/timetolive",
            lease,
            as: Wire.LeaseTimeToLiveResponse.self
        )
        // Under a second left reads TTL 0, which the gateway omits; only an explicit -1 means gone.
        let ttl = response.TTL?.value ?? 0
        guard ttl >= 0 else { return nil }
        return LeaseTimeToLive(ttl: ttl, grantedTTL: response.grantedTTL?.value ?? 0)
    }

    /// The call every lease request but the grant makes: `lease`'s ID to `path`, safe to retry.
    private func leaseCall<Response: Decodable>(
        _ operation: String,
        _ path: String,
        _ lease: LeaseID,
        as type: Response.Type
    ) async throws(EtcdError) -> Response {
        try await transport.call(
            operation,
            path: path,
            body: Wire.LeaseIDRequest(ID: GatewayInt64(lease.value)),
            safety: .idempotent,
            as: type
        )
    }
}
