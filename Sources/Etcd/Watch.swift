import HTTP1
import NIOCore
import Synchronization
import Timing

extension EtcdClient {
    /// Watches every key under `prefix` from `fromRevision` on; returns once etcd confirmed the watch.
    /// `fromRevision` 0 means "from the next change". The stream lives on the endpoint that accepted it:
    /// when it breaks, watch again (failover picks a live endpoint) from the last revision seen + 1.
    ///
    /// Liveness: the watch asks etcd for a progress notification every `watchProgressInterval` on
    /// its own request stream, and ends with `.watchSilent` when neither events nor progress came
    /// for `watchSilenceLimit`. etcd answers progress requests without consensus, so only a dead
    /// connection or a stuck member is silent that long. It also requires a leader (etcd cancels
    /// the watch of a member that loses its leader, so the caller re-watches elsewhere).
    public func watch(prefix: String, fromRevision: Int64) async throws(EtcdError) -> EtcdWatch {
        let operation = "watch \(prefix) from revision \(fromRevision)"
        let request = Wire.WatchRequest(
            create_request: Wire.WatchCreateRequest(
                key: GatewayBytes(prefix),
                range_end: GatewayBytes(prefixRangeEnd(Array(prefix.utf8))),
                start_revision: GatewayInt64(fromRevision),
                progress_notify: true
            )
        )
        // etcd checks the token when it creates the watch and answers a bad one in the first message.
        return try await transport.withAuthentication(operation) { (token) throws(EtcdError) in
            try await startWatch(operation, request: request, token: token)
        }
    }

    private func startWatch(
        _ operation: String,
        request: Wire.WatchRequest,
        token: String
    ) async throws(EtcdError) -> EtcdWatch {
        let create = try transport.encode(request, operation: operation)
        let progress = try transport.encode(
            Wire.WatchRequest(progress_request: Wire.WatchProgressRequest()),
            operation: operation
        )
        let progressRequest = ByteBuffer(bytes: progress)
        // Progress requests are the nudge too: harmless, and answered. grpc-gateway forwards
        // Grpc-Metadata-* as gRPC metadata; etcd's "hasleader" is clientv3's WithRequireLeader.
        let (endpoint, response, requests) = try await transport.openStream(
            operation,
            path: "/v3/watch",
            first: create,
            nudge: progress,
            token: token,
            headers: [("Grpc-Metadata-hasleader", "true")]
        )

        let (stream, continuation) = AsyncStream<WatchSignal>.makeStream()
        let pump = WatchPump(operation: operation, endpoint: endpoint, continuation: continuation)
        let task = Task { await pump.run(response) }
        let configuration = transport.configuration
        let liveness = Task {
            while !Task.isCancelled {
                do { try await Task.sleep(for: configuration.watchProgressInterval) } catch { break }
                if pump.silence() > configuration.watchSilenceLimit {
                    pump.giveUpSilent(seconds: GatewayTransport.seconds(configuration.watchSilenceLimit))
                    task.cancel()
                    break
                }
                requests.yield(progressRequest)
            }
            requests.finish()
        }
        // Fires when the consumer's stream and every iterator are gone, or its task is cancelled.
        continuation.onTermination = { _ in
            task.cancel()
            liveness.cancel()
        }
        // The response head can come before etcd registered the watch; bound the wait for "created" too.
        let timeout = configuration.requestTimeout
        let watchdog = Task {
            try? await Task.sleep(for: timeout)
            guard !Task.isCancelled else { return }
            pump.giveUpWaiting(seconds: GatewayTransport.seconds(timeout))
            task.cancel()
        }
        defer { watchdog.cancel() }

        var iterator = stream.makeAsyncIterator()
        switch await iterator.next() {
        case .created(let revision, let clusterID)?:
            return EtcdWatch(stream: stream, pump: task, createdRevision: revision, clusterID: clusterID)
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

/// What one gateway message of a watch carried: its changes in revision order, or none for a
/// progress notification, and the store's revision when etcd sent it.
public struct WatchBatch: RandomAccessCollection, Sendable, Equatable {
    public var events: [WatchEvent]
    /// The response header's revision: for progress, every change up to it has been delivered.
    public var revision: Int64

    public init(events: [WatchEvent], revision: Int64) {
        self.events = events
        self.revision = revision
    }

    /// No events: etcd confirmed the watch is current up to `revision`.
    public var isProgress: Bool { events.isEmpty }

    public var startIndex: Int { events.startIndex }
    public var endIndex: Int { events.endIndex }
    public subscript(position: Int) -> WatchEvent { events[position] }
}

/// The changes under a prefix, one batch per gateway message, in revision order, with progress
/// notifications as empty batches.
///
/// Iteration throws `EtcdError`: `.compacted(revision:)` when the start revision was compacted (re-read,
/// then watch from the read's revision + 1), `.watchClosed` when the server ended the stream, `.server`
/// when the gateway reported an error, `.unreachable` when the connection broke, `.watchSilent` when
/// neither events nor progress came within the silence limit. After any of these,
/// watch again from the last revision seen + 1. `cancel()`, cancelling the iterating task, or dropping
/// the watch and its iterators closes the HTTP stream; iteration then ends with nil.
/// Batches are buffered without bound until consumed, so consume them promptly.
public struct EtcdWatch: AsyncSequence, Sendable {
    public typealias Element = WatchBatch
    public typealias Failure = EtcdError

    let stream: AsyncStream<WatchSignal>
    let pump: Task<Void, Never>
    /// The store's revision when etcd created the watch: lower than a revision already seen means
    /// the store went back (restored from a backup or from nothing).
    public let createdRevision: Int64
    /// The etcd cluster that holds the watch (a uint64's bit pattern; 0 when it did not say).
    public let clusterID: Int64

    /// Closes the HTTP stream; batches already received are still delivered, then iteration ends.
    public func cancel() {
        pump.cancel()
    }

    public func makeAsyncIterator() -> Iterator {
        Iterator(base: stream.makeAsyncIterator())
    }

    public struct Iterator: AsyncIteratorProtocol {
        public typealias Element = WatchBatch
        public typealias Failure = EtcdError

        var base: AsyncStream<WatchSignal>.Iterator
        var finished = false

        public mutating func next() async throws(EtcdError) -> WatchBatch? {
            while !finished {
                switch await base.next() {
                case .batch(let batch)?:
                    return batch
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
    case created(revision: Int64, clusterID: Int64)
    case batch(WatchBatch)
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
    private let clock = ContinuousClock()
    private let start: ContinuousClock.Instant
    /// Nanoseconds from `start` to the last message read (any message: events, progress, creation).
    private let lastHeard = Atomic<Int64>(0)

    init(operation: String, endpoint: String, continuation: AsyncStream<WatchSignal>.Continuation) {
        self.operation = operation
        self.endpoint = endpoint
        self.continuation = continuation
        start = clock.now
    }

    /// How long since the stream last said anything (or since the watch began).
    func silence() -> Duration {
        (clock.now - start) - .nanoseconds(lastHeard.load(ordering: .relaxed))
    }

    func giveUpSilent(seconds: Double) {
        fail(.watchSilent(seconds: seconds))
    }

    func run(_ body: HTTP1Stream) async {
        defer { body.close() }
        var splitter = LineSplitter()
        do throws(HTTP1Error) {
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
            continuation.yield(
                .failure(EtcdError(operation: operation, endpoint: endpoint, reason: .timedOut(seconds: seconds)))
            )
            continuation.finish()
        }
    }

    /// Acts on one gateway message; false once the watch is over.
    private func handle(_ line: [UInt8]) -> Bool {
        lastHeard.store((clock.now - start).nanoseconds, ordering: .relaxed)
        let message: WatchMessage
        do {
            message = try WatchMessage.decode(line)
        } catch {
            fail(.malformedResponse(error.detail))
            return false
        }
        switch message {
        case .created(let revision, let clusterID):
            return phase.withLock { phase in
                guard phase == .waiting else { return false }
                phase = .confirmed
                continuation.yield(.created(revision: revision, clusterID: clusterID))
                return true
            }
        case .progress(let revision):
            continuation.yield(.batch(WatchBatch(events: [], revision: revision)))
            return true
        case .events(let events, let revision):
            continuation.yield(.batch(WatchBatch(events: events, revision: revision)))
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
