import TestThreads
import Testing

@testable import Etcd

/// The gateway's watch stream, decoded without a server: bytes recorded from etcd 3.4.23 (curl -N /v3/watch).
@Suite(.computeLane) struct WatchStreamTests {
    // created; one message replaying three puts and a delete; the final error etcd writes on SIGTERM (no newline).
    static let recorded = Array(
        (#"{"result":{"header":{"cluster_id":"15118495548433857066","member_id":"13668033151171901709","revision":"5","raft_term":"2"},"created":true}}"#
            + "\n"
            + #"{"result":{"header":{"cluster_id":"15118495548433857066","member_id":"13668033151171901709","revision":"5","raft_term":"2"},"events":[{"kv":{"key":"L2EvMQ==","create_revision":"2","mod_revision":"2","version":"1","value":"djE="}},{"kv":{"key":"L2EvMg==","create_revision":"3","mod_revision":"3","version":"1","value":"djI="}},{"kv":{"key":"L2EvMw==","create_revision":"4","mod_revision":"4","version":"1","value":"djM="}},{"type":"DELETE","kv":{"key":"L2EvMg==","mod_revision":"5"}}]}}"#
            + "\n"
            + #"{"error":{"grpc_code":14,"http_code":503,"message":"transport is closing","http_status":"Service Unavailable"}}"#)
            .utf8
    )

    /// Written out by hand from the base64 above ("L2EvMQ==" is "/a/1", "djE=" is "v1").
    static let expected: [WatchMessage] = [
        .created(revision: 5, clusterID: Int64(bitPattern: 15_118_495_548_433_857_066)),
        .events(
            [
                WatchEvent(
                    kind: .put,
                    kv: KeyValue(key: "/a/1", value: "v1", createRevision: 2, modRevision: 2, version: 1, lease: nil)
                ),
                WatchEvent(
                    kind: .put,
                    kv: KeyValue(key: "/a/2", value: "v2", createRevision: 3, modRevision: 3, version: 1, lease: nil)
                ),
                WatchEvent(
                    kind: .put,
                    kv: KeyValue(key: "/a/3", value: "v3", createRevision: 4, modRevision: 4, version: 1, lease: nil)
                ),
                WatchEvent(
                    kind: .delete,
                    kv: KeyValue(key: "/a/2", value: "", createRevision: 0, modRevision: 5, version: 0, lease: nil)
                ),
            ],
            revision: 5
        ),
        .failed(code: 14, message: "transport is closing"),
    ]

    static func decodeAll(_ pieces: [ArraySlice<UInt8>]) throws -> [WatchMessage] {
        var splitter = LineSplitter()
        var messages: [WatchMessage] = []
        for piece in pieces {
            let lines = splitter.append(piece)
            for line in try #require(lines) { messages.append(try WatchMessage.decode(line)) }
        }
        if let rest = splitter.finish() { messages.append(try WatchMessage.decode(rest)) }
        return messages
    }

    @Test func everySplitPointOfTheRecordedStreamDecodesTheSame() throws {
        let bytes = Self.recorded
        for cut in 0...bytes.count {
            #expect(try Self.decodeAll([bytes[..<cut], bytes[cut...]]) == Self.expected, "cut at \(cut)")
        }
        // One byte per chunk, and all at once.
        #expect(try Self.decodeAll(bytes.indices.map { bytes[$0...$0] }) == Self.expected)
        #expect(try Self.decodeAll([bytes[...]]) == Self.expected)
    }

    @Test func blankLinesAndCarriageReturnsAreSkipped() throws {
        var splitter = LineSplitter()
        #expect(splitter.append(Array("\n\r\n  \n{\"a\":1}\r".utf8)) == [])
        #expect(splitter.append(Array("\n".utf8)) == [Array("{\"a\":1}\r".utf8)])
        #expect(splitter.finish() == nil)
    }

    @Test func aLineLongerThanTheCapIsRefused() {
        var splitter = LineSplitter(maximumLine: 8)
        #expect(splitter.append(Array("12345678\n1234".utf8)) == [Array("12345678".utf8)])
        #expect(splitter.append(Array("5678".utf8)) == [])
        #expect(splitter.append(Array("9".utf8)) == nil)
    }

    @Test func compactionCancellationProgressAndOtherCancellations() throws {
        let compacted =
            #"{"result":{"header":{"cluster_id":"1","raft_term":"2"},"canceled":true,"compact_revision":"3"}}"#
        #expect(try WatchMessage.decode(Array(compacted.utf8)) == .compacted(revision: 3))
        let denied = #"{"result":{"header":{},"canceled":true,"cancel_reason":"etcdserver: permission denied"}}"#
        #expect(
            try WatchMessage.decode(Array(denied.utf8)) == .canceled(code: 1, reason: "etcdserver: permission denied")
        )
        let bare = #"{"result":{"canceled":true}}"#
        #expect(try WatchMessage.decode(Array(bare.utf8)) == .canceled(code: 1, reason: "etcd canceled the watch"))
        // Recorded from etcd 3.4.23 with authentication on: created and canceled in one message.
        let badToken =
            #"{"result":{"header":{"revision":"1"},"watch_id":"-1","created":true,"canceled":true,"cancel_reason":"rpc error: code = Unauthenticated desc = etcdserver: invalid auth token"}}"#
        #expect(
            try WatchMessage.decode(Array(badToken.utf8))
                == .canceled(code: 16, reason: "etcdserver: invalid auth token")
        )
        let noUser =
            #"{"result":{"watch_id":"-1","created":true,"canceled":true,"cancel_reason":"rpc error: code = InvalidArgument desc = etcdserver: user name is empty"}}"#
        #expect(
            try WatchMessage.decode(Array(noUser.utf8)) == .canceled(code: 3, reason: "etcdserver: user name is empty")
        )
        let progress = #"{"result":{"header":{"revision":"42"}}}"#
        #expect(try WatchMessage.decode(Array(progress.utf8)) == .progress(revision: 42))
        // The answer to a progress request, as etcd 3.4.23's gateway wrote it.
        let requested =
            #"{"result":{"header":{"cluster_id":"14841639068965178418","member_id":"10276657743932975437","revision":"1","raft_term":"2"},"watch_id":"-1"}}"#
        #expect(try WatchMessage.decode(Array(requested.utf8)) == .progress(revision: 1))
        let explicitPut =
            #"{"result":{"events":[{"type":"PUT","kv":{"key":"YQ==","mod_revision":"7","lease":"255"}}]}}"#
        #expect(
            try WatchMessage.decode(Array(explicitPut.utf8))
                == .events(
                    [
                        WatchEvent(
                            kind: .put,
                            kv: KeyValue(
                                key: "a",
                                value: "",
                                createRevision: 0,
                                modRevision: 7,
                                version: 0,
                                lease: LeaseID(255)
                            )
                        )
                    ],
                    revision: 0
                )
        )
    }

    @Test func malformedMessagesAreRejectedWithWhatWasWrong() {
        let cases: [(String, String)] = [
            ("not json", "not json"),
            (#"{"result":{"events":[{"type":"MOVE","kv":{"key":"YQ=="}}]}}"#, "event type \"MOVE\""),
            (#"{"result":{"events":[{"type":"DELETE"}]}}"#, "an event without kv"),
            (#"{"something":"else"}"#, "neither result nor error"),
            (#"{"result":{"events":[{"kv":{"key":"***"}}]}}"#, "is not base64"),
        ]
        for (line, detail) in cases {
            #expect(throws: WatchDecodingError.self) { try WatchMessage.decode(Array(line.utf8)) }
            do {
                _ = try WatchMessage.decode(Array(line.utf8))
            } catch {
                #expect(error.detail.contains(detail), "\(error.detail)")
            }
        }
    }
}
