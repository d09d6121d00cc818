import EtcdTestSupport
import Foundation
import Testing

@testable import Etcd

@Suite(.enabled(if: TestEtcd.isAvailable, TestEtcd.skipMessage))
struct AuthTests {
    /// Turns on etcd's authentication with the one user it requires first (root).
    static func enableAuthentication(_ etcd: TestEtcd) async throws {
        _ = try await etcd.etcdctl("user", "add", "root:pw")
        _ = try await etcd.etcdctl("auth", "enable")
    }

    static func credentials(_ configuration: inout EtcdClient.Configuration) {
        configuration.username = "root"
        configuration.password = "pw"
    }

    @Test func credentialsCarryReadsWritesTransactionsAndWatches() async throws {
        try await TestEtcd.with { etcd in
            let client = try etcd.client(configure: Self.credentials)
            defer { Task { try? await client.shutdown() } }
            // Before auth is on, etcd answers "authentication is not enabled" and the client goes on without a token.
            let before = try await client.put("/auth/a", "1")
            #expect(client.transport.authentications.load(ordering: .relaxed) == 1)

            try await Self.enableAuthentication(etcd)
            // The first call after that finds no token and authenticates, once.
            let revision = try await client.put("/auth/b", "2")
            #expect(revision == before + 1)
            #expect(client.transport.authentications.load(ordering: .relaxed) == 2)
            #expect(try await etcd.etcdctl("get", "/auth/b", "--print-value-only", "--user=root:pw") == "2\n")
            #expect(try await client.range(prefix: "/auth/").kvs.map(\.value) == ["1", "2"])
            let created = try await client.transaction(
                compare: [.absent("/auth/c")],
                success: [.put(key: "/auth/c", value: "3", lease: nil)]
            )
            #expect(created.succeeded)
            let watch = try await client.watch(prefix: "/auth/", fromRevision: before)
            let events = try await within(seconds: 20) { try await collect(watch, events: 3).flatMap { $0 } }
            #expect(events.map(\.kv.key) == ["/auth/a", "/auth/b", "/auth/c"])
            watch.cancel()
            #expect(client.transport.authentications.load(ordering: .relaxed) == 2)
        }
    }

    @Test func withoutOrWithWrongCredentialsEachCallFailsWithOneLine() async throws {
        try await TestEtcd.with { etcd in
            try await Self.enableAuthentication(etcd)
            let anonymous = try etcd.client()
            defer { Task { try? await anonymous.shutdown() } }
            let noUser = EtcdError.Reason.server(code: 3, message: "etcdserver: user name is empty")
            do throws(EtcdError) {
                _ = try await anonymous.get("/auth/a")
                Issue.record("an anonymous read succeeded")
            } catch {
                #expect(error.reason == noUser)
                #expect(
                    error.description.hasSuffix(
                        "etcd has authentication enabled; give --etcd-username and --etcd-password"
                    )
                )
            }
            do throws(EtcdError) {
                _ = try await anonymous.put("/auth/a", "x")
                Issue.record("an anonymous write succeeded")
            } catch {
                #expect(error.reason == noUser)
            }
            // A watch learns it in the message that would have confirmed it.
            do throws(EtcdError) {
                _ = try await anonymous.watch(prefix: "/auth/", fromRevision: 0)
                Issue.record("an anonymous watch was created")
            } catch {
                #expect(error.reason == noUser)
            }

            let impostor = try etcd.client {
                $0.username = "root"
                $0.password = "guess"
            }
            defer { Task { try? await impostor.shutdown() } }
            do throws(EtcdError) {
                _ = try await impostor.get("/auth/a")
                Issue.record("a wrong password read")
            } catch {
                #expect(error.operation == "authenticate as root")
                #expect(
                    error.reason
                        == .server(code: 3, message: "etcdserver: authentication failed, invalid user ID or password")
                )
                #expect(
                    error.description.hasSuffix(
                        "etcd refused the credentials; check --etcd-username and --etcd-password"
                    )
                )
                #expect(!error.description.contains("guess"))
            }
            #expect(try await etcd.etcdctl("get", "/auth/a", "--user=root:pw") == "")
        }
    }

    /// Makes etcd forget every token it issued, as expiry does: disabling authentication drops its
    /// simple-token table, and the old token then reads "invalid auth token" (code 16), the same
    /// answer an expired one gets. Unlike a short --auth-token-ttl this cannot also expire the
    /// fresh token when a loaded machine delays the retry.
    static func forgetTokens(_ etcd: TestEtcd) async throws {
        _ = try await etcd.etcdctl("auth", "disable", "--user=root:pw")
        _ = try await etcd.etcdctl("auth", "enable", "--user=root:pw")
    }

    @Test func anExpiredTokenIsReplacedOnceAndTheCallRetried() async throws {
        try await TestEtcd.with { etcd in
            try await Self.enableAuthentication(etcd)
            let client = try etcd.client(configure: Self.credentials)
            defer { Task { try? await client.shutdown() } }
            let first = try await client.put("/auth/a", "1")
            let stale = try #require(client.transport.token.withLock { $0 })
            #expect(client.transport.authentications.load(ordering: .relaxed) == 1)

            try await Self.forgetTokens(etcd)
            // A transaction is never resent after a timeout, but a rejected token proves etcd applied nothing.
            let created = try await client.transaction(
                compare: [.absent("/auth/b")],
                success: [.put(key: "/auth/b", value: "2", lease: nil)]
            )
            #expect(created.succeeded)
            #expect(created.revision == first + 1)
            #expect(client.transport.authentications.load(ordering: .relaxed) == 2)
            #expect(client.transport.token.withLock { $0 } != stale)

            try await Self.forgetTokens(etcd)
            let watch = try await client.watch(prefix: "/auth/", fromRevision: first)
            let events = try await within(seconds: 20) { try await collect(watch, events: 2).flatMap { $0 } }
            #expect(events.map(\.kv.key) == ["/auth/a", "/auth/b"])
            watch.cancel()
            #expect(client.transport.authentications.load(ordering: .relaxed) == 3)
        }
    }
}
