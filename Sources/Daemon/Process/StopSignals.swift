import Glibc
import ServiceLifecycle
import UnixSignals

/// SIGTERM and SIGINT as the event that stops weftd's ServiceGroup: the first one is handed to
/// `received`, and the watcher returns, which shuts the group down gracefully in order. Not the
/// group's own gracefulShutdownSignals: weftd logs which signal stopped it, and what it was doing.
struct StopSignals: Service {
    /// The first stop signal's number, or nil when the calling task is cancelled first.
    let first: @Sendable () async -> Int32?
    let received: @Sendable (Int32) -> Void

    func run() async {
        // On a shutdown that began elsewhere (the run returned or failed), the wait is cancelled.
        guard let number = await cancelWhenGracefulShutdown(first) else { return }
        received(number)
    }

    /// SIGTERM and SIGINT trapped from now on: one that arrives before anyone waits is kept, and
    /// later ones do nothing while the closure lives. The closure yields the first, or nil when
    /// its task is cancelled; call it once.
    static func trapping() async -> @Sendable () async -> Int32? {
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        return {
            for await signal in signals { return signal.rawValue }
            return nil
        }
    }

    /// SIGTERM, SIGINT or "signal N", for the log.
    static func name(_ number: Int32) -> String {
        number == SIGINT ? "SIGINT" : number == SIGTERM ? "SIGTERM" : "signal \(number)"
    }
}
