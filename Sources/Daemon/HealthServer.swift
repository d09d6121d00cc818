import Addressing
import CShims
import Dispatch
import Foundation
import Glibc
import Status
import Synchronization

/// flanneld's --healthz-ip/--healthz-port endpoint: GET /healthz is 200 while the process runs,
/// GET /readyz is 200 once `readiness` says so and 503 with the reason before. With `status`, also
/// GET /metrics (Prometheus text) and GET /v1/routes, /v1/stats (JSON), which weftd serves on its
/// --status-socket too (same class, a Unix listener). A plain socket and one thread: probes and
/// scrapes come a few times a minute, one at a time, so an event loop would buy nothing.
public final class HealthServer: Sendable {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// The port actually bound (the asked one, or the kernel's pick when asked for 0); 0 for a Unix socket.
    public let port: UInt16
    public let address: IPv4Address
    /// The Unix socket's path, nil for TCP.
    public let socketPath: String?
    private let listener: Int32
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let readiness: Readiness
    private let status: (any StatusEndpoints)?
    /// The socket file's inode, so stop removes our file and not a successor's.
    private let socketInode: UInt64
    private let finished = DispatchSemaphore(value: 0)
    private enum Phase { case bound, serving, closed }
    private let phase = Mutex(Phase.bound)

    /// Binds and listens; `start` serves. Port 0 takes an ephemeral port (tests); weftd itself
    /// never builds a server for --healthz-port=0.
    public convenience init(address: IPv4Address, port: UInt16, readiness: Readiness,
                            status: (any StatusEndpoints)? = nil) throws(Failure) {
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
        try self.init(listener: fd, port: UInt16(bigEndian: local.sin_port), address: address, socketPath: nil, inode: 0,
                      readiness: readiness, status: status, fail: fail)
    }

    /// Listens on a Unix socket at `path`, mode 0600 (root only: the counters are the host's). A
    /// socket file nobody answers on (a crashed run's) is replaced; one a live weftd answers on,
    /// or a file that is not a socket, is refused. The directory is made if missing (0755).
    public convenience init(socketPath path: String, readiness: Readiness, status: (any StatusEndpoints)?) throws(Failure) {
        func fail(_ problem: String) -> Failure {
            Failure(description: "status socket \(path): \(problem); choose another --status-socket, or --status-socket= to turn it off")
        }
        func failed(_ call: String) -> Failure { fail("\(call) failed: \(String(cString: strerror(errno)))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw fail("the path must have 1 to \(MemoryLayout.size(ofValue: address.sun_path) - 1) bytes")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes + [0]) }
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty && !FileManager.default.fileExists(atPath: directory) {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o755])
            } catch {
                throw fail("cannot create its directory: \(error.localizedDescription)")
            }
        }
        var existing = stat()
        if lstat(path, &existing) == 0 {
            guard existing.st_mode & S_IFMT == S_IFSOCK else { throw fail("the path exists and is not a socket; remove it") }
            if Self.answers(&address) { throw fail("another weftd is serving there; give each weftd its own --status-socket") }
            guard unlink(path) == 0 || errno == ENOENT else { throw failed("removing the stale socket") }
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw failed("socket") }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else {
            let failure = failed("bind")
            close(fd)
            throw failure
        }
        // Before listen, nobody can connect: the mode is in place before the first client could be.
        var made = stat()
        guard chmod(path, 0o600) == 0, stat(path, &made) == 0, listen(fd, 16) == 0 else {
            let failure = failed("chmod/listen")
            close(fd)
            unlink(path)
            throw failure
        }
        try self.init(listener: fd, port: 0, address: IPv4Address(0), socketPath: path, inode: UInt64(made.st_ino),
                      readiness: readiness, status: status, fail: failed)
    }

    /// Whether something accepts connections at `address` (a live server, not a stale file).
    private static func answers(_ address: inout sockaddr_un) -> Bool {
        let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard probe >= 0 else { return false }
        defer { close(probe) }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(probe, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        } == 0
    }

    private init(listener fd: Int32, port: UInt16, address: IPv4Address, socketPath: String?, inode: UInt64,
                 readiness: Readiness, status: (any StatusEndpoints)?, fail: (String) -> Failure) throws(Failure) {
        var pipeEnds: [Int32] = [-1, -1]
        guard weft_pipe(&pipeEnds) == 0 else {
            let failure = fail("pipe2")
            close(fd)
            if let socketPath { unlink(socketPath) }
            throw failure
        }
        self.listener = fd
        self.wakeRead = pipeEnds[0]
        self.wakeWrite = pipeEnds[1]
        self.port = port
        self.address = address
        self.socketPath = socketPath
        self.socketInode = inode
        self.readiness = readiness
        self.status = status
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
        if previous != .closed {
            close(listener)
            removeSocketFile()
        }
    }

    private func removeSocketFile() {
        guard let socketPath else { return }
        var current = stat()
        if lstat(socketPath, &current) == 0, UInt64(current.st_ino) == socketInode { unlink(socketPath) }
    }

    private func serve() {
        while true {
            var fds = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            let ready = poll(&fds, 2, -1)
            if ready < 0 && errno == EINTR { continue }
            if ready < 0 || fds[1].revents != 0 { return }
            guard fds[0].revents & Int16(POLLIN) != 0 else { continue }
            let client = weft_accept(listener)
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
        var bytes = HealthServer.response(to: request, readiness: readiness.current, status: status)
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeMutableBytes { send(client, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { return }
            offset += sent
        }
    }

    /// The whole HTTP/1.1 response for a request's bytes; pure but for `status`'s reads, so every
    /// path is unit-testable.
    static func response(to request: [UInt8], readiness: Readiness.State, status: (any StatusEndpoints)? = nil) -> [UInt8] {
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
        case StatusSocket.metricsPath where status != nil:
            return render(200, "OK", body: Array(status!.metrics().utf8), type: "text/plain; version=0.0.4; charset=utf-8", head: headOnly)
        case StatusSocket.routesPath where status != nil:
            return json(status!.routes(), readiness: readiness, head: headOnly)
        case StatusSocket.statsPath where status != nil:
            return json(status!.stats(), readiness: readiness, head: headOnly)
        default:
            let paths = status == nil ? "/healthz or /readyz" : "/healthz, /readyz, /metrics, /v1/routes or /v1/stats"
            return render(404, "Not Found", "no such path; try \(paths)", head: headOnly)
        }
    }

    /// A report as sorted JSON, or 503 while there is no dataplane to report on.
    private static func json<Report: Encodable>(_ report: Report?, readiness: Readiness.State, head: Bool) -> [UInt8] {
        guard let report else {
            return render(503, "Service Unavailable", "weftd has no dataplane yet: \(readiness.reason)", head: head)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return render(200, "OK", body: try encoder.encode(report) + [UInt8(ascii: "\n")], type: "application/json", head: head)
        } catch {
            return render(500, "Internal Server Error", "cannot encode the report: \(error)", head: head)
        }
    }

    static func render(_ status: Int, _ phrase: String, _ line: String, head: Bool) -> [UInt8] {
        render(status, phrase, body: Array((line + "\n").utf8), type: "text/plain; charset=utf-8", head: head)
    }

    static func render<Body: Collection<UInt8>>(_ status: Int, _ phrase: String, body: Body, type: String, head: Bool) -> [UInt8] {
        var bytes = Array("HTTP/1.1 \(status) \(phrase)\r\nContent-Type: \(type)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n".utf8)
        if !head { bytes += body }
        return bytes
    }
}
