import Synchronization

/// The bearer token to send, re-read from its file when the last read is older than `period`:
/// the kubelet rotates projected service-account tokens (about hourly), so a token read once at
/// startup stops working. Mirrors client-go's cached file token source, including keeping the
/// old token when a re-read fails.
public final class TokenSource: Sendable {
    /// client-go caches a file token for a minute and refreshes 10 s before that.
    public static let defaultPeriod: Duration = .seconds(50)

    public struct Reading: Equatable, Sendable {
        public let token: String
        /// Set when a re-read failed and the previous token is being sent instead: log it.
        public let rotationFailure: KubeError?
    }

    private struct State {
        var token: String
        var readAt: ContinuousClock.Instant?
    }

    public let origin: TokenOrigin
    public let period: Duration
    private let now: @Sendable () -> ContinuousClock.Instant
    private let state: Mutex<State>

    public init(
        origin: TokenOrigin,
        period: Duration = TokenSource.defaultPeriod,
        now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }
    ) {
        self.origin = origin
        self.period = period
        self.now = now
        let start: State
        switch origin {
        case .literal(let token, _): start = State(token: token, readAt: nil)
        case .file(_, let initial): start = State(token: initial, readAt: now())
        }
        state = Mutex(start)
    }

    /// The token for the next request; reads the file again when due.
    public func token() -> Reading {
        guard case .file(let path, _) = origin else {
            return Reading(token: state.withLock { $0.token }, rotationFailure: nil)
        }
        let instant = now()
        return state.withLock { state in
            if let readAt = state.readAt, instant - readAt < period {
                return Reading(token: state.token, rotationFailure: nil)
            }
            do throws(KubeError) {
                state.token = try TokenSource.readToken(path, fix: "")
                state.readAt = instant
                return Reading(token: state.token, rotationFailure: nil)
            } catch {
                return Reading(
                    token: state.token,
                    rotationFailure: KubeError(
                        .file,
                        "Unable to rotate token: \(error.problem)",
                        fix: "the kubelet should keep \(path) current; weftd keeps sending the previous token"
                    )
                )
            }
        }
    }

    /// Makes the next `token()` read the file again: after a 401, the token may have rotated.
    public func invalidate() {
        state.withLock { $0.readAt = nil }
    }

    /// How old the token in use is, or nil for a literal token: for a 401 message.
    public func age() -> Duration? {
        state.withLock { $0.readAt }.map { now() - $0 }
    }

    /// Which credentials a 401 refused, in one phrase.
    public func summary() -> String {
        switch origin {
        case .literal: return origin.summary
        case .file:
            guard let age = age() else { return "\(origin.summary) (re-reading it on the next request)" }
            return "\(origin.summary) (read \(age.components.seconds) s ago)"
        }
    }

    /// client-go trims the file and refuses an empty token.
    static func readToken(_ path: String, fix: String) throws(KubeError) -> String {
        let bytes: [UInt8]
        do {
            bytes = try FileContents.load(path)
        } catch {
            throw KubeError(.file, error.problem, fix: fix)
        }
        let token = String(decoding: bytes, as: UTF8.self).trimmingASCIIWhitespace
        guard !token.isEmpty else {
            throw KubeError(
                .file,
                "read empty token from file \"\(path)\"",
                fix: fix.isEmpty ? "the token file must hold the service-account token" : fix
            )
        }
        return token
    }
}
