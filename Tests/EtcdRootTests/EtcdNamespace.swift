import CShims
import EtcdTestSupport
import Foundation
import Glibc
import NIOCore
import NIOPosix
import Synchronization

/// A network namespace of its own for one test, with only loopback up: etcd runs inside it, and
/// so does one event-loop thread of the test's, whose sockets are created there. `with` deletes
/// it whatever the body does.
final class EtcdNamespace: Sendable {
    let name: String

    private static let serial = Mutex(0)

    /// Why these tests cannot run here, or nil.
    static let missing: String? = {
        guard getuid() == 0 else { return "not root: network namespaces and nft need it" }
        for tool in ["/usr/sbin/ip", "/usr/sbin/nft", "/usr/bin/ss", TestEtcd.binary]
        where !FileManager.default.isExecutableFile(atPath: tool) {
            return "\(tool) is not installed"
        }
        return nil
    }()

    private init(name: String) { self.name = name }

    static func with<T>(_ body: (EtcdNamespace) async throws -> T) async throws -> T {
        let number = serial.withLock { value -> Int in
            value += 1
            return value
        }
        let namespace = EtcdNamespace(name: "weft-etcdka-\(getpid())-\(number)")
        try await must("/usr/sbin/ip", ["netns", "add", namespace.name])
        do {
            try await must("/usr/sbin/ip", ["-n", namespace.name, "link", "set", "lo", "up"])
            let result = try await body(namespace)
            _ = try? await runTool("/usr/sbin/ip", ["netns", "del", namespace.name])
            return result
        } catch {
            _ = try? await runTool("/usr/sbin/ip", ["netns", "del", namespace.name])
            throw error
        }
    }

    /// A one-thread event loop group whose thread joined the namespace (a per-thread attribute):
    /// NIO opens a connection's socket on its event loop, so the connections live in the namespace.
    func eventLoopGroup() async throws -> MultiThreadedEventLoopGroup {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let path = "/var/run/netns/\(name)"
        let problem = try await group.next().submit { () -> String? in
            let descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { return "open \(path): \(String(cString: strerror(errno)))" }
            defer { close(descriptor) }
            let entered = weft_enter_network_namespace(descriptor)
            return entered == 0 ? nil : "setns \(path): \(String(cString: strerror(-entered)))"
        }.get()
        if let problem {
            try? await group.shutdownGracefully()
            throw TestEtcdFailure(problem)
        }
        return group
    }

    /// Drops every packet to and from `port` on the namespace's loopback: no reset, no answer,
    /// what a vanished host looks like. `heal()` removes the rule.
    func blackHole(port: Int) async throws {
        for command in [
            "add table inet weft_black_hole",
            "add chain inet weft_black_hole input { type filter hook input priority 0; policy accept; }",
            "add rule inet weft_black_hole input tcp dport \(port) drop",
            "add rule inet weft_black_hole input tcp sport \(port) drop",
        ] {
            try await must("/usr/sbin/ip", ["netns", "exec", name, "/usr/sbin/nft", command])
        }
    }

    func heal() async throws {
        try await must("/usr/sbin/ip", ["netns", "exec", name, "/usr/sbin/nft", "delete table inet weft_black_hole"])
    }

    /// `ss -tnoepH state established dport = :port` inside the namespace: one line per connection
    /// to `port`, with its timer and owning process.
    func connections(toPort port: Int) async throws -> [String] {
        try await must(
            "/usr/sbin/ip",
            ["netns", "exec", name, "/usr/bin/ss", "-tnoepH", "state", "established", "dport", "=", ":\(port)"]
        )
        .split(separator: "\n").map(String.init)
    }

    @discardableResult
    private static func must(_ tool: String, _ arguments: [String]) async throws -> String {
        let (status, output) = try await runTool(tool, arguments)
        guard status == 0 else { throw TestEtcdFailure("\(tool) \(arguments.joined(separator: " ")): \(output)") }
        return output
    }

    @discardableResult
    private func must(_ tool: String, _ arguments: [String]) async throws -> String {
        try await Self.must(tool, arguments)
    }
}
