import Addressing
import Foundation
import Glibc
import Status
import TestThreads
import Testing

@testable import Daemon

/// Several requests on one connection: kept open as HTTP/1.1 clients expect, answered in order,
/// closed when the client or the request says so, and never holding up another client while idle.
@Suite(.ownThread, .serialized) struct HealthServerKeepAliveTests {
    static let loopback = IPv4Address(127, 0, 0, 1)

    static func request(
        _ method: String,
        _ target: String,
        _ version: String = "HTTP/1.1",
        close: Bool = false
    ) -> String {
        "\(method) \(target) \(version)\r\nHost: weftd\r\n" + (close ? "Connection: close\r\n" : "") + "\r\n"
    }

    @Test(arguments: [false, true])
    func answersSeveralRequestsOnOneConnection(unix: Bool) throws {
        let directory = try StatusServerTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/weftd.sock"
        let status = FixedStatus(routes: FixedStatus.sampleRoutes, stats: nil)
        let server =
            unix
            ? try HealthServer(socketPath: path, readiness: Readiness(), status: status)
            : try HealthServer(address: Self.loopback, port: 0, readiness: Readiness(), status: status)
        server.start()
        defer { server.stop() }
        let fd = unix ? try TestSockets.connect(path: path) : try TestSockets.connect(port: server.port)
        defer { close(fd) }

        let alive = try #require(TestSockets.ask(fd, Self.request("GET", "/healthz")))
        #expect(
            alive.status == 200 && alive.body == "weftd is running\n" && alive.headers["connection"] == "keep-alive"
        )
        let waiting = try #require(TestSockets.ask(fd, Self.request("GET", "/readyz")))
        #expect(waiting.status == 503 && waiting.headers["connection"] == "keep-alive")
        // Rendered off the event loop, still on the same connection.
        let routes = try #require(TestSockets.ask(fd, Self.request("GET", StatusSocket.routesPath)))
        #expect(try JSONDecoder().decode(RoutesReport.self, from: Data(routes.body.utf8)) == FixedStatus.sampleRoutes)
        let head = try #require(TestSockets.ask(fd, Self.request("HEAD", "/healthz")))
        #expect(head.status == 200 && head.body.isEmpty && head.headers["content-length"] == "17")
        let missing = try #require(TestSockets.ask(fd, Self.request("GET", "/nowhere")))
        #expect(missing.status == 404 && missing.headers["connection"] == "keep-alive")
        #expect(!TestSockets.closedByServer(fd, within: 0))

        let last = try #require(TestSockets.ask(fd, Self.request("GET", "/healthz", close: true)))
        #expect(last.status == 200 && last.headers["connection"] == "close")
        #expect(TestSockets.closedByServer(fd, within: 20), "Connection: close left the connection open")
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() throws {
        let server = try HealthServer(
            address: Self.loopback,
            port: 0,
            readiness: Readiness(),
            status: FixedStatus(routes: FixedStatus.sampleRoutes, stats: nil)
        )
        server.start()
        defer { server.stop() }
        let fd = try TestSockets.connect(port: server.port)
        defer { close(fd) }
        // A status read (off the loop) first: the quick answers behind it must not overtake it.
        let burst =
            Self.request("GET", StatusSocket.routesPath) + Self.request("GET", "/readyz")
            + Self.request("HEAD", "/healthz") + Self.request("GET", "/nowhere", close: true)
        #expect(HealthServerLimitsTests.send(fd, burst))
        let text = String(decoding: try #require(TestSockets.readUntilClosed(fd, within: 20)), as: UTF8.self)
        let statuses = text.components(separatedBy: "HTTP/1.1 ").dropFirst().map { String($0.prefix(3)) }
        #expect(statuses == ["200", "503", "200", "404"], "\(text)")
        #expect(text.contains("\"generation\":4"))
    }

    @Test func aClientThatShutsItsSideGetsWhatItAskedThenTheClose() throws {
        let server = try HealthServer(address: Self.loopback, port: 0, readiness: Readiness())
        server.start()
        defer { server.stop() }
        let fd = try TestSockets.connect(port: server.port)
        defer { close(fd) }
        #expect(HealthServerLimitsTests.send(fd, Self.request("GET", "/healthz") + Self.request("GET", "/readyz")))
        shutdown(fd, Int32(SHUT_WR))
        let text = String(decoding: try #require(TestSockets.readUntilClosed(fd, within: 20)), as: UTF8.self)
        #expect(
            text.components(separatedBy: "HTTP/1.1 ").dropFirst().map { String($0.prefix(3)) } == ["200", "503"],
            "\(text)"
        )
    }

    @Test func tooManyPipelinedRequestsCloseTheConnection() throws {
        let held = HeldStatus()
        let server = try HealthServer(address: Self.loopback, port: 0, readiness: Readiness(), status: held)
        server.start()
        defer { server.stop() }
        let fd = try TestSockets.connect(port: server.port)
        defer { close(fd) }
        // The first scrape is held, so the rest queue behind it until there are too many.
        let burst = String(
            repeating: Self.request("GET", StatusSocket.metricsPath),
            count: HealthConnection.pipelineLimit + 4
        )
        #expect(HealthServerLimitsTests.send(fd, burst))
        defer { held.release() }
        try #require(held.waitEntered(seconds: 20))
        #expect(TestSockets.closedByServer(fd, within: 20), "a queue beyond the pipeline limit was kept")
        #expect(try TestSockets.get(port: server.port, "/healthz").status == 200)
    }

    @Test func refusedMethodsMalformedRequestsAndHTTP10Close() throws {
        let server = try HealthServer(address: Self.loopback, port: 0, readiness: Readiness())
        server.start()
        defer { server.stop() }
        let cases: [(String, Int)] = [
            (Self.request("POST", "/healthz"), 405), ("hello\r\n\r\n", 400),
            (Self.request("GET", "/healthz", "HTTP/1.0"), 200),
        ]
        for (request, expected) in cases {
            let fd = try TestSockets.connect(port: server.port)
            defer { close(fd) }
            #expect(TestSockets.ask(fd, Self.request("GET", "/healthz"))?.status == 200)
            let answer = try #require(TestSockets.ask(fd, request), "\(request)")
            #expect(answer.status == expected && answer.headers["connection"] == "close")
            #expect(TestSockets.closedByServer(fd, within: 20), "\(request) left the connection open")
        }

        // HTTP/1.0 that asks for keep-alive gets it.
        let fd = try TestSockets.connect(port: server.port)
        defer { close(fd) }
        let ask = "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
        #expect(TestSockets.ask(fd, ask)?.headers["connection"] == "keep-alive")
        #expect(TestSockets.ask(fd, ask)?.status == 200)
    }

    @Test func anIdleKeptAliveConnectionHoldsNobodyUpAndIsClosedAtTheDeadline() throws {
        let server = try HealthServer(
            address: Self.loopback,
            port: 0,
            readiness: Readiness(),
            limits: HealthServer.Limits(requestHead: .seconds(1))
        )
        server.start()
        defer { server.stop() }
        let idle = try TestSockets.connect(port: server.port)
        defer { close(idle) }
        #expect(TestSockets.ask(idle, Self.request("GET", "/healthz"))?.status == 200)
        // Half of the next head, then nothing.
        #expect(HealthServerLimitsTests.send(idle, "GET /rea"))
        #expect(try TestSockets.get(port: server.port, "/healthz").status == 200)
        #expect(TestSockets.closedByServer(idle, within: 20), "an idle kept-alive connection outlived its deadline")
    }

    @Test func atTheCapAnIdleKeptAliveConnectionMakesRoom() throws {
        let server = try HealthServer(
            address: Self.loopback,
            port: 0,
            readiness: Readiness(),
            limits: HealthServer.Limits(connections: 2, requestHead: .seconds(60))
        )
        server.start()
        defer { server.stop() }
        let kept = try TestSockets.connect(port: server.port)
        defer { close(kept) }
        #expect(TestSockets.ask(kept, Self.request("GET", "/healthz"))?.status == 200)
        let silent = try TestSockets.connect(port: server.port)
        defer { close(silent) }
        // Both wait for a head; the probe's room comes from the older one, the kept-alive connection.
        #expect(try TestSockets.get(port: server.port, "/healthz").status == 200)
        #expect(TestSockets.closedByServer(kept, within: 20), "the idle kept-alive connection was not displaced")
        #expect(!TestSockets.closedByServer(silent, within: 0.2))
    }
}
