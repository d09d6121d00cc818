import Addressing
import CShims
import Dispatch
import Foundation
import Glibc
import Synchronization

/// flanneld's --healthz-ip/--healthz-port endpoint: GET /healthz is 200 while the process runs,
/// GET /readyz is 200 once `readiness` says so and 503 with the reason before. A plain socket and
/// one thread: probes come a few times a minute, one at a time, so an event loop would buy nothing.
public final class HealthServer: Sendable {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// The port actually bound (the asked one, or the kernel's pick when asked for 0).
    public let port: UInt16
    public let address: IPv4Address
    private let listener: Int32
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let readiness: Readiness
    private let finished = DispatchSemaphore(value: 0)
    private enum Phase { case bound, serving, closed }
    private let phase = Mutex(Phase.bound)

    /// Binds and listens; `start` serves. Port 0 takes an ephemeral port (tests); weftd itself
    /// never builds a server for --healthz-port=0.
    public init(address: IPv4Address, port: UInt16, readiness: Readiness) throws(Failure) {
        func fail(_ call: String) -> Failure {
            Failure(description: "health server on \(address):\(port): \(call) failed: \(String(cString: strerror(errno))); choose another --healthz-ip/--healthz-port")
        }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw fail("socket") }
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_port = port.bigEndian
        local.sin_addr.s_addr = address.networkOrder
        let bound = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            let failure = fail(bound == 0 ? "listen" : "bind")
            close(fd)
            throw failure
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        var pipeEnds: [Int32] = [-1, -1]
        guard weft_pipe(&pipeEnds) == 0 else {
            let failure = fail("pipe2")
            close(fd)
            throw failure
        }
        self.listener = fd
        self.wakeRead = pipeEnds[0]
        self.wakeWrite = pipeEnds[1]
        self.port = UInt16(bigEndian: local.sin_port)
        self.address = address
        self.readiness = readiness
    }

    deinit {
        if phase.withLock({ $0 }) != .closed { close(listener) }
        close(wakeRead)
        close(wakeWrite)
    }

    public func start() {
        guard phase.withLock({ phase in
            defer { if phase == .bound { phase = .serving } }
            return phase == .bound
        }) else { return }
        let thread = Thread { [self] in
            serve()
            finished.signal()
        }
        thread.name = "weftd-healthz"
        thread.start()
    }

    /// Waits for the serving thread (at most one request's 2 s timeout) and closes the port.
    public func stop() {
        let previous = phase.withLock { phase in
            defer { phase = .closed }
            return phase
        }
        if previous == .serving {
            var byte: UInt8 = 1
            _ = write(wakeWrite, &byte, 1)
            finished.wait()
        }
        if previous != .closed { close(listener) }
    }

    private func serve() {
        while true {
            var fds = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            let ready = poll(&fds, 2, -1)
            if ready < 0 && errno == EINTR { continue }
            if ready < 0 || fds[1].revents != 0 { return }
            guard fds[0].revents & Int16(POLLIN) != 0 else { continue }
            let client = weft_daemon_accept(listener)
            guard client >= 0 else { continue }
            answer(client)
            close(client)
        }
    }

    private func answer(_ client: Int32) {
        // A client that sends nothing must not hold the only serving thread for long.
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1024)
        let end: [UInt8] = Array("\r\n\r\n".utf8)
        while request.count < 8192 {
            let count = read(client, &buffer, buffer.count)
            if count <= 0 { break }
            request += buffer[0..<count]
            if request.firstRange(of: end) != nil { break }
        }
        let response = HealthServer.response(to: request, readiness: readiness.current)
        var bytes = Array(response.utf8)
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeMutableBytes { send(client, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { return }
            offset += sent
        }
    }

    /// The whole HTTP/1.1 response for a request's bytes; pure so every path is unit-testable.
    static func response(to request: [UInt8], readiness: Readiness.State) -> String {
        let head = String(decoding: request.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }, as: UTF8.self)
        let parts = head.split(separator: " ")
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else {
            return render(400, "Bad Request", "malformed request line; send e.g. GET /healthz HTTP/1.1", head: false)
        }
        let method = parts[0]
        let path = parts[1].split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]
        guard method == "GET" || method == "HEAD" else {
            return render(405, "Method Not Allowed", "only GET and HEAD are served", head: false)
        }
        let headOnly = method == "HEAD"
        switch path {
        case "/healthz":
            return render(200, "OK", "weftd is running", head: headOnly)
        case "/readyz":
            if readiness.isReady { return render(200, "OK", "weftd is ready: \(readiness.reason)", head: headOnly) }
            return render(503, "Service Unavailable", "weftd is not ready: \(readiness.reason)", head: headOnly)
        default:
            return render(404, "Not Found", "no such path; try /healthz or /readyz", head: headOnly)
        }
    }

    static func render(_ status: Int, _ phrase: String, _ line: String, head: Bool) -> String {
        let body = line + "\n"
        return "HTTP/1.1 \(status) \(phrase)\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
            + (head ? "" : body)
    }
}
