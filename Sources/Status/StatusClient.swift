import Foundation
import Glibc
import SystemCalls

/// GETs weftd's status endpoints over its Unix socket: one HTTP/1.0 request per connection, read
/// until the server closes, as weftd does after answering a request that did not ask for keep-alive.
public struct StatusClient: Sendable {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public enum Reason: Sendable, Equatable {
            /// socket/connect failed: nothing listens there (or we may not connect).
            case unreachable(errno: Int32)
            /// Connected, but the exchange broke or the answer was not what weftd sends.
            case exchange(String)
        }
        public let path: String
        public let reason: Reason

        public var description: String {
            switch reason {
            case .unreachable(let code):
                "cannot reach weftd at \(path): \(String(cString: strerror(code))); is weftd running? (its --status-socket)"
            case .exchange(let problem):
                "weftd at \(path) did not answer as expected: \(problem)"
            }
        }
    }

    public let path: String
    /// Far above any /v1/routes of a large cluster; a longer reply is not weftd's.
    static let replyLimit = 64 << 20
    /// Guards against a server that accepts and never answers; weftd answers in milliseconds.
    public var timeout: Duration = .seconds(10)

    public init(path: String) {
        self.path = path
    }

    public func routes() throws(Failure) -> RoutesReport {
        try decode(RoutesReport.self, from: get(StatusSocket.routesPath))
    }

    public func stats() throws(Failure) -> StatsReport {
        try decode(StatsReport.self, from: get(StatusSocket.statsPath))
    }

    /// The body of a 200 answer to GET `target`.
    public func get(_ target: String) throws(Failure) -> [UInt8] {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(path: path, reason: .unreachable(errno: errno)) }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw Failure(path: path, reason: .unreachable(errno: ENAMETOOLONG))
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes + [0]) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else { throw Failure(path: path, reason: .unreachable(errno: errno)) }
        let seconds = timeout.components.seconds
        var limit = timeval(tv_sec: Int(seconds), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))

        let request = Array("GET \(target) HTTP/1.0\r\nHost: weftd\r\n\r\n".utf8)
        do {
            try SystemCall.sendAll(fd, request)
        } catch {
            throw Failure(path: path, reason: .exchange("send failed: \(error.reason)"))
        }
        let reply: [UInt8]?
        do {
            reply = try SystemCall.readAll(fd, limit: Self.replyLimit)
        } catch {
            throw Failure(path: path, reason: .exchange("receive failed: \(error.reason)"))
        }
        guard let reply else {
            throw Failure(path: path, reason: .exchange("the reply is larger than \(Self.replyLimit >> 20) MiB"))
        }
        return try Self.body(of: reply, path: path, target: target)
    }

    /// The body of a raw HTTP/1.x answer, or why it is not a 200.
    static func body(of reply: [UInt8], path: String, target: String) throws(Failure) -> [UInt8] {
        let separator = Array("\r\n\r\n".utf8)
        guard let end = reply.firstRange(of: separator) else {
            throw Failure(
                path: path,
                reason: .exchange(
                    reply.isEmpty ? "the connection closed without an answer" : "no HTTP header in the answer"
                )
            )
        }
        let statusLine = String(decoding: reply[..<end.lowerBound].prefix { $0 != UInt8(ascii: "\r") }, as: UTF8.self)
        let body = Array(reply[end.upperBound...])
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw Failure(path: path, reason: .exchange("malformed status line \"\(statusLine)\""))
        }
        guard status == 200 else {
            let text = String(decoding: body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw Failure(path: path, reason: .exchange("GET \(target) answered \(status): \(text)"))
        }
        return body
    }

    private func decode<Report: Decodable>(_ type: Report.Type, from body: [UInt8]) throws(Failure) -> Report {
        do {
            return try JSONDecoder().decode(type, from: Data(body))
        } catch {
            throw Failure(
                path: path,
                reason: .exchange("the answer is not a \(type) (\(error)); are weft and weftd the same version?")
            )
        }
    }
}
