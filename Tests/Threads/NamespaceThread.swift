import CShims
import Foundation
import Glibc
import Synchronization

/// Why a body could not run inside a network namespace: the namespace file or setns failed.
public struct NamespaceEntryFailure: Error, CustomStringConvertible {
    public let description: String
}

/// Runs `body` on a new thread that has joined the network namespace `name` (an `ip netns`
/// name), waits for it, and returns its result. A network namespace is a per-thread attribute,
/// and Swift's pool threads must not be moved, so the thread exists only for `body`.
public func inNetworkNamespace<T: Sendable>(_ name: String, _ body: @escaping @Sendable () throws -> T) throws -> T {
    let result = Mutex<Result<T, any Error>?>(nil)
    let done = DispatchSemaphore(value: 0)
    let path = "/var/run/netns/\(name)"
    let thread = Thread {
        defer { done.signal() }
        let outcome: Result<T, any Error>
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            outcome = .failure(NamespaceEntryFailure(description: "open \(path): \(String(cString: strerror(errno)))"))
        } else {
            let entered = weft_enter_network_namespace(fd)
            close(fd)
            outcome =
                entered == 0
                ? Result { try body() }
                : .failure(NamespaceEntryFailure(description: "setns \(path): \(String(cString: strerror(-entered)))"))
        }
        result.withLock { $0 = outcome }
    }
    thread.start()
    done.wait()
    return try result.withLock { $0! }.get()
}

/// Runs `/usr/sbin/ip arguments…` and returns its exit status and its combined output.
public func runIP(_ arguments: [String]) throws -> (Int32, String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (process.terminationStatus, output)
}
