import NIOCore
import Synchronization

/// The open connections of one server, in the order they were accepted: for the cap, and for
/// stop to close them all.
final class ConnectionRegistry: Sendable {
    typealias ID = UInt64

    enum Admission {
        /// `displaced` is the connection closed to make room, if the cap was reached.
        case admitted(ID, displaced: (any Channel)?)
        case refused
    }

    private struct Entry {
        let channel: any Channel
        var answering = false
    }

    private struct State {
        var stopped = false
        var next: ID = 0
        var open: [ID: Entry] = [:]
    }

    let limit: Int
    private let state = Mutex(State())

    init(limit: Int) {
        self.limit = limit
    }

    /// At the cap, room is made by closing the oldest connection waiting for a request head (its
    /// first, or the next on a kept-alive connection): a probe sends its head at once, so only
    /// slow, silent or idle clients are displaced, never one being answered.
    /// With every connection being answered, the new one is refused.
    func admit(_ channel: any Channel) -> Admission {
        state.withLock { state in
            guard !state.stopped else { return .refused }
            var displaced: (any Channel)?
            if state.open.count >= limit {
                guard let oldest = state.open.filter({ !$0.value.answering }).keys.min() else { return .refused }
                displaced = state.open.removeValue(forKey: oldest)?.channel
            }
            let id = state.next
            state.next += 1
            state.open[id] = Entry(channel: channel)
            return .admitted(id, displaced: displaced)
        }
    }

    func answering(_ id: ID) {
        state.withLock { $0.open[id]?.answering = true }
    }

    /// Answered and kept open for its next request: displaceable again.
    func waiting(_ id: ID) {
        state.withLock { $0.open[id]?.answering = false }
    }

    func remove(_ id: ID) {
        state.withLock { _ = $0.open.removeValue(forKey: id) }
    }

    /// Refuses every later connection and returns the open ones, for the caller to close.
    func closeAll() -> [any Channel] {
        state.withLock { state in
            state.stopped = true
            defer { state.open = [:] }
            return state.open.values.map(\.channel)
        }
    }
}
