import Etcd
import EtcdTestSupport
import Foundation
import TestSupport
import Testing

@Suite(.enabled(if: TestEtcd.isAvailable, TestEtcd.skipMessage))
struct LeaseTests {
    @Test func aShortLeaseExpiresAndTakesItsKeysWithIt() async throws {
        try await TestEtcd.with { etcd in
            let client = try etcd.client()
            defer { Task { try? await client.shutdown() } }
            // etcd raises TTLs below its minimum (1.5 election timeouts = 2 s with default flags).
            let minimum = try await client.grantLease(ttl: 1)
            #expect(minimum.ttl == 2)
            try await client.revokeLease(minimum.id)
            // Four seconds, not the minimum: on a loaded machine the put and the read back alone
            // have taken longer than two (seen with four builds running beside the tests).
            let granted = ContinuousClock.now
            let lease = try await client.grantLease(ttl: 4)
            let listed = try await etcd.etcdctl("lease", "list")
            #expect(listed.contains(lease.id.description))
            try await client.put("/l/short", "x", lease: lease.id)
            #expect(try await client.get("/l/short").kvs.first?.lease == lease.id)

            // Expected after about 4 s; the bound is five times that, so a loaded machine cannot fail it.
            #expect(try await eventually(timeout: .seconds(20)) { try await client.get("/l/short").kvs.isEmpty })
            // Not before the granted TTL ran out: the lessor revokes on expiry, not early.
            #expect(ContinuousClock.now - granted >= .seconds(4))
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
            // 5 s rather than etcd's 2 s minimum, renewed every second: a loaded machine may delay
            // a renewal by seconds without the lease expiring, which is not what is tested here.
            let granted = ContinuousClock.now
            let lease = try await client.grantLease(ttl: 5)
            try await client.put("/l/kept", "x", lease: lease.id)
            // Renewed until one and a half TTLs have passed since the grant.
            while ContinuousClock.now - granted < .milliseconds(7500) {
                try await Task.sleep(for: .seconds(1))
                #expect(try await client.keepAliveOnce(lease: lease.id) == 5)
            }
            #expect(try await client.get("/l/kept").kvs.map(\.value) == ["x"])
            try await Task.sleep(for: .milliseconds(1100))
            let left = try #require(try await client.timeToLive(lease: lease.id))
            #expect(left.grantedTTL == 5)
            // Over a second since the last renewal (more under load, never less).
            #expect(left.ttl <= 4)
            #expect(try await client.keepAliveOnce(lease: lease.id) == 5)
            // Without the renewal the time left could only have shrunk since `left`.
            let renewed = try #require(try await client.timeToLive(lease: lease.id))
            #expect(renewed.ttl > left.ttl, "renewed \(renewed), before \(left)")
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

/// The gateway's lease answers, replayed byte for byte from a listener: the cases a live etcd
/// produces only at a precise moment of a lease's life.
struct LeaseAnswerTests {
    static func timeToLive(answering body: String) async throws -> LeaseTimeToLive? {
        let reply =
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body
        let server = try TestListener(closesConnections: false, reply: reply)
        defer { server.stop() }
        var configuration = EtcdClient.Configuration()
        configuration.passes = 1
        // The full suite's first seconds have stalled the process for 15-18 s (CI).
        configuration.requestTimeout = .seconds(30)
        configuration.connectTimeout = .seconds(30)
        let client = try EtcdClient(endpoints: [server.endpoint], configuration: configuration)
        defer { Task { try? await client.shutdown() } }
        return try await within(seconds: 60) { try await client.timeToLive(lease: LeaseID(4_111_120_191_591_397_909)) }
    }

    @Test func underASecondLeftIsTTLZeroNotGone() async throws {
        // etcd 3.4's answer for a 5 s lease 4.3 s after its grant: TTL 0 is the default, so omitted.
        let body =
            #"{"header":{"cluster_id":"15118495548433857066","member_id":"13668033151171901709","revision":"2","raft_term":"2"},"ID":"4111120191591397909","grantedTTL":"5"}"#
        let left = try #require(try await Self.timeToLive(answering: body))
        #expect(left.ttl == 0 && left.grantedTTL == 5)
    }

    @Test func minusOneIsGone() async throws {
        let body =
            #"{"header":{"cluster_id":"15118495548433857066","member_id":"13668033151171901709","revision":"2","raft_term":"2"},"ID":"4111120191591397909","TTL":"-1"}"#
        #expect(try await Self.timeToLive(answering: body) == nil)
    }
}
