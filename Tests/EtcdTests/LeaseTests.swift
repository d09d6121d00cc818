import Etcd
import Foundation
import Testing

@Suite(.enabled(if: TestEtcd.isAvailable, TestEtcd.skipMessage))
struct LeaseTests {
    @Test func aShortLeaseExpiresAndTakesItsKeysWithIt() async throws {
        try await TestEtcd.with { etcd in
            let client = try etcd.client()
            defer { Task { try? await client.shutdown() } }
            // etcd raises TTLs below its minimum (1.5 election timeouts = 2 s with default flags).
            let granted = ContinuousClock.now
            let lease = try await client.grantLease(ttl: 1)
            #expect(lease.ttl == 2)
            let listed = try await etcd.etcdctl("lease", "list")
            #expect(listed.contains(lease.id.description))
            try await client.put("/l/short", "x", lease: lease.id)
            #expect(try await client.get("/l/short").kvs.first?.lease == lease.id)

            #expect(try await eventually(seconds: 5) { try await client.get("/l/short").kvs.isEmpty })
            // Not before the granted TTL ran out: the lessor revokes on expiry, not early.
            #expect(ContinuousClock.now - granted >= .seconds(2))
            #expect(try await etcd.etcdctl("get", "/l/short") == "")
            #expect(try await client.timeToLive(lease: lease.id) == nil)
            // The lease manager's signal to grant a new lease and re-register.
            #expect(try await client.keepAliveOnce(lease: lease.id) == nil)
        }
    }

    @Test func keepAliveRestoresTheGrantedTTLAndKeepsKeysPastIt() async throws {
        try await TestEtcd.with { etcd in
            let client = try etcd.client()
            defer { Task { try? await client.shutdown() } }
            let lease = try await client.grantLease(ttl: 2)
            try await client.put("/l/kept", "x", lease: lease.id)
            // One and a half TTLs, renewed every 0.6 s.
            for _ in 0..<5 {
                try await Task.sleep(for: .milliseconds(600))
                #expect(try await client.keepAliveOnce(lease: lease.id) == 2)
            }
            #expect(try await client.get("/l/kept").kvs.map(\.value) == ["x"])
            try await Task.sleep(for: .milliseconds(1100))
            let left = try #require(try await client.timeToLive(lease: lease.id))
            #expect(left.grantedTTL == 2)
            // Under a second left: etcd answers TTL 0, which the gateway omits (not "lease gone").
            #expect(left.ttl <= 1)
            #expect(try await client.keepAliveOnce(lease: lease.id) == 2)
            let renewed = try #require(try await client.timeToLive(lease: lease.id))
            #expect(renewed.ttl >= 1)
        }
    }

    @Test func aRevokedLeaseIsLostAtOnce() async throws {
        try await TestEtcd.with { etcd in
            let client = try etcd.client()
            defer { Task { try? await client.shutdown() } }
            let lease = try await client.grantLease(ttl: 60)
            let other = try await client.grantLease(ttl: 60)
            #expect(lease.id != other.id)
            try await client.put("/l/a", "a", lease: lease.id)
            try await client.put("/l/b", "b", lease: other.id)
            #expect(try await client.keepAliveOnce(lease: lease.id) == 60)

            // Revoked by someone else (an operator with etcdctl): the owner learns it on its next renewal.
            _ = try await etcd.etcdctl("lease", "revoke", lease.id.description)
            #expect(try await client.keepAliveOnce(lease: lease.id) == nil)
            #expect(try await client.timeToLive(lease: lease.id) == nil)
            #expect(try await client.range(prefix: "/l/").kvs.map(\.key) == ["/l/b"])

            try await client.revokeLease(other.id)
            #expect(try await client.range(prefix: "/l/").kvs.isEmpty)
            do throws(EtcdError) {
                try await client.revokeLease(other.id)
                Issue.record("revoking a revoked lease succeeded")
            } catch {
                #expect(error.reason == .server(code: 5, message: "etcdserver: requested lease not found"))
                #expect(error.description.contains("the key or lease does not exist"))
            }
            // A lease that never existed reads the same as a lost one.
            #expect(try await client.keepAliveOnce(lease: LeaseID(0x1234_5678)) == nil)
        }
    }
}
