import CShims
import Glibc
import Logging

/// sd_notify(3) without libsystemd: one datagram per state ("READY=1", "STOPPING=1") to the unix
/// socket systemd names in NOTIFY_SOCKET; a leading '@' means the abstract namespace.
public struct SystemdNotifier: Sendable {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    public let socketPath: String

    /// nil when NOTIFY_SOCKET is unset or empty: not started by systemd with Type=notify.
    public init?(environment: [String: String]) {
        guard let path = environment["NOTIFY_SOCKET"], !path.isEmpty else { return nil }
        self.socketPath = path
    }

    public init(socketPath: String) {
        self.socketPath = socketPath
    }

    /// `send`, a failure logged as a warning: systemd not hearing a state is no reason to stop.
    public func send(_ state: String, warningTo logger: Logger) {
        do {
            try send(state)
        } catch {
            logger.warning("\(error)")
        }
    }

    public func send(_ state: String) throws(Failure) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var path = Array(socketPath.utf8)
        guard path.first == UInt8(ascii: "/") || path.first == UInt8(ascii: "@") else {
            throw Failure(
                description:
                    "NOTIFY_SOCKET=\(socketPath) is neither an absolute path nor an @abstract name; check the unit"
            )
        }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.count < capacity else {
            throw Failure(
                description: "NOTIFY_SOCKET is \(path.count) bytes, longer than a unix socket path (\(capacity - 1))"
            )
        }
        let abstract = path.first == UInt8(ascii: "@")
        if abstract { path[0] = 0 }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: path) }
        // Abstract names are not NUL-terminated: the length says where they end.
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.count + (abstract ? 0 : 1))

        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            throw Failure(description: "sd_notify socket failed: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let bytes = Array(state.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sockaddr in
                bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), sockaddr, length) }
            }
        }
        guard sent == bytes.count else {
            throw Failure(
                description: "sd_notify \(state) to \(socketPath) failed: \(String(cString: strerror(errno)))"
            )
        }
    }
}
