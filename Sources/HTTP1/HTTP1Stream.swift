import NIOCore
import NIOHTTP1
import Synchronization

/// A response whose body is read as it arrives (a watch), on a connection of its own that closes
/// when the body ends, when it fails, on `close()`, when the reading task is cancelled, or when
/// the stream is dropped. The request body, if it was a stream, keeps being sent meanwhile.
public final class HTTP1Stream: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    public typealias Failure = HTTP1Error

    public let head: HTTPResponseHead
    let connection: Connection
    private let writer: Task<Void, Never>?
    private let isIterated = Atomic(false)

    init(head: HTTPResponseHead, connection: Connection, writer: Task<Void, Never>?) {
        self.head = head
        self.connection = connection
        self.writer = writer
    }

    deinit {
        close()
    }

    public var status: HTTPResponseStatus { head.status }

    /// Closes the connection; a reader waiting for the body ends with `.cancelled`.
    public func close() {
        writer?.cancel()
        connection.close(HTTP1Error(.cancelled, "the stream from \(connection.origin) was closed"))
    }

    /// The body, read once: a second iterator finds it ended.
    public func makeAsyncIterator() -> Iterator {
        Iterator(stream: self, isFinished: isIterated.exchange(true, ordering: .relaxed))
    }

    /// The rest of the body, up to `maximum` bytes and within `timeout` (an error answer, say);
    /// closes the stream.
    public func collect(upTo maximum: Int, timeout: Duration) async throws(HTTP1Error) -> [UInt8] {
        let timer = connection.startRequest(
            deadline: .now() + .nanoseconds(timeout.nanoseconds),
            reason: HTTP1Error(.timedOut, "the body from \(connection.origin) did not end within \(timeout)")
        )
        defer {
            connection.finishRequest(timer)
            close()
        }
        var bytes: [UInt8] = []
        for try await buffer in self {
            guard bytes.count + buffer.readableBytes <= maximum else {
                throw HTTP1Error(.malformedResponse, "a body from \(connection.origin) larger than \(maximum) bytes")
            }
            bytes += buffer.readableBytesView
        }
        return bytes
    }

    public struct Iterator: AsyncIteratorProtocol {
        public typealias Element = ByteBuffer
        public typealias Failure = HTTP1Error

        let stream: HTTP1Stream
        var isFinished: Bool

        public mutating func next() async throws(HTTP1Error) -> ByteBuffer? {
            guard !isFinished else { return nil }
            do throws(HTTP1Error) {
                switch try await stream.connection.nextPart() {
                case .body(let buffer):
                    return buffer
                case .end:
                    isFinished = true
                    stream.close()
                    return nil
                case .head:
                    throw HTTP1Error(.malformedResponse, "\(stream.connection.origin) sent a second response head")
                }
            } catch {
                isFinished = true
                stream.close()
                throw error
            }
        }
    }
}
