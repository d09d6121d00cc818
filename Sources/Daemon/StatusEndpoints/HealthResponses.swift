import Foundation
import NIOHTTP1
import Status

/// What the health server answers, as bytes: pure but for `status`'s reads, so every path is
/// unit-testable without a socket.
extension HealthServer {
    /// The whole HTTP/1.1 response for a request's bytes, decided by its request line.
    static func response(
        to request: [UInt8],
        readiness: Readiness.State,
        status: (any StatusEndpoints)? = nil
    ) -> [UInt8] {
        let line = String(
            decoding: request.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") },
            as: UTF8.self
        )
        let parts = line.split(separator: " ")
        guard parts.count == 3 else { return badRequest }
        return response(
            method: String(parts[0]),
            target: String(parts[1]),
            version: String(parts[2]),
            readiness: readiness,
            status: status
        )
    }

    /// The response to a parsed request line: what the server sends for the head NIO decoded.
    /// `keepAlive` (from `keepsAlive`) says `Connection: keep-alive` instead of `close`.
    static func response(
        method: String,
        target: String,
        version: String,
        readiness: Readiness.State,
        status: (any StatusEndpoints)? = nil,
        keepAlive: Bool = false
    ) -> [UInt8] {
        guard version.hasPrefix("HTTP/1.") else { return badRequest }
        guard method == "GET" || method == "HEAD" else {
            return render(405, "Method Not Allowed", "only GET and HEAD are served", head: false)
        }
        let headOnly = method == "HEAD"
        switch path(of: target) {
        case "/healthz":
            return render(200, "OK", "weftd is running", head: headOnly, keepAlive: keepAlive)
        case "/readyz":
            if readiness.isReady {
                return render(200, "OK", "weftd is ready: \(readiness.reason)", head: headOnly, keepAlive: keepAlive)
            }
            return render(
                503,
                "Service Unavailable",
                "weftd is not ready: \(readiness.reason)",
                head: headOnly,
                keepAlive: keepAlive
            )
        case StatusSocket.metricsPath where status != nil:
            return render(
                200,
                "OK",
                body: Array(status!.metrics().utf8),
                type: "text/plain; version=0.0.4; charset=utf-8",
                head: headOnly,
                keepAlive: keepAlive
            )
        case StatusSocket.routesPath where status != nil:
            return json(status!.routes(), readiness: readiness, head: headOnly, keepAlive: keepAlive)
        case StatusSocket.statsPath where status != nil:
            return json(status!.stats(), readiness: readiness, head: headOnly, keepAlive: keepAlive)
        default:
            let paths = status == nil ? "/healthz or /readyz" : "/healthz, /readyz, /metrics, /v1/routes or /v1/stats"
            return render(404, "Not Found", "no such path; try \(paths)", head: headOnly, keepAlive: keepAlive)
        }
    }

    /// Whether the connection stays open after answering `head`: the client asked (HTTP/1.1's
    /// default, 1.0 with `Connection: keep-alive`) and it is a GET or HEAD, whose answers never
    /// close it. Other methods are refused and closed, so their bodies need not be read past.
    static func keepsAlive(_ head: HTTPRequestHead) -> Bool {
        head.isKeepAlive && head.version.major == 1 && (head.method == .GET || head.method == .HEAD)
    }

    /// Whether answering `target` reads the status endpoints, and so is done off the event loop.
    static func readsStatus(_ target: String) -> Bool {
        [StatusSocket.metricsPath, StatusSocket.routesPath, StatusSocket.statsPath].contains(String(path(of: target)))
    }

    /// Also the answer to bytes NIO's HTTP parser rejects.
    static let badRequest = render(
        400,
        "Bad Request",
        "malformed request line; send e.g. GET /healthz HTTP/1.1",
        head: false
    )

    private static func path(of target: String) -> Substring {
        target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]
    }

    /// A report as sorted JSON, or 503 while there is no dataplane to report on.
    private static func json<Report: Encodable>(
        _ report: Report?,
        readiness: Readiness.State,
        head: Bool,
        keepAlive: Bool
    ) -> [UInt8] {
        guard let report else {
            return render(
                503,
                "Service Unavailable",
                "weftd has no dataplane yet: \(readiness.reason)",
                head: head,
                keepAlive: keepAlive
            )
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return render(
                200,
                "OK",
                body: try encoder.encode(report) + [UInt8(ascii: "\n")],
                type: "application/json",
                head: head,
                keepAlive: keepAlive
            )
        } catch {
            return render(
                500,
                "Internal Server Error",
                "cannot encode the report: \(error)",
                head: head,
                keepAlive: keepAlive
            )
        }
    }

    static func render(_ status: Int, _ phrase: String, _ line: String, head: Bool, keepAlive: Bool = false) -> [UInt8]
    {
        render(
            status,
            phrase,
            body: Array((line + "\n").utf8),
            type: "text/plain; charset=utf-8",
            head: head,
            keepAlive: keepAlive
        )
    }

    static func render<Body: Collection<UInt8>>(
        _ status: Int,
        _ phrase: String,
        body: Body,
        type: String,
        head: Bool,
        keepAlive: Bool = false
    ) -> [UInt8] {
        let connection = keepAlive ? "keep-alive" : "close"
        var bytes = Array(
            "HTTP/1.1 \(status) \(phrase)\r\nContent-Type: \(type)\r\nContent-Length: \(body.count)\r\nConnection: \(connection)\r\n\r\n"
                .utf8
        )
        if !head { bytes += body }
        return bytes
    }
}
