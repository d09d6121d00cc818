import Foundation

/// Cuts the gateway's streamed body into lines. The gateway writes one JSON object and "\n" per
/// message, but HTTP chunks and TCP reads cut anywhere, so a message can arrive in pieces or several at once.
struct LineSplitter {
    /// A longer line is refused rather than buffered without bound (the default is the body cap unary calls use).
    let maximumLine: Int
    private var pending: [UInt8] = []
    /// Bytes of `pending` already known to hold no newline, so each byte is scanned once.
    private var scanned = 0

    init(maximumLine: Int = 64 << 20) {
        self.maximumLine = maximumLine
    }

    /// Adds `bytes`; returns the lines they completed, without their "\n", blank ones skipped.
    /// Nil if the unfinished line grew past `maximumLine`.
    mutating func append(_ bytes: some Collection<UInt8>) -> [[UInt8]]? {
        pending.append(contentsOf: bytes)
        var lines: [[UInt8]] = []
        var lineStart = 0
        var index = scanned
        while index < pending.count {
            if pending[index] == UInt8(ascii: "\n") {
                let line = pending[lineStart..<index]
                if line.contains(where: { !Self.isBlank($0) }) { lines.append(Array(line)) }
                lineStart = index + 1
            }
            index += 1
        }
        pending.removeFirst(lineStart)
        scanned = pending.count
        return pending.count > maximumLine ? nil : lines
    }

    /// What is left when the stream ends: the gateway writes its final error object without a newline.
    mutating func finish() -> [UInt8]? {
        defer {
            pending = []
            scanned = 0
        }
        return pending.contains(where: { !Self.isBlank($0) }) ? pending : nil
    }

    private static func isBlank(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\t")
            || byte == UInt8(ascii: "\n")
    }
}

/// One message of a watch stream, as the client acts on it.
enum WatchMessage: Equatable {
    /// The first message: etcd registered the watch, at the store's `revision`, in `clusterID`.
    case created(revision: Int64, clusterID: Int64)
    /// No events (a progress notification); the store has reached `revision`.
    case progress(revision: Int64)
    /// Changes, in revision order, and the header's revision.
    case events([WatchEvent], revision: Int64)
    /// The start revision was compacted: etcd canceled the watch.
    case compacted(revision: Int64)
    /// etcd canceled the watch for another reason: a bad auth token or a denied permission, given
    /// as "rpc error: code = Unauthenticated desc = etcdserver: invalid auth token" and split here.
    case canceled(code: Int, reason: String)
    /// The gateway's final {"error": {...}} object: the gRPC stream broke.
    case failed(code: Int, message: String)

    /// Decodes one line; throws a short description of what was wrong with it.
    static func decode(_ line: [UInt8]) throws(WatchDecodingError) -> WatchMessage {
        let chunk: Wire.WatchChunk
        do {
            chunk = try JSONDecoder().decode(Wire.WatchChunk.self, from: Data(line))
        } catch {
            throw WatchDecodingError(
                detail: "\(GatewayTransport.snippet(line)): \(GatewayTransport.decodingProblem(error))"
            )
        }
        if let error = chunk.error {
            return .failed(
                code: error.grpc_code ?? error.code ?? 2,
                message: error.message ?? error.error ?? "unknown error"
            )
        }
        guard let result = chunk.result else {
            throw WatchDecodingError(detail: "\(GatewayTransport.snippet(line)): neither result nor error")
        }
        let revision = result.header?.revision?.value ?? 0
        if result.canceled == true {
            // etcd ≥ 3.4 sets compact_revision only when the start revision is gone.
            if let compacted = result.compact_revision?.value, compacted > 0 { return .compacted(revision: compacted) }
            let reason = result.cancel_reason ?? ""
            if reason.isEmpty { return .canceled(code: 1, reason: "etcd canceled the watch") }
            return splitRPCError(reason)
        }
        if result.created == true {
            return .created(revision: revision, clusterID: result.header?.cluster_id?.value ?? 0)
        }
        let events = result.events ?? []
        if events.isEmpty { return .progress(revision: revision) }
        return .events(
            try events.map { (event) throws(WatchDecodingError) in
                guard let kv = event.kv else { throw WatchDecodingError(detail: "an event without kv") }
                switch event.type ?? "PUT" {
                case "PUT": return WatchEvent(kind: .put, kv: KeyValue(kv))
                case "DELETE": return WatchEvent(kind: .delete, kv: KeyValue(kv))
                case let other: throw WatchDecodingError(detail: "event type \"\(other)\"")
                }
            },
            revision: revision
        )
    }
}

/// Go's grpc status text, "rpc error: code = <Name> desc = <message>", as (code number, message);
/// anything else is kept whole with code 1 (Canceled).
private func splitRPCError(_ text: String) -> WatchMessage {
    let names = [
        "Canceled": 1, "Unknown": 2, "InvalidArgument": 3, "DeadlineExceeded": 4, "NotFound": 5, "AlreadyExists": 6,
        "PermissionDenied": 7, "ResourceExhausted": 8, "FailedPrecondition": 9, "Aborted": 10, "OutOfRange": 11,
        "Unimplemented": 12, "Internal": 13, "Unavailable": 14, "DataLoss": 15, "Unauthenticated": 16,
    ]
    guard let codeMarker = text.range(of: "code = "),
        let descMarker = text.range(of: " desc = ", range: codeMarker.upperBound..<text.endIndex),
        let code = names[String(text[codeMarker.upperBound..<descMarker.lowerBound])]
    else { return .canceled(code: 1, reason: text) }
    return .canceled(code: code, reason: String(text[descMarker.upperBound...]))
}

struct WatchDecodingError: Error {
    let detail: String
}
