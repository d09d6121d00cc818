import Addressing
import Config
import Foundation
import Glibc
import Logging
import Synchronization
import TestThreads
import Testing

@testable import Daemon

@Suite(.ownThread) struct HealthServerTests {
    static let loopback = IPv4Address(127, 0, 0, 1)

    @Test func answersHealthzAndReadyzOverRealHTTP() throws {
        let readiness = Readiness()
        let server = try HealthServer(address: Self.loopback, port: 0, readiness: readiness)
        server.start()
        defer { server.stop() }
        #expect(server.port != 0)

        let alive = try TestSockets.get(port: server.port, "/healthz")
        #expect(alive.status == 200 && alive.body == "weftd is running\n")
        #expect(alive.headers["content-length"] == String(alive.body.utf8.count))

        let waiting = try TestSockets.get(port: server.port, "/readyz")
        #expect(waiting.status == 503)
        #expect(waiting.body == "weftd is not ready: waiting for the subnet lease and the dataplane\n")

        readiness.markReady("lease 10.244.34.0/24, engine uring")
        let ready = try TestSockets.get(port: server.port, "/readyz?verbose")
        #expect(ready.status == 200 && ready.body == "weftd is ready: lease 10.244.34.0/24, engine uring\n")

        readiness.markNotReady("lost the lease")
        let lost = try TestSockets.get(port: server.port, "/readyz")
        #expect(lost.status == 503 && lost.body.contains("lost the lease"))

        let missing = try TestSockets.get(port: server.port, "/metrics")
        #expect(missing.status == 404)
        let posted = try TestSockets.get(port: server.port, "/healthz", method: "POST")
        #expect(posted.status == 405)
        let head = try TestSockets.get(port: server.port, "/healthz", method: "HEAD")
        #expect(head.status == 200 && head.body.isEmpty && head.headers["content-length"] == "17")
        let garbage = TestSockets.parse(try TestSockets.exchange(port: server.port, "hello\r\n\r\n"))
        #expect(garbage.status == 400)
    }

    @Test func aSilentClientDoesNotDelayTheNextProbe() throws {
        let server = try HealthServer(address: Self.loopback, port: 0, readiness: Readiness())
        server.start()
        defer { server.stop() }
        let idle = try TestSockets.connect(port: server.port)
        defer { close(idle) }
        #expect(try TestSockets.get(port: server.port, "/healthz").status == 200)
        // Answered while the silent client is still connected (the server gives it 5 s): the
        // probe did not wait for the server to give up on it.
        #expect(!TestSockets.closedByServer(idle, within: 0))
    }

    @Test func stopClosesThePort() throws {
        let server = try HealthServer(address: Self.loopback, port: 0, readiness: Readiness())
        server.start()
        let port = server.port
        #expect(try TestSockets.get(port: port, "/healthz").status == 200)
        server.stop()
        server.stop()  // a second stop is harmless
        // Refused, normally. Parallel suites bind loopback ports all the time, and a freed one may
        // be someone else's listener by now (or a self-connect): what must not answer is this server.
        do {
            let answer = try TestSockets.get(port: port, "/healthz")
            #expect(answer.body != "weftd is running\n", "the stopped server still answered on \(port)")
        } catch {
            #expect(error is POSIXError, "\(error)")
        }
        let again = try HealthServer(address: Self.loopback, port: port, readiness: Readiness())
        #expect(again.port == port)
    }

    @Test func bindFailureNamesTheAddressAndTheFix() {
        do {
            _ = try HealthServer(address: IPv4Address(198, 18, 255, 254), port: 0, readiness: Readiness())
            Issue.record("bound an address this host does not have")
        } catch {
            #expect(error.description.contains("198.18.255.254:0: bind failed"), "\(error)")
            #expect(error.description.contains("--healthz-ip"))
        }
    }

    @Test func responseTableWithoutSockets() {
        let ready = Readiness.State(isReady: true, reason: "up")
        let cases: [(String, Int)] = [
            ("GET /healthz HTTP/1.1", 200), ("GET /healthz HTTP/1.0", 200), ("HEAD /readyz HTTP/1.1", 200),
            ("GET /readyz HTTP/1.1", 200), ("GET / HTTP/1.1", 404), ("GET /healthzz HTTP/1.1", 404),
            ("DELETE /healthz HTTP/1.1", 405), ("GET /healthz", 400), ("GET /healthz SPDY/3", 400), ("", 400),
        ]
        for (line, status) in cases {
            let response = String(
                decoding: HealthServer.response(to: Array("\(line)\r\nHost: x\r\n\r\n".utf8), readiness: ready),
                as: UTF8.self
            )
            #expect(response.hasPrefix("HTTP/1.1 \(status) "), "\(line): \(response)")
        }
    }
}

@Suite(.ownThread) struct SystemdNotifierTests {
    @Test(arguments: [false, true])
    func sendsDatagramsToPathAndAbstractSockets(abstract: Bool) throws {
        let listener = try TestSockets.NotifyListener(abstract: abstract)
        let notifier = try #require(SystemdNotifier(environment: ["NOTIFY_SOCKET": listener.name]))
        try notifier.send("READY=1")
        try notifier.send("STOPPING=1")
        #expect(listener.receive() == "READY=1")
        #expect(listener.receive() == "STOPPING=1")
    }

    @Test func absentOrBadSocketNames() throws {
        #expect(SystemdNotifier(environment: [:]) == nil)
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": ""]) == nil)
        #expect(throws: SystemdNotifier.Failure.self) {
            try SystemdNotifier(socketPath: "relative/path").send("READY=1")
        }
        #expect(throws: SystemdNotifier.Failure.self) {
            try SystemdNotifier(socketPath: "/" + String(repeating: "x", count: 120)).send("READY=1")
        }
        #expect(throws: SystemdNotifier.Failure.self) {
            try SystemdNotifier(socketPath: "/nonexistent/weftd-notify").send("READY=1")
        }
    }
}

@Suite struct RunLoopTests {
    static let interface = ExternalInterface(
        name: "eth0",
        index: 2,
        mtu: 1500,
        address: IPv4Address(198, 18, 0, 2),
        publicIP: IPv4Address(198, 18, 0, 2),
        reason: "test",
        others: []
    )

    static func context(_ notifier: SystemdNotifier?) -> DaemonContext {
        var logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        logger.logLevel = .critical
        return DaemonContext(options: DaemonOptions(), interface: interface, logger: logger, notifier: notifier)
    }

    /// A stop source the test fires by hand.
    final class Trigger: Sendable {
        let fired = Mutex<(Int32?, CheckedContinuation<Int32?, Never>?)>((nil, nil))
        func fire(_ number: Int32) {
            let waiter = fired.withLock { state in
                state.0 = number
                defer { state.1 = nil }
                return state.1
            }
            waiter?.resume(returning: number)
        }
        func wait() async -> Int32? {
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let now = fired.withLock { state -> Int32? in
                        if let number = state.0 { return number }
                        state.1 = continuation
                        return nil
                    }
                    if let now { continuation.resume(returning: now) }
                }
            } onCancel: {
                let waiter = fired.withLock { state in
                    defer { state.1 = nil }
                    return state.1
                }
                waiter?.resume(returning: nil)
            }
        }
    }

    @Test func sigtermCancelsTheBodySendsStoppingAndExitsZero() async throws {
        let listener = try TestSockets.NotifyListener(abstract: true)
        let context = Self.context(SystemdNotifier(socketPath: listener.name))
        let trigger = Trigger()
        let sawCancel = Mutex(false)
        let status = await WeftDaemon.run(context, until: { await trigger.wait() }) { context in
            context.markReady("lease and engine up")
            trigger.fire(SIGTERM)
            do {
                try await Task.sleep(for: .seconds(60))
            } catch {
                sawCancel.withLock { $0 = true }
                throw error
            }
        }
        #expect(status == 0)
        #expect(sawCancel.withLock { $0 })
        #expect(listener.receive() == "READY=1\nSTATUS=lease and engine up")
        #expect(listener.receive() == "STOPPING=1")
        #expect(!context.readiness.current.isReady)
    }

    @Test func readyIsSentOnce() async throws {
        let listener = try TestSockets.NotifyListener(abstract: false)
        let context = Self.context(SystemdNotifier(socketPath: listener.name))
        context.markReady("one")
        context.markReady("two")
        context.markNotReady("lost the lease")
        context.markReady("three")
        #expect(listener.receive() == "READY=1\nSTATUS=one")
        #expect(listener.receive() == "STATUS=lost the lease")
        #expect(listener.receive() == "READY=1\nSTATUS=three")
    }

    @Test func bodyFailureExitsOneAndBodyReturnExitsZero() async {
        struct LeaseLost: Error, CustomStringConvertible { var description: String { "lease lost" } }
        let failed = await WeftDaemon.run(Self.context(nil), until: { await Trigger().wait() }) { _ in throw LeaseLost()
        }
        #expect(failed == 1)
        let finished = await WeftDaemon.run(Self.context(nil), until: { await Trigger().wait() }) { _ in }
        #expect(finished == 0)
    }

    @Test func anErrorWhileStoppingIsNotAFailure() async {
        struct Interrupted: Error {}
        let trigger = Trigger()
        let status = await WeftDaemon.run(Self.context(nil), until: { await trigger.wait() }) { _ in
            trigger.fire(SIGINT)
            try? await Task.sleep(for: .seconds(60))
            throw Interrupted()
        }
        #expect(status == 0)
    }

    @Test func publishWritesSubnetEnvThenDockerOptions() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "weftd-publish-\(UUID().uuidString)"
        )
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var options = DaemonOptions()
        options.subnetFile = directory.appendingPathComponent("subnet.env").path
        options.dockerOptionsFile = directory.appendingPathComponent("docker").path
        options.dockerOptions.combinedKey = "DOCKER_NETWORK_OPTIONS"
        var logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        logger.logLevel = .critical
        let context = DaemonContext(options: options, interface: Self.interface, logger: logger)
        try context.publish(
            SubnetEnv(
                network: IPv4Prefix("10.1.0.0/16")!,
                subnet: IPv4Prefix("10.1.74.0/24")!,
                mtu: 1472,
                ipMasq: false
            )
        )
        // flannel's sample_subnet.env and what mk-docker-opts.sh -k DOCKER_NETWORK_OPTIONS prints for it.
        #expect(
            try String(contentsOfFile: options.subnetFile, encoding: .utf8)
                == "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.74.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=false\n"
        )
        #expect(
            try String(contentsOfFile: options.dockerOptionsFile!, encoding: .utf8) == """
                DOCKER_OPT_BIP="--bip=10.1.74.1/24"
                DOCKER_OPT_IPMASQ="--ip-masq=true"
                DOCKER_OPT_MTU="--mtu=1472"
                DOCKER_NETWORK_OPTIONS=" --bip=10.1.74.1/24 --ip-masq=true --mtu=1472"

                """
        )
        var noDocker = options
        noDocker.dockerOptionsFile = nil
        try FileManager.default.removeItem(atPath: options.dockerOptionsFile!)
        try DaemonContext(options: noDocker, interface: Self.interface, logger: logger).publish(
            SubnetEnv(network: nil, subnet: nil, mtu: 1450, ipMasq: true)
        )
        #expect(!FileManager.default.fileExists(atPath: options.dockerOptionsFile!))
        #expect(
            try String(contentsOfFile: options.subnetFile, encoding: .utf8) == "FLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
        )
    }

    @Test func aStopSignalArrivingEarlyIsKeptUntilTheWatcherRuns() async {
        let first = await StopSignals.trapping()
        kill(getpid(), SIGINT)  // trapped: the test process goes on
        let received = Mutex<Int32?>(nil)
        await StopSignals(first: first, received: { number in received.withLock { $0 = number } }).run()
        #expect(received.withLock { $0 } == SIGINT)
    }
}

/// The service group's ordered stop, with a real health server: the run stops first, and /readyz
/// answers 503 "stopping" meanwhile; the server closes last.
@Suite(.ownThread) struct OrderedStopTests {
    @Test func theHealthServerAnswersStoppingUntilTheRunHasStopped() async throws {
        let context = RunLoopTests.context(nil)
        let server = try HealthServer(address: IPv4Address(127, 0, 0, 1), port: 0, readiness: context.readiness)
        let trigger = RunLoopTests.Trigger()
        let whileStopping = Mutex<TestSockets.Response?>(nil)
        let run = DaemonRunService(
            logger: context.logger,
            readiness: context.readiness,
            notifier: nil,
            prepare: { context },
            body: { context in
                context.markReady("lease and engine up")
                trigger.fire(SIGTERM)
                try? await Task.sleep(for: .seconds(60))
                // Cancelled by the stop: the health server must still be answering.
                let answer = try? TestSockets.get(port: server.port, "/readyz")
                whileStopping.withLock { $0 = answer }
            }
        )
        let status = await WeftDaemon.serve(
            run,
            servers: [server],
            until: { await trigger.wait() },
            logger: context.logger
        )
        #expect(status == 0)
        let answer = try #require(whileStopping.withLock { $0 })
        #expect(answer.status == 503 && answer.body.contains("stopping"), "\(answer.body)")
        #expect(throws: (any Error).self, "closed once the group has stopped") {
            try TestSockets.get(port: server.port, "/healthz")
        }
    }
}
