import NIOCore
import NIOHTTP1
import NIOSSL

/// Why a request or stream failed, sorted by what the caller may conclude about the request:
/// `notConnected` means it never left; after `timedOut` or `connectionClosed` the server may have
/// received it. `description` is one line.
public struct HTTP1Error: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// No connection: refused, unreachable, name not resolved, or the connect timeout passed.
        case notConnected
        /// The TLS session failed: handshake, certificate, or an alert from the server (with TLS 1.3
        /// a refused client certificate arrives after the handshake). `underlying` is NIOSSL's error.
        case tls
        /// The deadline passed before the answer (unary call) or the response head (stream) was complete.
        case timedOut
        /// The connection closed or broke (reset, TCP keepalive or user timeout) before the answer was complete.
        case connectionClosed
        /// The server's bytes are not HTTP/1.1, or the body is larger than the caller allows.
        case malformedResponse
        /// The calling task was cancelled, or the stream closed by its owner.
        case cancelled
        /// The client was shut down.
        case shutDown
    }

    public let kind: Kind
    public let detail: String
    /// The error NIO or NIOSSL reported, when there was one.
    public let underlying: (any Error)?

    public init(_ kind: Kind, _ detail: String, underlying: (any Error)? = nil) {
        self.kind = kind
        self.detail = detail
        self.underlying = underlying
    }

    public var description: String { detail }

    /// A channel error as the kind it is; `connected` tells a failed connect from a broken connection.
    static func from(_ error: any Error, connected: Bool) -> HTTP1Error {
        if let known = error as? HTTP1Error { return known }
        let text = oneLine(String(describing: error))
        if let ssl = error as? NIOSSLError, case .uncleanShutdown = ssl {
            // A TLS connection that merely closes is an ordinary broken connection.
            return HTTP1Error(
                connected ? .connectionClosed : .notConnected,
                "the connection closed (\(text))",
                underlying: error
            )
        }
        if error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError {
            return HTTP1Error(.tls, text, underlying: error)
        }
        if error is HTTPParserError {
            return HTTP1Error(.malformedResponse, "not an HTTP/1.1 answer (\(text))", underlying: error)
        }
        return HTTP1Error(connected ? .connectionClosed : .notConnected, text, underlying: error)
    }
}

/// Error texts as one line (NIOSSL's error stacks span several).
func oneLine(_ text: String) -> String {
    text.split(whereSeparator: \.isNewline).joined(separator: " ")
}
