import AsyncHTTPClient
import NIOCore
import Synchronization

extension EtcdClient {
    /// Watches every key under `prefix` from `fromRevision` on; returns once etcd confirmed the watch.
    /// `fromRevision` 0 means "from the next change". The stream lives on the endpoint that accepted it:
    /// when it breaks, watch again (failover picks a live endpoint) from the last revision seen + 1.
    public func watch(prefix: String, fromRevision: Int64) async throws(EtcdError) -> EtcdWatch {
        let operation = "watch \(prefix) from revision \(fromRevision)"
        let request = Wire.WatchRequest(create_request: Wire.WatchCreateRequest(
            key: GatewayBytes(prefix), range_end: GatewayBytes(prefixRangeEnd(Array(prefix.utf8))),
            start_revision: GatewayInt64(fromRevision)))
        // etcd checks the token when it creates the watch and answers a bad one in the first message.
        return try await transport.withAuthentication(operation) { (token) throws(EtcdError) in
            try await startWatch(operation, request: request, token: token)
        }
    }

    private func startWatch(_ operation: String, request: Wire.WatchRequest, token: String) async throws(EtcdError) -> EtcdWatch {
        let (endpoint, response) = try await transport.openStream(operation, path: "/v3/watch", body: request, token: token)

        let (stream, continuation) = AsyncStream<WatchSignal>.makeStream()
        let pump = WatchPump(operation: operation, endpoint: endpoint, continuation: continuation)
        let task = Task { await pump.run(response.body) }
        // Fires when the consumer's stream and every iterator are gone, or its task is cancelled.
        continuation.onTermination = { _ in task.cancel() }
        // The response head can come before etcd registered the watch; bound the wait for "created" too.
        let timeout = transport.configuration.requestTimeout
        let watchdog = Task {
            try? await Task.sleep(for: timeout)
            guard !Task.isCancelled else { return }
            pump.giveUpWaiting(seconds: GatewayTransport.seconds(timeout))
            task.cancel()
        }
        defer { watchdog.cancel() }

        var iterator = stream.makeAsyncIterator()
        switch await iterator.next() {
        case .created?:
            return EtcdWatch(stream: stream, pump: task)
        case .failure(let error)?:
            task.cancel()
            throw error
        case .batch?, nil:
            // nil: the calling task was cancelled. A batch cannot come first (the pump yields only after "created").
            task.cancel()
            throw EtcdError(operation: operation, endpoint: endpoint, reason: .watchClosed)
        }
    }
}

/// The changes under a prefix, one batch per gateway message, in revision order.
///
/// Iteration throws `EtcdError`: `.compacted(revision:)` when the start revision was compacted (re-read,
/// then watch from the read's revision + 1), `.watchClosed` when the server ended the stream, `.server`
/// when the gateway reported an error, `.unreachable` when the connection broke. After any of these,
/// watch again from the last revision seen + 1. `cancel()`, cancelling the iterating task, or dropping
/// the watch and its iterators closes the HTTP stream; iteration then ends with nil.
/// Batches are buffered without bound until consumed, so consume them promptly.
public struct EtcdWatch: AsyncSequence, Sendable {
    public typealias Element = [WatchEvent]
    public typealias Failure = EtcdError

    let stream: AsyncStream<WatchSignal>
    let pump: Task<Void, Never>

    /// Closes the HTTP stream; batches already received are still delivered, then iteration ends.
    public func cancel() {
        pump.cancel()
    }

    public func makeAsyncIterator() -> Iterator {
        Iterator(base: stream.makeAsyncIterator())
    }

    public struct Iterator: AsyncIteratorProtocol {
        public typealias Element = [WatchEvent]
        public typealias Failure = EtcdError

        var base: AsyncStream<WatchSignal>.Iterator
        var finished = false

        public mutating func next() async throws(EtcdError) -> [WatchEvent]? {
            while !finished {
                switch await base.next() {
                case .batch(let events)?:
                    return events
                case .failure(let error)?:
                    finished = true
                    throw error
                case .created?:
                    continue
                case nil:
                    finished = true
                }
            }
            return nil
        }
    }
}

/// What the pump hands the consumer.
enum WatchSignal: Sendable {
    case created
    case batch([WatchEvent])
    case failure(EtcdError)
}

/// Reads one watch's HTTP body, turns its lines into signals, and ends the stream with the reason it stopped.
final class WatchPump: Sendable {
    private enum Phase { case waiting, confirmed, gaveUp }

    let operation: String
    let endpoint: String
    let continuation: AsyncStream<WatchSignal>.Continuation
    /// Decides once whether "created" or the watchdog's timeout reaches the caller of `watch`.
    private let phase = Mutex(Phase.waiting)

    init(operation: String, endpoint: String, continuation: AsyncStream<WatchSignal>.Continuation) {
        self.operation = operation
        self.endpoint = endpoint
        self.continuation = continuation
    }

    func run(_ body: HTTPClientResponse.Body) async {
        var splitter = LineSplitter()
        do {
            for try await buffer in body {
                guard let lines = splitter.append(buffer.readableBytesView) else {
                    return fail(.malformedResponse("a watch message longer than \(splitter.maximumLine >> 20) MiB"))
                }
                for line in lines where !handle(line) { return }
            }
            if let rest = splitter.finish(), !handle(rest) { return }
            fail(.watchClosed)
        } catch {
            if Task.isCancelled { return continuation.finish() }
            fail(.unreachable(attempts: 1, lastError: "\(endpoint): the watch stream broke (\(error))"))
        }
    }

    func giveUpWaiting(seconds: Double) {
        phase.withLock { phase in
            guard phase == .waiting else { return }
            phase = .gaveUp
            continuation.yield(.failure(EtcdError(operation: operation, endpoint: endpoint, reason: .timedOut(seconds: seconds))))
            continuation.finish()
        }
    }

    /// Acts on one gateway message; false once the watch is over.
    private func handle(_ line: [UInt8]) -> Bool {
        let message: WatchMessage
        do {
            message = try WatchMessage.decode(line)
        } catch {
            fail(.malformedResponse(error.detail))
            return false
        }
        switch message {
        case .created:
            return phase.withLock { phase in
                guard phase == .waiting else { return false }
                phase = .confirmed
                continuation.yield(.created)
                return true
            }
        case .progress:
            return true
        case .events(let events):
            continuation.yield(.batch(events))
            return true
        case .compacted(let revision):
            fail(.compacted(revision: revision))
        case .canceled(let code, let reason):
            fail(.server(code: code, message: reason))
        case .failed(let code, let message):
            fail(.server(code: code, message: message))
        }
        return false
    }

    private func fail(_ reason: EtcdError.Reason) {
        continuation.yield(.failure(EtcdError(operation: operation, endpoint: endpoint, reason: reason)))
        continuation.finish()
    }
}
