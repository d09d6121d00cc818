import Foundation
import Glibc

/// Test-side clients written directly on sockets, independent of the code under test.
enum TestSockets {
    struct Response {
        let status: Int
        let headers: [String: String]
        let body: String
    }

    /// Sends `request` raw to 127.0.0.1:port and reads until the server closes.
    static func exchange(port: UInt16, _ request: String) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        defer { close(fd) }
        // Only ends a hang: answers take milliseconds.
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        let bytes = Array(request.utf8)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var reply: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            reply += buffer[0..<count]
        }
        return String(decoding: reply, as: UTF8.self)
    }

    /// A connected TCP socket to 127.0.0.1:port that has sent nothing.
    static func connect(port: UInt16) throws -> Int32 {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return try connect(AF_INET, &address)
    }

    /// A connected Unix stream socket to `path` that has sent nothing.
    static func connect(path: String) throws -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        return try connect(AF_UNIX, &address)
    }

    /// A stream socket of `family` connected to `address` (a sockaddr_in or sockaddr_un).
    private static func connect<Address>(_ family: Int32, _ address: inout Address) throws -> Int32 {
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<Address>.size))
            }
        }
        guard connected == 0 else {
            let code = errno
            close(fd)
            throw POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO)
        }
        return fd
    }

    /// Whether the server closed `fd` (EOF or reset, and nothing else sent) within `seconds`.
    static func closedByServer(_ fd: Int32, within seconds: Double) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&entry, 1, Int32(seconds * 1000)) == 1 else { return false }
        var byte: UInt8 = 0
        let count = recv(fd, &byte, 1, Int32(MSG_DONTWAIT))
        return count == 0 || (count < 0 && errno == ECONNRESET)
    }

    /// Reads what the server sends on `fd` until it closes it; nil if it is still open after `seconds`.
    static func readUntilClosed(_ fd: Int32, within seconds: Double) -> [UInt8]? {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let end = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < end {
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let milliseconds = Int32(max(0, (end - ContinuousClock.now) / .milliseconds(1)))
            guard poll(&entry, 1, milliseconds) == 1 else { return nil }
            let count = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if count == 0 || (count < 0 && errno == ECONNRESET) { return received }
            if count > 0 { received += buffer[..<count] }
        }
        return nil
    }

    /// Those of `fds` the server has not closed by the end of `seconds`, waiting for all at once.
    static func notClosedByServer(_ fds: some Collection<Int32>, within seconds: Double) -> [Int32] {
        var open = Array(fds)
        let end = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        repeat {
            var entries = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let milliseconds = Int32(max(0, (end - ContinuousClock.now) / .milliseconds(1)))
            guard poll(&entries, nfds_t(entries.count), milliseconds) > 0 else { break }
            open = open.filter { !closedByServer($0, within: 0) }
        } while !open.isEmpty && ContinuousClock.now < end
        return open
    }

    /// The process's open descriptors.
    static func openDescriptors() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
    }

    /// One request on a connection of its own; `Connection: close`, as `exchange` reads until the server closes.
    static func get(port: UInt16, _ path: String, method: String = "GET") throws -> Response {
        let raw = try exchange(
            port: port,
            "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: test\r\nConnection: close\r\n\r\n"
        )
        return parse(raw)
    }

    /// Sends `request` on the open connection `fd` and reads one response, framed by its
    /// Content-Length (no body after HEAD); nil if it is not whole within `seconds` (a hang guard).
    static func ask(_ fd: Int32, _ request: String, within seconds: Double = 20) -> Response? {
        let bytes = Array(request.utf8)
        guard bytes.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == bytes.count else {
            return nil
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let end = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < end {
            if let split = received.firstRange(of: Array("\r\n\r\n".utf8)) {
                let head = parse(String(decoding: received[..<split.lowerBound], as: UTF8.self))
                let length = request.hasPrefix("HEAD ") ? 0 : Int(head.headers["content-length"] ?? "") ?? 0
                if received.count - split.upperBound >= length {
                    return parse(String(decoding: received, as: UTF8.self))
                }
            }
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let milliseconds = Int32(max(0, (end - ContinuousClock.now) / .milliseconds(1)))
            guard poll(&entry, 1, milliseconds) == 1 else { return nil }
            let count = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if count == 0 || (count < 0 && errno != EAGAIN) { return nil }
            if count > 0 { received += buffer[..<count] }
        }
        return nil
    }

    static func parse(_ raw: String) -> Response {
        let parts = raw.components(separatedBy: "\r\n\r\n")
        let head = parts[0].components(separatedBy: "\r\n")
        let status = Int(head[0].split(separator: " ").dropFirst().first ?? "") ?? -1
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            if let colon = line.firstIndex(of: ":") {
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                    in: .whitespaces
                )
            }
        }
        return Response(status: status, headers: headers, body: parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    /// A bound unix datagram socket that collects what sd_notify sends; `name` starting with '@'
    /// binds in the abstract namespace.
    final class NotifyListener {
        let fd: Int32
        let name: String
        let path: String?

        init(abstract: Bool) throws {
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            let unique = "weftd-notify-\(getpid())-\(UUID().uuidString.prefix(8))"
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            var bytes: [UInt8]
            if abstract {
                name = "@" + unique
                path = nil
                bytes = [0] + Array(unique.utf8)
            } else {
                let file = FileManager.default.temporaryDirectory.appendingPathComponent(unique).path
                name = file
                path = file
                bytes = Array(file.utf8) + [0]
            }
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
            let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
            }
            guard bound == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }

        deinit {
            close(fd)
            if let path { unlink(path) }
        }

        /// The next datagram, or nil after the 5 s timeout.
        func receive() -> String? {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = recv(fd, &buffer, buffer.count, 0)
            guard count >= 0 else { return nil }
            return String(decoding: buffer[0..<count], as: UTF8.self)
        }
    }
}
