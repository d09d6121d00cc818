import NIOCore
import Synchronization

/// Every open connection of one client, and the idle ones kept for reuse per origin.
final class ConnectionPool: Sendable {
    private struct State {
        var idle: [Origin: [Connection]] = [:]
        var open: [ObjectIdentifier: Connection] = [:]
        var isShutDown = false
    }

    private let state = Mutex(State())
    /// Idle connections kept per origin; one more that finishes its request is closed.
    let maximumIdle: Int

    init(maximumIdle: Int) {
        self.maximumIdle = maximumIdle
    }

    /// The connections open now, busy or idle (tests check that none is left behind).
    var openCount: Int { state.withLock { $0.open.count } }
    var idleCount: Int { state.withLock { $0.idle.values.reduce(0) { $0 + $1.count } } }

    /// The most recently used idle connection to `origin` that is still open, if any.
    func takeIdle(_ origin: Origin) -> Connection? {
        state.withLock { state in
            while let connection = state.idle[origin]?.popLast() {
                if connection.isOpen { return connection }
            }
            return nil
        }
    }

    /// Tracks a new connection until it closes; a pool already shut down closes it at once.
    func adopt(_ connection: Connection) throws(HTTP1Error) {
        let accepted = state.withLock { state in
            guard !state.isShutDown else { return false }
            state.open[ObjectIdentifier(connection)] = connection
            return true
        }
        guard accepted else {
            connection.close(HTTP1Error(.shutDown, "the HTTP client was shut down"))
            throw HTTP1Error(.shutDown, "the HTTP client was shut down")
        }
        connection.channel.closeFuture.whenComplete { [weak self] _ in self?.forget(connection) }
    }

    /// Takes back a connection whose request finished cleanly: kept idle if there is room, else closed.
    func release(_ connection: Connection) {
        let kept = state.withLock { state in
            guard !state.isShutDown, connection.isOpen, state.open[ObjectIdentifier(connection)] != nil,
                state.idle[connection.origin, default: []].count < maximumIdle
            else { return false }
            state.idle[connection.origin, default: []].append(connection)
            return true
        }
        if !kept { connection.close(HTTP1Error(.connectionClosed, "closed: no room among the idle connections")) }
    }

    private func forget(_ connection: Connection) {
        state.withLock { state in
            state.open[ObjectIdentifier(connection)] = nil
            state.idle[connection.origin]?.removeAll { $0 === connection }
            if state.idle[connection.origin]?.isEmpty == true { state.idle[connection.origin] = nil }
        }
    }

    /// Closes every connection, busy ones and streams included, and waits until they are closed.
    func shutdown() async {
        let connections = state.withLock { state in
            state.isShutDown = true
            state.idle = [:]
            return Array(state.open.values)
        }
        for connection in connections {
            connection.close(HTTP1Error(.shutDown, "the HTTP client was shut down"))
        }
        for connection in connections {
            try? await connection.channel.closeFuture.get()
        }
    }
}
