import Addressing
import Dispatch
import Foundation
import Glibc
import Status
import Synchronization
import TestThreads
import Testing

@testable import Daemon

/// A status whose /metrics waits until released: holds a connection in the answering state.
final class HeldStatus: StatusEndpoints {
    private let entered = DispatchSemaphore(value: 0)
    private let gate = DispatchSemaphore(value: 0)

    func routes() -> RoutesReport? { nil }
    func stats() -> StatsReport? { nil }
    func metrics() -> String {
        entered.signal()
        gate.wait()
        gate.signal()  // released for good
        return "held\n"
    }

    /// Whether a /metrics render has started within `seconds`.
    func waitEntered(seconds: Int) -> Bool { entered.wait(timeout: .now() + .seconds(seconds)) == .success }
    func release() { gate.signal() }
}

/// Concurrency, deadlines, the connection cap and descriptors: real sockets, no root. Serialized,
/// so the descriptor count is not disturbed by this suite's own hundreds of connections.
@Suite(.ownThread, .serialized) struct HealthServerLimitsTests {
    static let loopback = IPv4Address(127, 0, 0, 1)
    /// Deadlines long enough that no connection here is closed by one unless a test waits for it.
    static let patient = HealthServer.Limits(requestHead: .seconds(60))

    static func send(_ fd: Int32, _ text: String) -> Bool {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }

    @Test func aSlowLorisDoesNotHoldProbes() throws {
        let server = try HealthServer(address: Self.loopback, port: 0, readiness: Readiness(), limits: Self.patient)
        server.start()
        defer { server.stop() }
        let loris = try TestSockets.connect(port: server.port)
        defer { close(loris) }
        for byte in "GET " {
            #expect(Self.send(loris, String(byte)))
            #expect(try TestSockets.get(port: server.port, "/healthz").status == 200)
            #expect(try TestSockets.get(port: server.port, "/readyz").status == 503)
            // Answered while the loris is still sending its head: nothing waited for it.
            #expect(!TestSockets.closedByServer(loris, within: 0), "the loris was closed before the probe was answered")
            Thread.sleep(forTimeInterval: 1.5)
        }
    }

    @Test func aClientThatSendsNothingOrDribblesIsClosedAtTheDeadline() throws {
        let limits = HealthServer.Limits(requestHead: .seconds(1))
        let server = try HealthServer(address: Self.loopback, port: 0, readiness: Readiness(), limits: limits)
        server.start()
        defer { server.stop() }

        let silent = try TestSockets.connect(port: server.port)
        defer { close(silent) }
        let start = ContinuousClock.now
        #expect(TestSockets.closedByServer(silent, within: 20), "a silent client was never closed")
        #expect(ContinuousClock.now - start > .milliseconds(900), "closed before its deadline")

        // The deadline counts from accept, not from the last byte.
        let dribbler = try TestSockets.connect(port: server.port)
        defer { close(dribbler) }
        var sent = 0
        var closed = false
        for byte in "GET /healthz HTTP/1.1\r\nHost: a-very-slow-client.example\r\n" {
            if TestSockets.closedByServer(dribbler, within: 0.3) {
                closed = true
                break
            }
            guard Self.send(dribbler, String(byte)) else { break }
            sent += 1
        }
        #expect(
            closed || TestSockets.closedByServer(dribbler, within: 20),
            "a client dribbling its head outlived the deadline"
        )
        #expect(sent >= 2)
    }

    @Test func twoHundredIdleConnectionsDoNotDelayAProbe() throws {
        let server = try HealthServer(address: Self.loopback, port: 0, readiness: Readiness(), limits: Self.patient)
        server.start()
        var idle: [Int32] = []
        defer { for descriptor in idle { close(descriptor) } }
        for _ in 0..<200 { idle.append(try TestSockets.connect(port: server.port)) }
        // The 64 newest are held; the 136 before them were displaced, oldest first.
        #expect(TestSockets.notClosedByServer(idle[..<136], within: 20).isEmpty)
        #expect(TestSockets.notClosedByServer(idle[136...], within: 0).count == 64)

        #expect(try TestSockets.get(port: server.port, "/healthz").status == 200)
        #expect(
            TestSockets.closedByServer(idle[136], within: 20),
            "the probe's room came from the oldest idle connection"
        )
        #expect(TestSockets.notClosedByServer(idle[137...], within: 0).count == 63)

        server.stop()
        #expect(TestSockets.notClosedByServer(idle[137...], within: 20).isEmpty, "stop left connections open")
    }

    @Test func atTheCapIdleConnectionsMakeRoomAndAnsweringOnesDoNot() throws {
        let server = try HealthServer(
            address: Self.loopback,
            port: 0,
            readiness: Readiness(),
            limits: HealthServer.Limits(connections: 4, requestHead: .seconds(60))
        )
        server.start()
        defer { server.stop() }
        var idle: [Int32] = []
        defer { for descriptor in idle { close(descriptor) } }
        for _ in 0..<6 { idle.append(try TestSockets.connect(port: server.port)) }
        #expect(TestSockets.closedByServer(idle[0], within: 20) && TestSockets.closedByServer(idle[1], within: 20))
        #expect(TestSockets.notClosedByServer(idle[2...], within: 0.2).count == 4)
        #expect(try TestSockets.get(port: server.port, "/healthz").status == 200)
        #expect(TestSockets.closedByServer(idle[2], within: 20))

        // One connection allowed and it is being answered: the next is closed at once, unanswered.
        let held = HeldStatus()
        let busy = try HealthServer(
            address: Self.loopback,
            port: 0,
            readiness: Readiness(),
            status: held,
            limits: HealthServer.Limits(connections: 1, requestHead: .seconds(60))
        )
        busy.start()
        defer { busy.stop() }
        let scrape = try TestSockets.connect(port: busy.port)
        defer { close(scrape) }
        #expect(Self.send(scrape, "GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n"))
        defer { held.release() }
        try #require(held.waitEntered(seconds: 20))
        let refused = try TestSockets.connect(port: busy.port)
        defer { close(refused) }
        #expect(TestSockets.closedByServer(refused, within: 20), "a connection beyond the cap was kept waiting")
        held.release()
        // The scrape is answered and its connection closed before the one slot is free again.
        let answer = TestSockets.readUntilClosed(scrape, within: 20)
        #expect(answer.map { String(decoding: $0, as: UTF8.self).hasPrefix("HTTP/1.1 200") } == true)
        #expect(try TestSockets.get(port: busy.port, "/healthz").status == 200)
    }

    @Test func unixSocketServesConcurrentlyAndStopRemovesOnlyItsOwnFile() throws {
        let directory = try StatusServerTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/weftd.sock"
        let server = try HealthServer(
            socketPath: path,
            readiness: Readiness(),
            status: FixedStatus(routes: FixedStatus.sampleRoutes, stats: nil),
            limits: Self.patient
        )
        server.start()
        let silent = try TestSockets.connect(path: path)
        defer { close(silent) }
        #expect(try StatusClient(path: path).routes().generation == 4)
        #expect(!TestSockets.closedByServer(silent, within: 0))

        // Someone replaced the file meanwhile: stop leaves theirs alone.
        unlink(path)
        let theirs = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(theirs) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(theirs, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        try #require(bound == 0)
        server.stop()
        #expect(access(path, F_OK) == 0, "stop removed a socket file that was not its own")
        #expect(TestSockets.closedByServer(silent, within: 20), "stop left a Unix connection open")
    }

    @Test func startAndStopFiftyTimesLeakNoDescriptors() throws {
        let directory = try StatusServerTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/weftd.sock"
        let status = FixedStatus(routes: FixedStatus.sampleRoutes, stats: nil)
        func cycle() throws {
            let tcp = try HealthServer(address: Self.loopback, port: 0, readiness: Readiness(), status: status)
            tcp.start()
            let idle = try TestSockets.connect(port: tcp.port)
            defer { close(idle) }
            #expect(try TestSockets.get(port: tcp.port, "/v1/routes").status == 200)
            tcp.stop()
            let unix = try HealthServer(socketPath: path, readiness: Readiness(), status: status)
            unix.start()
            #expect(try StatusClient(path: path).routes().generation == 4)
            unix.stop()
        }
        try cycle()  // the shared event loop and status thread exist from here on
        let before = TestSockets.openDescriptors()
        for _ in 0..<50 { try cycle() }
        // Other suites open and close descriptors meanwhile: allow a few, and let closes land.
        var after = TestSockets.openDescriptors()
        for _ in 0..<8 where after > before + 10 {
            Thread.sleep(forTimeInterval: 0.25)
            after = TestSockets.openDescriptors()
        }
        #expect(after <= before + 10, "\(after - before) more descriptors open after 50 start/stop cycles")
    }
}
