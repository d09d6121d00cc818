import Logging
import Synchronization

/// Says each distinct problem once: a retry loop that meets the same problem every second logs
/// one line, not one per attempt, and logs again only when the problem changes (or clears).
/// `kind` is what makes two problems the same (e.g. "etcd unreachable" whatever the errno text).
final class ProblemLog: Sendable {
    private let logger: Logger
    private let last = Mutex<String?>(nil)

    init(logger: Logger) {
        self.logger = logger
    }

    /// Logs `message` at warning level unless the previous problem had the same `kind`.
    /// Returns whether it logged.
    @discardableResult
    func report(kind: String, _ message: @autoclosure () -> String) -> Bool {
        let isNew = last.withLock { last in
            defer { last = kind }
            return last != kind
        }
        if isNew { logger.warning("\(message())") }
        return isNew
    }

    /// The problem is gone; the next one is logged whatever its kind. Returns whether there was one.
    @discardableResult
    func clear() -> Bool {
        last.withLock { last in
            defer { last = nil }
            return last != nil
        }
    }
}
