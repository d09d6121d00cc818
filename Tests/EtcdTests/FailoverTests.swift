import Foundation
import Synchronization
import TestSupport
import Testing

@testable import Etcd

#if canImport(Glibc)
import Glibc
import EtcdTestSupport
import Timing
#endif

@Suite(.enabled(if: TestEtcd.isAvailable, TestEtcd.skipMessage))
struct FailoverTests {
    @Test func aDeadFirstEndpointCostsOneFailoverThenCallsGoStraightToTheLiveOne() async throws {
        try await TestEtcd.with { etcd in
            let dead = "http://127.0.0.1:\(try freeLoopbackPort())"
            let client = try etcd.client(endpoints: [dead, etcd.endpoint])
            defer { Task { try? await client.shutdown() } }
            let revision = try await client.put("/f/a", "1")
            #expect(try await etcd.etcdctl("get", "/f/a", "--print-value-only") == "1\n")
            #expect(client.transport.preferredEndpoint == etcd.endpoint)
            #expect(try await client.get("/f/a").kvs.map(\.value) == ["1"])
            let watch = try await client.watch(prefix: "/f/", fromRevision: revision)
            let events = try await within(seconds: 20) { try await collect(watch, events: 1).flatMap { $0 } }
            #expect(events.map(\.kv.key) == ["/f/a"])
            watch.cancel()
        }
    }

    @Test func aHungFirstEndpointIsLeftAfterTheRequestTimeoutButATransactionIsNotResent() async throws {
        try await TestEtcd.with { etcd in
            // Accepts connections and never answers: the request may have reached etcd.
            let hung = try TestListener(closesConnections: false)
            defer { hung.stop() }
            // 2 s, not less: the put to the live endpoint must finish within it, and in the full
            // suite's first seconds 400 ms was not enough (the put timed out there too, and the
            // next pass opened a third connection to the hung one).
            let client = try etcd.client(endpoints: [hung.endpoint, etcd.endpoint]) { $0.requestTimeout = .seconds(2) }
            defer { Task { try? await client.shutdown() } }

            do throws(EtcdError) {
                _ = try await client.transaction(
                    compare: [.absent("/f/t")],
                    success: [.put(key: "/f/t", value: "1", lease: nil)]
                )
                Issue.record("the transaction went to the live endpoint after a timeout")
            } catch {
                #expect(error.reason == .timedOut(seconds: 2))
                #expect(error.endpoint == hung.endpoint)
            }
            #expect(hung.connections == 1)
            #expect(try await etcd.etcdctl("get", "/f/t") == "")

            // A put is idempotent: after the timeout it goes on to the live endpoint...
            let started = ContinuousClock.now
            try await client.put("/f/p", "1")
            #expect(ContinuousClock.now - started >= .seconds(2))
            #expect(hung.connections == 2)
            // ...which later calls try first: the hung one sees no new connection.
            try await client.put("/f/p", "2")
            #expect(hung.connections == 2)
            #expect(try await etcd.etcdctl("get", "/f/p", "--print-value-only") == "2\n")
        }
    }

    @Test func allEndpointsDeadIsUnreachableAfterABoundedNumberOfPassesWithBackoff() async throws {
        // One endpoint refuses outright (closed port); one accepts and hangs up at once, and counts.
        let closing = try TestListener(closesConnections: true)
        defer { closing.stop() }
        let refused = "http://127.0.0.1:\(try freeLoopbackPort())"
        var configuration = EtcdClient.Configuration()
        configuration.passes = 4
        configuration.backoff = Backoff(initial: .milliseconds(50), maximum: .milliseconds(150), jitter: .full)
        // A connection closed before the request went out can leave the request waiting for a
        // connection until this; it bounds each attempt.
        configuration.connectTimeout = .seconds(1)
        let client = try EtcdClient(endpoints: [refused, closing.endpoint], configuration: configuration)
        defer { Task { try? await client.shutdown() } }

        let started = ContinuousClock.now
        do throws(EtcdError) {
            _ = try await client.get("/f/a")
            Issue.record("a read with every endpoint dead succeeded")
        } catch {
            guard case .unreachable(let attempts, let lastError) = error.reason else {
                Issue.record("expected unreachable, got \(error)")
                return
            }
            #expect(attempts == 8)
            #expect(lastError.contains(closing.endpoint) || lastError.contains(refused))
            #expect(error.endpoint == "\(refused),\(closing.endpoint)")
            #expect(error.description.contains("check that etcd runs and --etcd-endpoints lists its client URLs"))
        }
        let elapsed = ContinuousClock.now - started
        // One connection per pass, not a hot loop. The backoff ceilings themselves are checked
        // exactly below; here the clock only proves the passes end: the most they can wait is
        // 50 + 100 + 150 ms of backoff plus one connect timeout per attempt at the listener, and
        // ten times that tolerates a loaded machine.
        #expect(closing.connections == 4)
        #expect(elapsed < .milliseconds(300 + 4 * 1000) * 10)
    }

    @Test func backoffCeilingsDoubleUpToTheMaximumAndDelaysStayBelowThem() {
        let backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(2), jitter: .full)
        let ceilings = (0..<7).map { backoff.ceiling(attempt: $0) }
        #expect(ceilings == [100, 200, 400, 800, 1600, 2000, 2000].map { Duration.milliseconds($0) })
        #expect(backoff.ceiling(attempt: 10_000) == .seconds(2))
        var generator = SplitMix64(seed: 7)
        var total = Duration.zero
        for _ in 0..<1000 {
            let delay = backoff.delay(attempt: 2, using: &generator)
            #expect(delay >= .zero && delay <= .milliseconds(400))
            total += delay
        }
        // Full jitter: uniform over [0, 400 ms], so the mean is near 200 ms.
        #expect(abs((total / 1000 - .milliseconds(200)) / .milliseconds(1)) < 20)
    }
}

/// A loopback TCP listener standing in for a broken etcd: on each connection it writes `reply` (if
/// any), then hangs up or holds the connection open in silence; it counts connections.
final class TestListener: Sendable {
    let endpoint: String
    private let socketDescriptor: Int32
    private let state = Mutex<(connections: Int, held: [Int32])>((0, []))

    var connections: Int { state.withLock { $0.connections } }

    init(closesConnections: Bool, reply: String? = nil) throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw TestEtcdFailure("socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let listening = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                bind(descriptor, generic, length) == 0 && getsockname(descriptor, generic, &length) == 0
                    && listen(descriptor, 16) == 0
            }
        }
        guard listening else {
            close(descriptor)
            throw TestEtcdFailure("listen on 127.0.0.1: errno \(errno)")
        }
        socketDescriptor = descriptor
        endpoint = "http://127.0.0.1:\(UInt16(bigEndian: address.sin_port))"
        // The thread holds the listener until stop() makes accept fail.
        Thread.detachNewThread { [self] in
            while true {
                let connection = accept(descriptor, nil, nil)
                guard connection >= 0 else { return }
                if let reply {
                    Self.readRequest(connection)
                    _ = Array(reply.utf8).withUnsafeBytes {
                        send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
                    }
                }
                self.state.withLock { state in
                    state.connections += 1
                    if closesConnections { close(connection) } else { state.held.append(connection) }
                }
            }
        }
    }

    /// Reads one HTTP request (head, then Content-Length bytes of body) so the reply answers it
    /// rather than racing it. A watch's request stream stays open (its length is never reached):
    /// its first bytes are enough.
    private static func readRequest(_ connection: Int32) {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let separator = Array("\r\n\r\n".utf8)
        while true {
            if let end = (0..<max(received.count - 3, 0)).first(where: { Array(received[$0..<$0 + 4]) == separator }) {
                let head = String(decoding: received[..<end], as: UTF8.self).lowercased()
                let length =
                    head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                    .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                let streaming = length > 1 << 30
                if received.count >= end + 4 + (streaming ? 1 : length) { return }
            }
            let count = buffer.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return }
            received += buffer[..<count]
        }
    }

    /// Stops accepting (shutdown wakes the blocked accept) and closes every held connection.
    func stop() {
        shutdown(socketDescriptor, Int32(SHUT_RDWR))
        close(socketDescriptor)
        state.withLock { state in
            for connection in state.held { close(connection) }
            state.held = []
        }
    }
}
