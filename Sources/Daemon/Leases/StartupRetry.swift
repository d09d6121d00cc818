import ControlPlane
import Timing

/// How weftd waits out what it needs before it can run (the network config, the subnet manager,
/// our lease, our node's node-public-ip): it tries again until it gets an answer, backing off to
/// every 2 s (flanneld retries every second). Each distinct problem is logged once, and /readyz
/// and systemd's STATUS say what weftd is waiting for.
struct StartupRetry: Sendable {
    let problems: ProblemLog
    /// Called with the problem's one line when a new problem starts.
    let waiting: @Sendable (String) -> Void

    static let backoff = Backoff(initial: .milliseconds(250), maximum: .seconds(2))

    /// The first value `attempt` gives; throws CancellationError when the task is cancelled.
    func value<T>(_ attempt: () async throws(LeaseError) -> T?) async throws -> T {
        var tries = 0
        var lastKind: String?
        while true {
            do throws(LeaseError) {
                if let value = try await attempt() {
                    problems.clear()
                    return value
                }
            } catch {
                // The store being away is one problem whatever the errno text; each distinct config error is its own.
                let kind = error.problem
                if kind != lastKind { tries = 0 }
                lastKind = kind
                if problems.report(kind: kind, error.description) { waiting(error.description) }
            }
            try Task.checkCancellation()
            try await Task.sleep(for: Self.backoff.delay(attempt: tries))
            tries += 1
        }
    }
}
