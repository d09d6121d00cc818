import CShims
import Foundation
import Glibc
import Synchronization

/// A network namespace of its own for one test: `ip netns add` on creation, `ip netns del` in
/// `withTestNamespace`'s defer whatever the body does. The body runs on a dedicated thread that
/// has entered the namespace with setns, because a network namespace is a per-thread attribute
/// and Swift Testing's cooperative threads must not be moved.
public final class TestNamespace: Sendable {
    public let name: String

    private static let counter = Mutex(0)

    /// Why the engine tests cannot run here, or nil.
    public static let missing: String? = {
        guard getuid() == 0 else { return "not root: network namespaces and TUN devices need it" }
        for tool in ["/usr/sbin/ip", "/usr/bin/ping"] where !FileManager.default.isExecutableFile(atPath: tool) {
            return "\(tool) is not installed (scripts/setup installs it)"
        }
        return nil
    }()

    public init(name: String) { self.name = name }

    public static func with<T: Sendable>(_ body: @Sendable (TestNamespace) throws -> T) throws -> T {
        let serial = counter.withLock { value -> Int in
            value += 1
            return value
        }
        let namespace = TestNamespace(name: "weft-engine-\(getpid())-\(serial)")
        let (status, output) = try run(["netns", "add", namespace.name])
        guard status == 0 else { throw TestFailure("ip netns add \(namespace.name): \(output)") }
        defer { _ = try? run(["netns", "del", namespace.name]) }
        return try body(namespace)
    }

    /// Runs `body` on a new thread inside the namespace and waits for it.
    public func enter<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
        try inNetworkNamespace(name, body)
    }

    /// `ip -n <namespace> arguments…`; the exit status and the combined output.
    public func ip(_ arguments: String...) throws -> (Int32, String) {
        try Self.run(["-n", name] + arguments)
    }

    /// Starts `command` inside the namespace without waiting.
    public func start(_ command: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        process.arguments = ["netns", "exec", name] + command
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    public static func run(_ arguments: [String]) throws -> (Int32, String) { try runIP(arguments) }
}

public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
