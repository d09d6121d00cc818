extension GatewayTransport {
    /// Runs `body` with the current auth token, authenticating first if there is none yet. If etcd
    /// rejects the token (expired, or invalidated by an auth change), authenticates again and retries
    /// once: a rejected token means etcd applied nothing, so even a transaction may be resent.
    func withAuthentication<T>(
        _ operation: String,
        _ body: (String) async throws(EtcdError) -> T
    ) async throws(EtcdError) -> T {
        let current: String
        if let known = token.withLock({ $0 }) {
            current = known
        } else {
            current = try await authenticate(replacing: nil)
        }
        do {
            return try await body(current)
        } catch  where Self.isRejectedToken(error) && configuration.username != nil {
            let fresh = try await authenticate(replacing: current)
            return try await body(fresh)
        }
    }

    /// Asks etcd for a token with the configured credentials (POST /v3/auth/authenticate) and keeps it.
    /// `stale` is the token that just failed: if another call already replaced it, that one is used.
    private func authenticate(replacing stale: String?) async throws(EtcdError) -> String {
        if let current = token.withLock({ $0 }), current != stale { return current }
        guard let username = configuration.username else { return "" }
        let operation = "authenticate as \(username)"
        authentications.add(1, ordering: .relaxed)
        let payload = try encode(
            Wire.AuthenticateRequest(name: username, password: configuration.password ?? ""),
            operation: operation
        )
        let fresh: String
        do throws(EtcdError) {
            let response = try await withFailover(operation, safety: .idempotent) {
                (endpoint) throws(Failure) -> Wire.AuthenticateResponse in
                let (status, bytes) = try await post(
                    payload,
                    to: endpoint,
                    path: "/v3/auth/authenticate",
                    token: "",
                    timeout: configuration.requestTimeout
                )
                return try decodeAnswer(status: status, bytes: bytes, operation: operation, endpoint: endpoint)
            }
            guard let issued = response.token, !issued.isEmpty else {
                throw EtcdError(
                    operation: operation,
                    endpoint: endpoints.joined(separator: ","),
                    reason: .malformedResponse("no token in the answer")
                )
            }
            fresh = issued
        } catch {
            // As etcd's own client does: credentials for an etcd without authentication are not an error.
            guard case .server(_, let message) = error.reason, message.contains("authentication is not enabled") else {
                throw error
            }
            fresh = ""
        }
        token.withLock { $0 = fresh }
        return fresh
    }

    /// etcd's answers for a token it no longer accepts: expired or unknown (gRPC 16), issued before
    /// the last change to users and roles (reported as InvalidArgument), or no token at all because
    /// authentication was enabled after this client found it disabled.
    static func isRejectedToken(_ error: EtcdError) -> Bool {
        guard case .server(let code, let message) = error.reason else { return false }
        return code == 16 || message.contains("invalid auth token") || message.contains("revision of auth store is old")
            || message.contains("user name is empty")
    }
}
