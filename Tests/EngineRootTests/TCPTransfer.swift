import Addressing
import CShims
import Foundation
import Glibc
import TestSupport
import TestThreads

/// A TCP stream of `byteCount` seeded random bytes from a socket made in `client` to one listening
/// in `server`, both in this process: what arrived, compared byte for byte with what was sent.
/// The sender writes 64 KB at a time, so the kernel hands the TUN super-packets when it has
/// offloads; a payload moved, dropped or reordered in coalescing shows up as a mismatch (the
/// receiving kernel trusts a CHECKSUM_PARTIAL super-packet, so checksums alone would not catch it).
/// No rate is asserted: a slow bed only takes longer (up to `timeout` seconds).
struct TCPTransfer: CustomStringConvertible {
    let sent: Int
    let received: Int
    /// Offset of the first byte that differs from what was sent, nil when all agree.
    let firstMismatch: Int?

    var isComplete: Bool { sent == received && firstMismatch == nil }
    var description: String {
        "sent \(sent) bytes, received \(received)" + (firstMismatch.map { ", first mismatch at byte \($0)" } ?? "")
    }

    /// The 1 MB pattern the stream repeats, each copy stamped with its index so a block moved by a
    /// whole period still mismatches.
    private static let pattern: [UInt8] = {
        var random = SplitMix64(seed: 0x7CB_7_2A_F5)
        return (0..<(1 << 20) / 8).flatMap { _ in withUnsafeBytes(of: random.next()) { Array($0) } }
    }()

    /// Writes the stream's bytes `offset ..< offset + buffer.count` into `buffer`.
    private static func fill(_ buffer: UnsafeMutableRawBufferPointer, at offset: Int) {
        pattern.withUnsafeBytes { pattern in
            var done = 0
            while done < buffer.count {
                let block = (offset + done) / pattern.count
                let within = (offset + done) % pattern.count
                let piece = min(buffer.count - done, pattern.count - within)
                (buffer.baseAddress! + done).copyMemory(from: pattern.baseAddress! + within, byteCount: piece)
                for stamp in within..<max(within, min(8, within + piece)) {
                    buffer[done + stamp - within] = UInt8(truncatingIfNeeded: block >> (stamp * 8))
                }
                done += piece
            }
        }
    }

    static func run(
        from client: TestNamespace,
        to server: TestNamespace,
        address: IPv4Address,
        port: UInt16 = 5301,
        byteCount: Int = 48 << 20,
        timeout: Double = 60
    ) throws -> TCPTransfer {
        let listener = try server.enter { try openTCP(address, port: port, listen: true) }
        defer { close(listener) }
        let sender = try client.enter { try openTCP(nil, port: 0, listen: false) }
        defer { close(sender) }
        // A path that stops delivering must fail the test, not block a send until TCP gives up; nor
        // may one that carries next to nothing (only retransmissions get through), whose sends each
        // make a little progress: each send waits at most a second, the whole stream `timeout`.
        var wait = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(sender, SOL_SOCKET, SO_SNDTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        let deadline = ContinuousClock.now + .seconds(timeout)

        let receiver = Receiver(listener: listener, timeout: timeout)
        let thread = Thread { receiver.run() }
        thread.start()

        var target = sockaddr_in(address, port: port)
        let connected = withUnsafePointer(to: &target) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(sender, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw TestFailure("connect \(address):\(port): errno \(errno)") }
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        var sent = 0
        while sent < byteCount {
            let count = min(chunk.count, byteCount - sent)
            chunk.withUnsafeMutableBytes { fill(UnsafeMutableRawBufferPointer(rebasing: $0[..<count]), at: sent) }
            var offset = 0
            while offset < count {
                let written = chunk.withUnsafeBytes {
                    Glibc.send(sender, $0.baseAddress! + offset, count - offset, Int32(MSG_NOSIGNAL))
                }
                let failure = errno
                guard ContinuousClock.now < deadline else {
                    throw TestFailure(
                        "send stalled: \(sent + offset + max(written, 0)) of \(byteCount) bytes in \(timeout) s"
                    )
                }
                if written < 0 && failure == EAGAIN { continue }
                guard written > 0 else {
                    throw TestFailure("send stalled after \(sent + offset) of \(byteCount) bytes: errno \(failure)")
                }
                offset += written
            }
            sent += count
        }
        shutdown(sender, Int32(SHUT_WR))
        guard receiver.done.wait(timeout: .now() + timeout) == .success else {
            throw TestFailure("receiver still reading \(timeout) s after \(sent) bytes were sent")
        }
        return TCPTransfer(sent: sent, received: receiver.received, firstMismatch: receiver.firstMismatch)
    }

    /// Accepts one connection and reads it to the end, checking every byte.
    private final class Receiver: @unchecked Sendable {
        let listener: Int32
        let timeout: Double
        let done = DispatchSemaphore(value: 0)
        var received = 0
        var firstMismatch: Int?

        init(listener: Int32, timeout: Double) {
            self.listener = listener
            self.timeout = timeout
        }

        func run() {
            defer { done.signal() }
            guard weft_poll_readable(listener, Int32(timeout * 1000)) == 1 else { return }
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            defer { close(connection) }
            var buffer = [UInt8](repeating: 0, count: 256 << 10)
            var expected = buffer
            while weft_poll_readable(connection, Int32(timeout * 1000)) == 1 {
                let count = buffer.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
                guard count > 0 else { return }
                if firstMismatch == nil {
                    expected.withUnsafeMutableBytes {
                        TCPTransfer.fill(UnsafeMutableRawBufferPointer(rebasing: $0[..<count]), at: received)
                    }
                    if memcmp(buffer, expected, count) != 0 {
                        firstMismatch = received + (0..<count).first { buffer[$0] != expected[$0] }!
                    }
                }
                received += count
            }
        }
    }
}

/// A TCP socket made in the calling thread's namespace, bound to `address`:`port` when given and
/// listening when asked. The caller closes it.
private func openTCP(_ address: IPv4Address?, port: UInt16, listen listening: Bool) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket: errno \(errno)") }
    var one: Int32 = 1
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    if let address {
        var local = sockaddr_in(address, port: port)
        let bound = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else {
            close(fd)
            throw TestFailure("bind \(address):\(port): errno \(errno)")
        }
    }
    if listening {
        guard listen(fd, 1) == 0 else {
            close(fd)
            throw TestFailure("listen: errno \(errno)")
        }
    }
    return fd
}

extension sockaddr_in {
    fileprivate init(_ address: IPv4Address, port: UInt16) {
        self.init()
        sin_family = sa_family_t(AF_INET)
        sin_port = port.bigEndian
        sin_addr.s_addr = address.networkOrder
    }
}
