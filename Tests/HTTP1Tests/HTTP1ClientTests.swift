import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

@testable import HTTP1

#if canImport(Glibc)
import Glibc
import TestSupport
#endif

struct HTTP1ClientTests {
    static func get(
        _ client: HTTP1Client,
        _ server: TestServer,
        _ path: String,
        timeout: Duration = .seconds(10)
    ) async throws(HTTP1Error) -> HTTP1Response {
        try await client.execute(HTTP1Request(method: .GET, origin: Origin(server.url)!, path: path), timeout: timeout)
    }

    @Test func twoSequentialCallsReuseOneConnection() async throws {
        let server = try await TestServer()
        let client = try HTTP1Client()
        let first = try await Self.get(client, server, "/hello")
        let second = try await Self.get(client, server, "/hello")
        #expect(first.status == .ok && String(decoding: first.body, as: UTF8.self) == "hello")
        #expect(String(decoding: second.body, as: UTF8.self) == "hello")
        #expect(server.connections == 1)
        #expect(client.openConnections == 1)
        await client.shutdown()
        #expect(client.openConnections == 0)
        #expect(await eventually { server.open == 0 })
        await server.stop()
    }

    @Test func connectionCloseIsHonouredAndNotReused() async throws {
        let server = try await TestServer()
        let client = try HTTP1Client()
        for _ in 0..<2 {
            #expect(String(decoding: try await Self.get(client, server, "/close").body, as: UTF8.self) == "bye")
        }
        #expect(server.connections == 2)
        #expect(await eventually { client.openConnections == 0 })
        await client.shutdown()
        await server.stop()
    }

    @Test func anIdleConnectionTheServerClosedIsDroppedAndTheNextCallConnectsAgain() async throws {
        let server = try await TestServer()
        let client = try HTTP1Client()
        _ = try await Self.get(client, server, "/hello")
        #expect(client.openConnections == 1)
        await server.closeConnections()
        // The pool notices the close by itself, not only when the next call finds the connection dead.
        #expect(await eventually { client.openConnections == 0 })
        #expect(String(decoding: try await Self.get(client, server, "/hello").body, as: UTF8.self) == "hello")
        #expect(server.connections == 2)
        await client.shutdown()
        await server.stop()
    }

    @Test func idleConnectionsAreCappedPerOrigin() async throws {
        let server = try await TestServer()
        var configuration = HTTP1Client.Configuration()
        configuration.maximumIdleConnections = 1
        let client = try HTTP1Client(configuration: configuration)
        // Three at once need three connections; one is kept afterwards.
        async let a = Self.get(client, server, "/chunked")
        async let b = Self.get(client, server, "/chunked")
        async let c = Self.get(client, server, "/chunked")
        let bodies = try await [a, b, c].map { String(decoding: $0.body, as: UTF8.self) }
        #expect(bodies == Array(repeating: "part0;part1;part2;", count: 3))
        #expect(server.connections == 3)
        #expect(await eventually { client.openConnections == 1 && server.open == 1 })
        await client.shutdown()
        await server.stop()
    }

    @Test func aPostBodyGoesWithItsLength() async throws {
        let server = try await TestServer()
        let client = try HTTP1Client()
        let request = HTTP1Request(
            method: .POST,
            origin: Origin(server.url)!,
            path: "/echo",
            headers: ["Authorization": "Bearer t"],
            body: .bytes(Array("{\"k\":1}".utf8))
        )
        #expect(
            String(decoding: try await client.execute(request, timeout: .seconds(10)).body, as: UTF8.self)
                == "{\"k\":1}"
        )
        await client.shutdown()
        await server.stop()
    }

    @Test func theDeadlineCoversTheHeadAndTheWholeBody() async throws {
        let server = try await TestServer()
        let client = try HTTP1Client()
        for path in ["/silent", "/partial"] {
            let started = ContinuousClock.now
            do throws(HTTP1Error) {
                _ = try await Self.get(client, server, path, timeout: .milliseconds(300))
                Issue.record("\(path) answered")
            } catch {
                #expect(error.kind == .timedOut, "\(path): \(error)")
                #expect(error.description == "no complete answer from \(server.url) within 0.3 seconds")
            }
            let waited = ContinuousClock.now - started
            // Not before the deadline; the upper bound only fails a hang. The full suite's first
            // seconds, when a thousand tests start on two threads, delayed the report by 9 s once.
            #expect(waited >= .milliseconds(300) && waited < .seconds(30), "\(path): \(waited)")
        }
        // A timed-out connection is closed, never reused.
        #expect(await eventually { client.openConnections == 0 && server.open == 0 })
        await client.shutdown()
        await server.stop()
    }

    @Test func aRefusedConnectionIsNotConnected() async throws {
        let server = try await TestServer()
        let url = server.url
        await server.stop()
        let client = try HTTP1Client()
        do throws(HTTP1Error) {
            _ = try await client.execute(
                HTTP1Request(method: .GET, origin: Origin(url)!, path: "/"),
                timeout: .seconds(5)
            )
            Issue.record("a closed port answered")
        } catch {
            #expect(error.kind == .notConnected)
            #expect(error.description.hasPrefix("cannot connect to \(url) ("))
            #expect(!error.description.contains("\n"))
        }
        await client.shutdown()
    }

    @Test func aCancelledCallStopsWaitingAndClosesItsConnection() async throws {
        let server = try await TestServer()
        let client = try HTTP1Client()
        let call = Task { () async -> HTTP1Error? in
            do throws(HTTP1Error) {
                _ = try await Self.get(client, server, "/silent", timeout: .seconds(60))
                return nil
            } catch {
                return error
            }
        }
        #expect(await eventually { server.connections == 1 })
        try await Task.sleep(for: .milliseconds(100))
        let cancelled = ContinuousClock.now
        call.cancel()
        #expect(await call.value?.kind == .cancelled)
        #expect(ContinuousClock.now - cancelled < .seconds(5))
        #expect(await eventually { client.openConnections == 0 && server.open == 0 })
        await client.shutdown()
        await server.stop()
    }

    @Test func aChunkedBodyStreamsPieceByPiece() async throws {
        let server = try await TestServer()
        let client = try HTTP1Client()
        let stream = try await client.openStream(
            HTTP1Request(method: .GET, origin: Origin(server.url)!, path: "/chunked"),
            timeout: .seconds(10)
        )
        #expect(stream.status == .ok)
        var pieces: [String] = []
        for try await buffer in stream { pieces.append(String(buffer: buffer)) }
        // Each chunk is read as it comes (100 ms apart), not after the end.
        #expect(pieces == ["part0;", "part1;", "part2;"])
        // A stream's connection is its own and closes with its end.
        #expect(await eventually { client.openConnections == 0 && server.open == 0 })
        await client.shutdown()
        await server.stop()
    }

    @Test func aStreamedRequestBodyFlowsWhileTheAnswerStreams() async throws {
        let server = try await TestServer()
        let client = try HTTP1Client()
        for length: Int64? in [nil, 1 << 40] {
            let (parts, requests) = AsyncStream<ByteBuffer>.makeStream()
            requests.yield(ByteBuffer(string: "first"))
            let stream = try await client.openStream(
                HTTP1Request(
                    method: .POST,
                    origin: Origin(server.url)!,
                    path: "/stream",
                    body: .stream(parts, length: length)
                ),
                timeout: .seconds(10)
            )
            var iterator = stream.makeAsyncIterator()
            #expect(try await iterator.next().map { String(buffer: $0) } == "first")
            requests.yield(ByteBuffer(string: "second"))
            #expect(try await iterator.next().map { String(buffer: $0) } == "second")
            stream.close()
            requests.finish()
            #expect(
                await eventually { client.openConnections == 0 && server.open == 0 },
                "length \(String(describing: length))"
            )
        }
        await client.shutdown()
        await server.stop()
    }

    @Test func aStreamWithoutAHeadTimesOutAndADroppedStreamClosesItsConnection() async throws {
        let server = try await TestServer()
        let client = try HTTP1Client()
        do throws(HTTP1Error) {
            _ = try await client.openStream(
                HTTP1Request(method: .GET, origin: Origin(server.url)!, path: "/silent"),
                timeout: .milliseconds(300)
            )
            Issue.record("a silent server gave a head")
        } catch {
            #expect(error.kind == .timedOut)
        }
        #expect(await eventually { client.openConnections == 0 })
        do {
            let (parts, requests) = AsyncStream<ByteBuffer>.makeStream()
            defer { requests.finish() }
            let stream = try await client.openStream(
                HTTP1Request(
                    method: .POST,
                    origin: Origin(server.url)!,
                    path: "/stream",
                    body: .stream(parts, length: nil)
                ),
                timeout: .seconds(10)
            )
            #expect(client.openConnections == 1)
            _ = stream
        }
        #expect(await eventually { client.openConnections == 0 && server.open == 0 })
        await client.shutdown()
        await server.stop()
    }

    @Test func collectingAStreamsBodyHasADeadlineToo() async throws {
        let server = try await TestServer()
        let client = try HTTP1Client()
        let stream = try await client.openStream(
            HTTP1Request(method: .GET, origin: Origin(server.url)!, path: "/partial"),
            timeout: .seconds(10)
        )
        do throws(HTTP1Error) {
            _ = try await stream.collect(upTo: 1 << 20, timeout: .milliseconds(300))
            Issue.record("half a body was collected")
        } catch {
            #expect(error.kind == .timedOut, "\(error)")
        }
        let whole = try await client.openStream(
            HTTP1Request(method: .GET, origin: Origin(server.url)!, path: "/chunked"),
            timeout: .seconds(10)
        )
        #expect(
            String(decoding: try await whole.collect(upTo: 1 << 20, timeout: .seconds(10)), as: UTF8.self)
                == "part0;part1;part2;"
        )
        #expect(await eventually { client.openConnections == 0 && server.open == 0 })
        await client.shutdown()
        await server.stop()
    }

    @Test func shutdownEndsAnOpenStreamAndRefusesLaterCalls() async throws {
        let server = try await TestServer()
        let client = try HTTP1Client()
        let (parts, requests) = AsyncStream<ByteBuffer>.makeStream()
        defer { requests.finish() }
        let stream = try await client.openStream(
            HTTP1Request(
                method: .POST,
                origin: Origin(server.url)!,
                path: "/stream",
                body: .stream(parts, length: nil)
            ),
            timeout: .seconds(10)
        )
        let reader = Task { () async -> HTTP1Error? in
            do throws(HTTP1Error) {
                for try await _ in stream {}
                return nil
            } catch {
                return error
            }
        }
        try await Task.sleep(for: .milliseconds(100))
        await client.shutdown()
        #expect(await reader.value?.kind == .shutDown)
        do throws(HTTP1Error) {
            _ = try await Self.get(client, server, "/hello")
            Issue.record("a shut-down client made a call")
        } catch {
            #expect(error.kind == .shutDown)
        }
        #expect(await eventually { server.open == 0 })
        await server.stop()
    }

    /// The kernel's view of a pooled connection's socket (getsockopt through the channel).
    @Test func everyConnectionHasKeepaliveUserTimeoutAndNoDelay() async throws {
        let server = try await TestServer()
        let client = try HTTP1Client()
        _ = try await Self.get(client, server, "/hello")
        let connection = try #require(client.pool.takeIdle(Origin(server.url)!))
        func option(_ level: Int32, _ name: Int32) async throws -> Int {
            try await connection.channel.getOption(
                ChannelOptions.Types.SocketOption(level: SocketOptionLevel(level), name: name)
            ).get()
        }
        #expect(try await option(SOL_SOCKET, SO_KEEPALIVE) == 1)
        #expect(try await option(Int32(IPPROTO_TCP), TCP_KEEPIDLE) == 10)
        #expect(try await option(Int32(IPPROTO_TCP), TCP_KEEPINTVL) == 5)
        #expect(try await option(Int32(IPPROTO_TCP), TCP_KEEPCNT) == 3)
        #expect(try await option(Int32(IPPROTO_TCP), TCP_USER_TIMEOUT) == 30_000)
        #expect(try await option(Int32(IPPROTO_TCP), TCP_NODELAY) == 1)
        #expect(TCPKeepalive().bound == .seconds(35))
        connection.close(HTTP1Error(.cancelled, "test done"))
        await client.shutdown()
        await server.stop()
    }
}
