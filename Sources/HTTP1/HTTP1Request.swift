import NIOCore
import NIOHTTP1

/// One request: where it goes, its head, and its body.
public struct HTTP1Request: Sendable {
    public enum Body: Sendable {
        /// Sent whole, with its Content-Length.
        case bytes([UInt8])
        /// Sent part by part as they are yielded, each flushed at once; finishing the stream ends
        /// the body. With `length` the head says Content-Length (the server may wait for that many
        /// bytes before it answers), without it the body is chunked. `first` goes out with the
        /// head, on the event loop, so a server that waits for the body's first bytes gets them
        /// however busy the tasks that feed the stream are.
        case stream(AsyncStream<ByteBuffer>, length: Int64?, first: [UInt8] = [])
    }

    public var method: HTTPMethod
    public var origin: Origin
    /// The path and query, starting with "/".
    public var path: String
    /// Host and the body's framing are added; everything else (Authorization, Content-Type) is the caller's.
    public var headers: HTTPHeaders
    public var body: Body

    public init(method: HTTPMethod, origin: Origin, path: String, headers: HTTPHeaders = [:], body: Body = .bytes([])) {
        self.method = method
        self.origin = origin
        self.path = path
        self.headers = headers
        self.body = body
    }

    var head: HTTPRequestHead {
        var headers = headers
        headers.replaceOrAdd(name: "Host", value: origin.authority)
        switch body {
        case .bytes(let bytes):
            if !bytes.isEmpty || method == .POST || method == .PUT || method == .PATCH {
                headers.replaceOrAdd(name: "Content-Length", value: String(bytes.count))
            }
        case .stream(_, let length?, _):
            headers.replaceOrAdd(name: "Content-Length", value: String(length))
        case .stream(_, nil, _):
            headers.replaceOrAdd(name: "Transfer-Encoding", value: "chunked")
        }
        return HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)
    }
}

/// A whole answer to a unary call.
public struct HTTP1Response: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: [UInt8]
}
