import Synchronization

/// One holder at a time across awaits, first come first served: what a sequence of nft runs that
/// must not interleave with another holds for its whole length (an actor alone lets another call
/// in at every await). Its lock is held only to note a holder, never across an await. Not
/// cancellable: a turn taken is always given back.
public final class Turns: Sendable {
    private struct State {
        var taken = false
        var waiting: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    public init() {}

    /// Waits for whoever asked before, then holds the turn until `give`: `await turns.take()`
    /// then `defer { turns.give() }`.
    public func take() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                guard state.taken else {
                    state.taken = true
                    return true
                }
                state.waiting.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Hands the turn to the longest waiting, or frees it.
    public func give() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.waiting.isEmpty else {
                state.taken = false
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.resume()
    }
}
