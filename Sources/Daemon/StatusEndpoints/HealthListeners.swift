import Addressing
import CShims
import Foundation
import Glibc

/// The listening sockets, made here rather than by NIO's bind: NIO binds and listens in one step,
/// so a Unix socket would accept connections at the umask's mode before a chmod could narrow it
/// (and a process-wide umask would race the daemon's other file writes); and NIO does not set
/// close-on-exec, which keeps the nft that weftd runs from inheriting the listener.
extension HealthServer {
    /// The backlog between the kernel's accept and ours: a burst of connections beyond it would
    /// wait for SYN retransmits instead of reaching the cap's displacement.
    static let backlog: Int32 = 128

    static func tcpListener(
        address: IPv4Address,
        port: UInt16,
        fail: (String) -> Failure
    ) throws(Failure) -> (Int32, UInt16) {
        func failed(_ call: String) -> Failure { fail("\(call) failed: \(String(cString: strerror(errno)))") }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw failed("socket") }
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_port = port.bigEndian
        local.sin_addr.s_addr = address.networkOrder
        let bound = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(fd, backlog) == 0 else {
            let failure = failed(bound == 0 ? "listen" : "bind")
            close(fd)
            throw failure
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, UInt16(bigEndian: local.sin_port))
    }

    /// A listening Unix socket at `path`, mode 0600, and its inode.
    static func unixListener(path: String, fail: (String) -> Failure) throws(Failure) -> (Int32, UInt64) {
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
                try FileManager.default.createDirectory(
                    atPath: directory,
                    withIntermediateDirectories: true,
                    attributes: [.posixPermissions: 0o755]
                )
            } catch {
                throw fail("cannot create its directory: \(error.localizedDescription)")
            }
        }
        var existing = stat()
        if lstat(path, &existing) == 0 {
            guard existing.st_mode & S_IFMT == S_IFSOCK else {
                throw fail("the path exists and is not a socket; remove it")
            }
            if answers(&address) {
                throw fail("another weftd is serving there; give each weftd its own --status-socket")
            }
            guard unlink(path) == 0 || errno == ENOENT else { throw failed("removing the stale socket") }
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw failed("socket") }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0 else {
            let failure = failed("bind")
            close(fd)
            throw failure
        }
        // Before listen, nobody can connect: the mode is in place before the first client could be.
        var made = stat()
        guard chmod(path, 0o600) == 0, stat(path, &made) == 0, listen(fd, backlog) == 0 else {
            let failure = failed("chmod/listen")
            close(fd)
            unlink(path)
            throw failure
        }
        return (fd, UInt64(made.st_ino))
    }

    /// Whether something accepts connections at `address` (a live server, not a stale file).
    private static func answers(_ address: inout sockaddr_un) -> Bool {
        let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard probe >= 0 else { return false }
        defer { close(probe) }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(probe, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        } == 0
    }
}
