#if canImport(Glibc)
import Glibc
private let systemRead = Glibc.read
#elseif canImport(Darwin)
import Darwin
private let systemRead = Darwin.read
#endif

/// A kernel call that failed: which call (a system call, an ioctl, a netlink request), on what,
/// and the errno it left. The one error type for errno failures: the engine's (EngineError) and
/// netlink's (NetlinkError) are this type under their modules' names.
public struct SystemCallError: Error, Equatable, Sendable, CustomStringConvertible {
    public let operation: String
    public let subject: String
    public let code: Int32

    public init(_ operation: String, _ subject: String, code: Int32) {
        self.operation = operation
        self.subject = subject
        self.code = code
    }

    /// The system's words for `code` ("No such file or directory").
    public var reason: String { String(cString: strerror(code)) }

    public var description: String {
        subject.isEmpty
            ? "\(operation): \(reason) (errno \(code))" : "\(operation) \(subject): \(reason) (errno \(code))"
    }

    /// Turns a `-errno` return (the shims' convention) into a thrown error; passes non-negative
    /// results through.
    @discardableResult
    public static func check(
        _ result: Int32,
        _ operation: String,
        _ subject: @autoclosure () -> String
    ) throws(SystemCallError) -> Int32 {
        if result < 0 { throw SystemCallError(operation, subject(), code: -result) }
        return result
    }
}

/// The one place a call interrupted by a signal (EINTR) is retried, as NIO's System.swift does:
/// every loop over read, write, send, recv, poll and waitpid outside the io_uring workers goes
/// through here instead of keeping its own `if errno == EINTR { continue }`.
public enum SystemCall {
    /// Runs `body`, a call that returns -1 and sets errno on failure, again while it fails with
    /// EINTR; returns its result, or throws the errno it failed with.
    @inlinable
    public static func retrying<Result: SignedInteger>(
        _ call: String,
        _ subject: @autoclosure () -> String = "",
        _ body: () -> Result
    ) throws(SystemCallError) -> Result {
        while true {
            let result = body()
            if result >= 0 { return result }
            let code = errno
            if code != EINTR { throw SystemCallError(call, subject(), code: code) }
        }
    }

    /// Runs `body`, a CShims wrapper that returns -errno on failure, again while it returns
    /// -EINTR; returns the first other result, negative ones included (the caller tells EAGAIN
    /// from a failure). Allocation-free, for the recvmmsg worker's per-batch calls.
    @inlinable @inline(__always)
    public static func retryingNegatedErrno<Result: SignedInteger>(_ body: () -> Result) -> Result {
        while true {
            let result = body()
            if result != -Result(EINTR) { return result }
        }
    }

    /// write(2) until all of `bytes` is written.
    public static func writeAll(
        _ fd: Int32,
        _ bytes: [UInt8],
        _ subject: @autoclosure () -> String = ""
    ) throws(SystemCallError) {
        try all(bytes, "write", subject()) { write(fd, $0, $1) }
    }

    /// send(2) with MSG_NOSIGNAL until all of `bytes` is sent.
    public static func sendAll(
        _ fd: Int32,
        _ bytes: [UInt8],
        _ subject: @autoclosure () -> String = ""
    ) throws(SystemCallError) {
        try all(bytes, "send", subject()) { send(fd, $0, $1, Int32(MSG_NOSIGNAL)) }
    }

    /// `call` (write or send) on the rest of `bytes` until none is left: short writes continue.
    private static func all(
        _ bytes: [UInt8],
        _ name: String,
        _ subject: @autoclosure () -> String,
        _ call: (UnsafeRawPointer, Int) -> Int
    ) throws(SystemCallError) {
        var offset = 0
        while offset < bytes.count {
            offset += try retrying(name, subject()) {
                bytes.withUnsafeBytes { call($0.baseAddress! + offset, $0.count - offset) }
            }
        }
    }

    /// read(2) into `buffer`; 0 is end of file.
    public static func read(
        _ fd: Int32,
        into buffer: inout [UInt8],
        _ subject: @autoclosure () -> String = ""
    ) throws(SystemCallError) -> Int {
        try retrying("read", subject()) { buffer.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress, $0.count) } }
    }

    /// read(2) until end of file (a socket: the peer's end of stream): the bytes, or nil once they
    /// pass `limit`, where the caller says what it expected instead.
    public static func readAll(
        _ fd: Int32,
        limit: Int,
        chunkSize: Int = 16_384,
        _ subject: @autoclosure () -> String = ""
    ) throws(SystemCallError) -> [UInt8]? {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: chunkSize)
        while true {
            let count = try read(fd, into: &chunk, subject())
            if count == 0 { return bytes }
            bytes += chunk[0..<count]
            if bytes.count > limit { return nil }
        }
    }
}
