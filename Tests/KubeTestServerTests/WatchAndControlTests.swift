import Foundation
import KubeTestServer
import TestThreads
import Testing

/// Watch streams as client-go's reflector meets them, and the controls tests use to make failures.
@Suite(.enabled(if: Curl.isAvailable, "needs /usr/bin/curl (Debian package curl)"))
struct WatchAndControlTests {
    @Test func watchFromZeroStartsWithAddedThenFromNOnlyLaterChanges() async throws {
        try await TestAPI.with { api in
            let fromZero = try Curl.watch(api, "/api/v1/nodes?watch=true&resourceVersion=0")
            defer { fromZero.stop() }
            let added = try await fromZero.waitForEvents("three ADDED") { $0.count == 3 }
            #expect(added.allSatisfy { $0.type == "ADDED" && $0.value(at: "object.kind")?.string == "Node" })

            let version = api.server.store.resourceVersion
            _ = try await Curl.patch(api, "/api/v1/nodes/n1", .merge, #"{"metadata":{"labels":{"a":"1"}}}"#)
            _ = try await Curl.patch(api, "/api/v1/nodes/n2", .merge, #"{"metadata":{"labels":{"a":"2"}}}"#)
            // Resuming from the first change's version gives only the second.
            let resumed = try Curl.watch(api, "/api/v1/nodes?watch=true&resourceVersion=\(version + 1)")
            defer { resumed.stop() }
            let later = try await resumed.waitForEvents("the change after N") { !$0.isEmpty }
            try await Task.sleep(for: .milliseconds(200))
            #expect(resumed.events.map { "\($0.type ?? "") \($0.name ?? "")" } == ["MODIFIED n2"])
            #expect(later.first?.resourceVersion == version + 2)
            let all = try await fromZero.waitForEvents("both changes") { $0.count == 5 }
            #expect(all.dropFirst(3).compactMap(\.resourceVersion) == [version + 1, version + 2])
            // A name selector filters the stream.
            let one = try Curl.watch(api, "/api/v1/nodes?watch=true&fieldSelector=metadata.name%3Dn3")
            defer { one.stop() }
            #expect(try await one.waitForEvents("n3 only") { !$0.isEmpty }.compactMap(\.name) == ["n3"])
        }
    }

    @Test func bookmarksOnlyWhenAllowedAndAtTheCurrentVersion() async throws {
        try await TestAPI.with(bookmarkInterval: .milliseconds(200)) { api in
            let version = api.server.store.resourceVersion
            let plain = try Curl.watch(api, "/api/v1/nodes?watch=true&resourceVersion=\(version)")
            defer { plain.stop() }
            let bookmarked = try Curl.watch(
                api,
                "/api/v1/nodes?allowWatchBookmarks=true&resourceVersion=\(version)&timeoutSeconds=300&watch=true"
            )
            defer { bookmarked.stop() }
            let first = try await bookmarked.waitForEvents("a BOOKMARK") { !$0.isEmpty }
            #expect(first.first?.type == "BOOKMARK")
            #expect(first.first?.resourceVersion == version)
            #expect(first.first?.value(at: "object.kind")?.string == "Node")
            _ = try await Curl.patch(api, "/api/v1/nodes/n1", .merge, #"{"metadata":{"labels":{"b":"1"}}}"#)
            let later = try await bookmarked.waitForEvents("a BOOKMARK after the change") { events in
                events.contains { $0.type == "BOOKMARK" && $0.resourceVersion == version + 1 }
            }
            let kinds = later.map { $0.type ?? "" }
            #expect(kinds.firstIndex(of: "MODIFIED")! < kinds.lastIndex(of: "BOOKMARK")!)
            #expect(plain.events.allSatisfy { $0.type != "BOOKMARK" })
            #expect(plain.events.map { $0.type ?? "" } == ["MODIFIED"])
        }
    }

    @Test func timeoutSecondsEndsTheStreamCleanly() async throws {
        try await TestAPI.with { api in
            let started = ContinuousClock.now
            let watch = try Curl.watch(
                api,
                "/api/v1/nodes?watch=true&resourceVersion=\(api.server.store.resourceVersion)&timeoutSeconds=1"
            )
            defer { watch.stop() }
            let status = try await watch.waitForExit(seconds: 10)
            let elapsed = ContinuousClock.now - started
            #expect(status == 0, "curl saw an unclean end: \(watch.output)")
            #expect(elapsed >= .milliseconds(900) && elapsed < .seconds(5), "ended after \(elapsed)")
            #expect(api.server.store.openWatches == 0)
        }
    }

    @Test func expiredVersionGets200ThenInStream410AndEnds() async throws {
        try await TestAPI.with { api in
            let old = api.server.store.resourceVersion
            _ = try await Curl.patch(api, "/api/v1/nodes/n1", .merge, #"{"metadata":{"labels":{"c":"1"}}}"#)
            api.server.compactHistory()
            let reply = try await Curl.get(
                api,
                "/api/v1/nodes?allowWatchBookmarks=true&resourceVersion=\(old)&timeoutSeconds=300&watch=true"
            )
            #expect(reply.code == 200)
            #expect(reply.headers["transfer-encoding"] == "chunked")
            #expect(
                reply.body
                    == #"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: \#(old) (\#(old + 1))","reason":"Expired","code":410}}"#
                    + "\n"
            )
            // From the compaction point on, watching works again.
            let current = try Curl.watch(
                api,
                "/api/v1/nodes?watch=true&resourceVersion=\(api.server.store.oldestWatchableVersion)"
            )
            defer { current.stop() }
            try await waitForWatchers(api, 1)
            #expect(current.events.isEmpty)
        }
    }

    @Test func closeWatchesEndsEveryStreamCleanly() async throws {
        try await TestAPI.with { api in
            let version = api.server.store.resourceVersion
            let watches = try (0..<3).map { _ in
                try Curl.watch(api, "/api/v1/nodes?watch=true&resourceVersion=\(version)")
            }
            defer { for watch in watches { watch.stop() } }
            try await waitForWatchers(api, 3)
            api.server.closeWatches()
            for watch in watches { #expect(try await watch.waitForExit() == 0) }
            #expect(api.server.store.openWatches == 0)
        }
    }

    @Test func throttleAnswers429WithRetryAfterThenRecovers() async throws {
        try await TestAPI.with { api in
            api.server.throttle(next: 2, retryAfterSeconds: 3)
            for _ in 0..<2 {
                let reply = try await Curl.get(api, "/api/v1/nodes?watch=true&resourceVersion=0")
                #expect(reply.code == 429)
                #expect(reply.headers["retry-after"] == "3")
                #expect(
                    reply.body
                        == #"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Too many requests, please try again later.","reason":"TooManyRequests","details":{"retryAfterSeconds":3},"code":429}"#
                )
            }
            #expect(try await Curl.get(api, "/api/v1/nodes").code == 200)
            #expect(api.server.requests.map(\.code) == [429, 429, 200])
        }
    }

    @Test func downRefusesAndDropsThenUpServesOnTheSamePort() async throws {
        try await TestAPI.with { api in
            let watch = try Curl.watch(
                api,
                "/api/v1/nodes?watch=true&resourceVersion=\(api.server.store.resourceVersion)"
            )
            defer { watch.stop() }
            try await waitForWatchers(api, 1)
            let port = api.server.port
            await api.server.goDown()
            #expect(try await watch.waitForExit() != 0, "a dropped watch is not a clean end")
            let (status, output) = try await run(
                Curl.path,
                Curl.common(api, token: TestAPI.adminToken) + [api.url + "/api/v1/nodes"]
            )
            #expect(status == 7, "curl should be refused: \(output)")
            #expect(api.server.store.openWatches == 0)
            try await api.server.comeUp()
            #expect(api.server.port == port)
            #expect(try await Curl.get(api, "/api/v1/nodes/n1").code == 200)
        }
    }

    @Test func rewrittenTokenFileIsReadOnTheNextRequest() async throws {
        try await TestAPI.with { api in
            #expect(try await Curl.get(api, "/api/v1/nodes", token: TestAPI.flannelToken).code == 200)
            try TokenFile.write([("rotated-token", User(name: User.flannel))], to: api.tokenFile)
            #expect(try await Curl.get(api, "/api/v1/nodes", token: TestAPI.flannelToken).code == 401)
            #expect(try await Curl.get(api, "/api/v1/nodes", token: "rotated-token").code == 200)
        }
    }

    @Test func requestLogRecordsWhatWasSent() async throws {
        try await TestAPI.with { api in
            let body = #"{"metadata":{"annotations":{"k":"v"}}}"#
            _ = try await Curl.patch(
                api,
                "/api/v1/nodes/n1/status?fieldManager=test",
                .strategicMerge,
                body,
                token: TestAPI.flannelToken
            )
            let entry = try #require(api.server.requests.last)
            #expect(entry.method == "PATCH")
            #expect(entry.path == "/api/v1/nodes/n1/status")
            #expect(entry.query == "fieldManager=test")
            #expect(entry.contentType == PatchType.strategicMerge.rawValue)
            #expect(entry.body == body)
            #expect(entry.user == User.flannel)
            #expect(entry.code == 200)
            let found = try await api.server.waitForRequest(seconds: 1) {
                $0.method == "PATCH" && $0.user == User.flannel
            }
            #expect(found == entry)
            #expect(try await api.server.waitForRequest(seconds: 0.2) { $0.method == "DELETE" } == nil)
            api.server.clearRequests()
            #expect(api.server.requests.isEmpty)
            // The controls path is admin-only and stays out of the log.
            let denied = try await Curl.request(api, "POST", "/weft-test/compact", token: TestAPI.flannelToken)
            #expect(denied.code == 403)
            #expect(try await Curl.request(api, "POST", "/weft-test/compact").code == 200)
            #expect(api.server.requests.isEmpty)
        }
    }

    /// 5,000 nodes listed and watched from 0, then one change: the benchmark's scale, in a debug
    /// build, where encoding and decoding them costs seconds: on the compute lane, off the pool.
    @Test(.computeLane) func fiveThousandNodesListAndWatchWithoutStalling() async throws {
        try await TestAPI.with { api in
            for index in 0..<5000 {
                api.server.store.put(
                    .nodes,
                    TestAPI.node(
                        String(format: "node-%04d", index),
                        podCIDR: "10.\(64 + index / 256).\(index % 256).0/24"
                    )
                )
            }
            let started = ContinuousClock.now
            let list = try await Curl.request(api, "GET", "/api/v1/nodes?limit=500&resourceVersion=0", compressed: true)
            #expect(list.json["items"]?.array?.count == 5003)
            // Gzipped when asked, as kube-apiserver does from 128 KiB; a single node is not.
            #expect(list.headers["content-encoding"] == "gzip")
            #expect(
                try await Curl.request(api, "GET", "/api/v1/nodes/n1", compressed: true).headers["content-encoding"]
                    == nil
            )
            #expect(try await Curl.get(api, "/api/v1/nodes?limit=500").headers["content-encoding"] == nil)
            let watch = try Curl.watch(api, "/api/v1/nodes?watch=true&resourceVersion=0&allowWatchBookmarks=true")
            defer { watch.stop() }
            try await watch.waitFor("5,003 ADDED events", seconds: 60) {
                $0.utf8.lazy.filter { $0 == 0x0A }.count >= 5003
            }
            let changed = ContinuousClock.now
            _ = try await Curl.patch(
                api,
                "/api/v1/nodes/node-4999/status",
                .strategicMerge,
                #"{"metadata":{"annotations":{"late":"yes"}}}"#
            )
            try await watch.waitFor("the change after 5,003 nodes", seconds: 10) { $0.contains(#""late":"yes""#) }
            let total = ContinuousClock.now - started
            #expect(ContinuousClock.now - changed < .seconds(2))
            #expect(total < .seconds(30), "list + watch of 5,003 nodes took \(total)")
        }
    }
}
