import Etcd
import EtcdTestSupport
import Testing

@Suite(.enabled(if: TestEtcd.isAvailable, TestEtcd.skipMessage))
struct KeyValueTests {
    @Test func putIsSeenByEtcdctlAndEtcdctlPutIsSeenByTheClient() async throws {
        try await TestEtcd.with { etcd in
            let client = try etcd.client()
            defer { Task { try? await client.shutdown() } }
            // Non-ASCII and JSON with padding-sensitive lengths: base64 must be exact both ways.
            let value = #"{"PublicIP":"10.0.0.1","BackendType":"udp","é":"ü"}"#
            let revision = try await client.put("/coreos.com/network/subnets/10.244.1.0-24", value)
            let printed = try await etcd.etcdctl(
                "get",
                "/coreos.com/network/subnets/10.244.1.0-24",
                "--print-value-only"
            )
            #expect(printed == value + "\n")

            _ = try await etcd.etcdctl("put", "/weft/x", "ab")
            let read = try await client.get("/weft/x")
            #expect(read.kvs.map(\.key) == ["/weft/x"])
            #expect(read.kvs.first?.value == "ab")
            #expect(read.count == 1)
            // Second write to the store after ours: one revision later.
            #expect(read.kvs.first?.createRevision == revision + 1)
            #expect(read.kvs.first?.modRevision == revision + 1)
            #expect(read.kvs.first?.version == 1)
            #expect(read.kvs.first?.lease == nil)
            #expect(read.revision == revision + 1)
        }
    }

    @Test func versionsAndRevisionsAdvanceLikeEtcdctlReportsThem() async throws {
        try await TestEtcd.with { etcd in
            let client = try etcd.client()
            defer { Task { try? await client.shutdown() } }
            let first = try await client.put("k", "1")
            let second = try await client.put("k", "2")
            #expect(second == first + 1)
            let read = try await client.get("k")
            let kv = try #require(read.kvs.first)
            #expect(kv.createRevision == first)
            #expect(kv.modRevision == second)
            #expect(kv.version == 2)
            // etcdctl's JSON output prints the same numbers (as JSON numbers, not strings).
            let json = try await etcd.etcdctl("get", "k", "-w", "json")
            #expect(json.contains("\"create_revision\":\(first)"))
            #expect(json.contains("\"mod_revision\":\(second)"))
            #expect(json.contains("\"version\":2"))
        }
    }

    @Test func missingKeyHasNoKvsAndCountZero() async throws {
        try await TestEtcd.with { etcd in
            let client = try etcd.client()
            defer { Task { try? await client.shutdown() } }
            let written = try await client.put("present", "x")
            // The gateway omits "kvs" and "count" here; they must read as empty and 0.
            let read = try await client.get("absent")
            #expect(read.kvs.isEmpty)
            #expect(read.count == 0)
            #expect(read.revision == written)
        }
    }

    @Test func rangeReturnsExactlyThePrefixInKeyOrder() async throws {
        try await TestEtcd.with { etcd in
            let client = try etcd.client()
            defer { Task { try? await client.shutdown() } }
            for key in ["/n/subnets/b", "/n/subnets/a", "/n/subnets0", "/n/subnet", "/n/t", "/n/subnets/c/d"] {
                try await client.put(key, key.uppercased())
            }
            let result = try await client.range(prefix: "/n/subnets/")
            #expect(result.kvs.map(\.key) == ["/n/subnets/a", "/n/subnets/b", "/n/subnets/c/d"])
            #expect(result.kvs.map(\.value) == ["/N/SUBNETS/A", "/N/SUBNETS/B", "/N/SUBNETS/C/D"])
            #expect(result.count == 3)
            let etcdctlKeys = try await etcd.etcdctl("get", "/n/subnets/", "--prefix", "--keys-only")
                .split(separator: "\n").map(String.init)
            #expect(etcdctlKeys == result.kvs.map(\.key))
        }
    }

    @Test func deleteCountsWhatItRemoved() async throws {
        try await TestEtcd.with { etcd in
            let client = try etcd.client()
            defer { Task { try? await client.shutdown() } }
            try await client.put("gone", "x")
            #expect(try await client.delete("gone") == 1)
            // Deleting nothing omits "deleted" on the wire: 0.
            #expect(try await client.delete("gone") == 0)
            #expect(try await etcd.etcdctl("get", "gone") == "")
        }
    }
}
