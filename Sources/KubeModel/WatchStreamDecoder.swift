/// Cuts a watch body into events. The API server writes one JSON object per line, but the bytes
/// arrive in whatever chunks TCP and chunked encoding make: a line may be split anywhere, a chunk
/// may hold several lines, and the last line may lack its newline when the stream ends.
///
///     decoder.append(chunk)
///     while let event = try decoder.next() { ... }
///     decoder.finish()   // at end of stream, then drain next() once more
public struct WatchStreamDecoder: Sendable {
    /// Far above a real Node (the API server stores at most 1.5 MiB per object) and small enough
    /// that a server or proxy that never sends a newline cannot grow the buffer without bound.
    public static let defaultMaximumLineLength = 8 << 20

    public let maximumLineLength: Int
    /// Events decoded so far, for messages.
    public private(set) var eventCount = 0
    private var buffer: [UInt8] = []
    /// Start of the first unconsumed byte in `buffer`.
    private var start = 0
    /// Bytes before this index (from `start`) hold no newline: the next search resumes there.
    private var scanned = 0
    private var finished = false

    public init(maximumLineLength: Int = WatchStreamDecoder.defaultMaximumLineLength) {
        self.maximumLineLength = maximumLineLength
    }

    public mutating func append(_ bytes: some Sequence<UInt8>) {
        buffer.append(contentsOf: bytes)
    }

    /// The stream ended: a final line without a newline becomes decodable.
    public mutating func finish() {
        finished = true
    }

    /// The next complete event, or nil until more bytes arrive (or, after `finish`, when done).
    public mutating func next() throws(KubeError) -> WatchEvent? {
        while true {
            guard let line = nextLine() else {
                let pending = buffer.count - start
                if pending > maximumLineLength {
                    throw KubeError(
                        .watchLineTooLong,
                        "watch event \(eventCount + 1) is longer than \(maximumLineLength) bytes without a newline",
                        fix:
                            "something between weftd and the API server is not passing the watch stream through line by line; weftd restarts the watch"
                    )
                }
                return nil
            }
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            guard line.count <= maximumLineLength else {
                throw KubeError(
                    .watchLineTooLong,
                    "watch event \(eventCount + 1) is \(line.count) bytes, more than the \(maximumLineLength) accepted",
                    fix:
                        "something between weftd and the API server is not passing the watch stream through line by line; weftd restarts the watch"
                )
            }
            eventCount += 1
            return try APIDecoding.decode(WatchEvent.self, from: line, what: "watch event \(eventCount)")
        }
    }

    private mutating func nextLine() -> ArraySlice<UInt8>? {
        if let newline = buffer[(start + scanned)...].firstIndex(of: 0x0A) {
            let line = buffer[start..<newline]
            start = newline + 1
            scanned = 0
            compactIfWorthIt()
            return line
        }
        scanned = buffer.count - start
        if finished && buffer.count > start {
            let line = buffer[start...]
            start = buffer.count
            scanned = 0
            return line
        }
        compactIfWorthIt()
        return nil
    }

    /// Bytes held, consumed ones included until the next compaction.
    var retainedByteCount: Int { buffer.count }

    /// Drops consumed bytes once they are the larger part, so appends stay amortised O(1).
    private mutating func compactIfWorthIt() {
        guard start > 0, start >= buffer.count - start else { return }
        buffer.removeSubrange(0..<start)
        start = 0
    }
}
