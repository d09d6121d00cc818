import EtcdTestSupport
import Foundation
import Glibc
import HTTP1
import NIOCore
import NIOPosix
import TestSupport
import Testing

@testable import Etcd

/// TCP keepalive on the etcd client's connections, seen from the kernel: etcd runs in a network
/// namespace of its own and its traffic is dropped (no reset, no answer) while the client holds a
/// pooled connection and a watch. The watch's own liveness check is switched off here, so only
/// the kernel can end the connections.
@Suite(.serialized, .enabled(if: EtcdNamespace.missing == nil, "\(EtcdNamespace.missing ?? "")"))
struct KeepaliveTests {
    @Test(.timeLimit(.minutes(4)))
    func aBlackHoledEtcdIsNoticedWithinTheKeepaliveBoundAndTheClientRecoversAfterHealing() async throws {
        try await EtcdNamespace.with { namespace in
            try await TestEtcd.with(namespace: namespace.name) { etcd in
                let port = try #require(Origin(etcd.endpoint)?.port)
                let group = try await namespace.eventLoopGroup()
                var configuration = EtcdClient.Configuration()
                configuration.watchProgressInterval = .seconds(3600)
                configuration.watchSilenceLimit = .seconds(3600)
                let client = try EtcdClient(endpoints: [etcd.endpoint], configuration: configuration, group: group)
                defer {
                    Task {
                        try? await client.shutdown()
                        try? await group.shutdownGracefully()
                    }
                }
                try await client.put("/ka/a", "1")
                let watch = try await client.watch(prefix: "/ka/", fromRevision: 0)
                let consumer = Task { await ending(of: watch) }
                try await Task.sleep(for: .milliseconds(500))

                // The kernel's view: both of this process's connections to etcd (the pooled one and
                // the watch's) carry a keepalive timer, which it shows only with SO_KEEPALIVE on.
                let ours = try await namespace.connections(toPort: port).filter { $0.contains("pid=\(getpid()),") }
                #expect(ours.count == 2, "\(ours)")
                #expect(ours.allSatisfy { $0.contains("timer:(keepalive,") }, "\(ours)")
                #expect(client.transport.http.openConnections == 2)

                try await namespace.blackHole(port: port)
                let dropped = ContinuousClock.now
                let outcome = try await within(seconds: 120, consumer)
                let waited = ContinuousClock.now - dropped
                print("the black-holed watch ended after \(waited): \(String(describing: outcome.error))")
                guard case .unreachable(_, let lastError)? = outcome.error?.reason else {
                    Issue.record("expected a broken stream, got \(String(describing: outcome.error))")
                    try await namespace.heal()
                    return
                }
                #expect(lastError.contains("the watch stream broke"), "\(lastError)")
                // The user timeout (30 s) counts from the last answer, just before the drop; the
                // upper bound leaves room for a loaded machine and still fails Linux's default
                // keepalive (two hours) or none at all.
                #expect(waited >= .seconds(15) && waited < TCPKeepalive().bound + .seconds(20), "\(waited)")
                // The idle pooled connection went the same way, without a request to find it dead.
                #expect(await eventually(timeout: .seconds(20)) { client.transport.http.openConnections == 0 })

                try await namespace.heal()
                let healed = try await within(seconds: 60) { () async throws -> [String] in
                    while true {
                        if let result = try? await client.get("/ka/a") { return result.kvs.map(\.value) }
                        try await Task.sleep(for: .milliseconds(200))
                    }
                }
                #expect(healed == ["1"])
            }
        }
    }
}

/// Iterates `watch` to its end: how many events came, and the error it ended with (nil: cancelled).
func ending(of watch: EtcdWatch) async -> (events: Int, error: EtcdError?) {
    var seen = 0
    do throws(EtcdError) {
        for try await batch in watch { seen += batch.count }
        return (seen, nil)
    } catch {
        return (seen, error)
    }
}
