import Logging
import ServiceLifecycle
import Synchronization

/// weftd's own work as one Service: `prepare` (choosing the interface, which may wait for the API
/// server), then `body` (lease keeping, peer watch, traffic rules, the dataplane and its keepers,
/// which stop in that order when cancelled). Its failures become the exit status here, not the
/// group's error, so a failing body still lets the health servers stop last and cleanly.
final class DaemonRunService: Service {
    private let prepare: @Sendable () async throws -> DaemonContext
    private let body: WeftDaemon.Body
    private let logger: Logger
    private let readiness: Readiness
    private let notifier: SystemdNotifier?

    private struct State {
        var running = false
        var stopping = false
        var status: Int32 = 0
    }
    private let state = Mutex(State())

    /// `prepare` throws CancellationError when stopped, and a one-line error when startup fails.
    init(
        logger: Logger,
        readiness: Readiness,
        notifier: SystemdNotifier?,
        prepare: @escaping @Sendable () async throws -> DaemonContext,
        body: @escaping WeftDaemon.Body
    ) {
        self.logger = logger
        self.readiness = readiness
        self.notifier = notifier
        self.prepare = prepare
        self.body = body
    }

    /// 0 after a stop signal or when `body` returned, 1 when startup or `body` failed.
    var status: Int32 { state.withLock { $0.status } }

    func run() async {
        do {
            let context = try await cancelWhenGracefulShutdown(prepare)
            state.withLock { $0.running = true }
            try await cancelWhenGracefulShutdown { [body] in try await body(context) }
        } catch is CancellationError {
        } catch {
            fail("\(error)")
        }
        if state.withLock({ $0.running }) { logger.info("stopped") }
    }

    /// A stop signal: the daemon is not ready from now on (so /readyz says "stopping" while the
    /// services stop), and systemd hears STOPPING=1.
    func stop(by number: Int32) {
        let running = state.withLock { state in
            state.stopping = true
            return state.running
        }
        guard running else {
            logger.info("received \(StopSignals.name(number)) while waiting for the Kubernetes API, stopping")
            return
        }
        logger.info("received \(StopSignals.name(number)), stopping")
        readiness.markNotReady("stopping")
        notify("STOPPING=1")
    }

    private func fail(_ message: String) {
        let stopping = state.withLock { state in
            defer {
                if !state.stopping { state.status = 1 }
                state.stopping = true
            }
            return state.stopping
        }
        if stopping {
            logger.warning("while stopping: \(message)")
            return
        }
        logger.error("\(message)")
        if state.withLock({ $0.running }) { notify("STOPPING=1") }
    }

    private func notify(_ state: String) {
        notifier?.send(state, warningTo: logger)
    }
}
