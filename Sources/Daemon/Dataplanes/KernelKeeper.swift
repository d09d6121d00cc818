import Logging
import Netlink
import Routes
import Synchronization

/// Holds a dataplane's kernel state for the watcher's callback, the 10 s resync and the reports,
/// which may run at once: one lock, so a resync never puts back an older publication than the one
/// just reconciled.
final class KernelKeeper<Held: KernelReconciling & ~Copyable>: Sendable {
    /// flannel's route check period, which the log lines name.
    static var resyncInterval: Duration { .seconds(10) }

    private struct State: ~Copyable {
        var held: Held
        /// Whether a publication was given: before that a resync would reconcile to no peers and
        /// remove the previous run's entries, which still carry traffic.
        var published = false
    }

    private let state: Mutex<State>
    private let logger: Logger
    /// Who speaks in the log ("host-gw", "vxlan") and what a failure could not read.
    private let label: String
    private let reads: String
    /// Told of the first success (it releases awaitFirstReconcile); nil when no one waits.
    private let reconciled: FirstPublication?

    init(
        _ held: consuming Held,
        label: String,
        reads: String,
        logger: Logger,
        reconciled: FirstPublication? = nil
    ) {
        state = Mutex(State(held: held))
        self.label = label
        self.reads = reads
        self.logger = logger
        self.reconciled = reconciled
    }

    /// Makes the kernel's state the publication's.
    func reconcile(_ routes: [Route], ipv6: [IPv6Peer] = []) {
        do throws(NetlinkError) {
            try state.withLock { (state) throws(NetlinkError) in
                state.published = true
                try state.held.reconcileKernel(to: routes, ipv6: ipv6)
            }
            markReconciled()
        } catch {
            logger.error(
                "\(label): cannot read \(reads): \(error); the next publication or the 10 s resync tries again"
            )
        }
    }

    /// Reconciles the last publication again; nothing before the first.
    func resync() {
        do throws(NetlinkError) {
            let done = try state.withLock { (state) throws(NetlinkError) -> Bool in
                guard state.published else { return false }
                try state.held.resyncKernel()
                return true
            }
            if done { markReconciled() }
        } catch {
            logger.error("\(label): resync cannot read \(reads): \(error)")
        }
    }

    /// Resyncs every `resyncInterval` until the calling task is cancelled.
    func runResyncs() async {
        while true {
            do { try await Task.sleep(for: Self.resyncInterval) } catch { return }
            resync()
        }
    }

    /// `body` with the held state under the lock, and whether a publication was given.
    func withHeld<Value: Sendable, Failure: Error>(
        _ body: (inout Held, _ published: Bool) throws(Failure) -> Value
    ) throws(Failure) -> Value {
        try state.withLock { (state) throws(Failure) -> Value in try body(&state.held, state.published) }
    }

    private func markReconciled() {
        reconciled?.fire()
    }
}
