import Synchronization

/// The moment a dataplane's first publication is in effect (in the kernel, or in the engine's
/// tables): told once by whoever applied it, awaited by the runner before it marks the node ready.
final class FirstPublication: Sendable {
    private let stream: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation
    private let fired = Mutex(false)

    init() {
        (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// The publication is in effect; later calls change nothing.
    func fire() {
        fired.withLock { $0 = true }
        continuation.yield()
        continuation.finish()
    }

    var hasFired: Bool { fired.withLock { $0 } }

    /// True once fired, false if the calling task was cancelled first (SIGTERM while etcd is away).
    func wait() async -> Bool {
        for await _ in stream { return true }
        return false
    }
}
