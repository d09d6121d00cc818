import TestThreads
import Testing

@testable import KubeModel

@Suite(.computeLane) struct WatchStreams {
    func drain(_ decoder: inout WatchStreamDecoder) throws -> [WatchEvent] {
        var events: [WatchEvent] = []
        while let event = try decoder.next() { events.append(event) }
        return events
    }

    func expectTheFixtureEvents(_ events: [WatchEvent]) {
        #expect(events.count == 5)
        guard events.count == 5 else { return }
        if case .added(let node) = events[0] {
            #expect(node.name == "worker-2")
        } else {
            Issue.record("want ADDED, got \(events[0])")
        }
        if case .modified(let node) = events[1] {
            #expect(node.annotations["flannel.alpha.coreos.com/public-ip"] == "192.168.56.111")
        } else {
            Issue.record("want MODIFIED")
        }
        #expect(events[2] == .bookmark(resourceVersion: "51030"))
        if case .deleted(let node) = events[3] { #expect(node.name == "master") } else { Issue.record("want DELETED") }
        if case .error(let status) = events[4] {
            #expect(status.code == 410 && status.isExpired)
        } else {
            Issue.record("want ERROR")
        }
    }

    @Test func wholeStreamInOneChunk() throws {
        var decoder = WatchStreamDecoder()
        decoder.append(try Fixture.bytes("watch-stream.jsonl"))
        expectTheFixtureEvents(try drain(&decoder))
        #expect(decoder.eventCount == 5)
    }

    @Test(arguments: [1, 2, 3, 7, 64, 333, 1000])
    func streamSplitIntoFixedChunks(size: Int) throws {
        let bytes = try Fixture.bytes("watch-stream.jsonl")
        var decoder = WatchStreamDecoder()
        var events: [WatchEvent] = []
        var offset = 0
        while offset < bytes.count {
            decoder.append(bytes[offset..<min(offset + size, bytes.count)])
            events += try drain(&decoder)
            offset += size
        }
        decoder.finish()
        events += try drain(&decoder)
        expectTheFixtureEvents(events)
    }

    @Test func splitInsideAMultiByteCharacterAndRightBeforeTheNewline() throws {
        let line = #"{"type":"ADDED","object":{"metadata":{"name":"nœud-ü","resourceVersion":"3"}}}"#
        let bytes = Array((line + "\n").utf8)
        let cut = bytes.firstIndex(of: 0xC5)! + 1
        var decoder = WatchStreamDecoder()
        decoder.append(bytes[..<cut])
        #expect(try decoder.next() == nil)
        decoder.append(bytes[cut..<(bytes.count - 1)])
        #expect(try decoder.next() == nil)
        decoder.append(bytes[(bytes.count - 1)...])
        #expect(try decoder.next() == .added(Node(metadata: ObjectMeta(name: "nœud-ü", resourceVersion: "3"))))
        #expect(try decoder.next() == nil)
    }

    @Test func finalLineWithoutNewlineComesOutAtFinish() throws {
        var decoder = WatchStreamDecoder()
        decoder.append(Array(#"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"77"}}}"#.utf8))
        #expect(try decoder.next() == nil)
        decoder.finish()
        #expect(try decoder.next() == .bookmark(resourceVersion: "77"))
        #expect(try decoder.next() == nil)
    }

    @Test func blankLinesAndCRLFAreSkipped() throws {
        var decoder = WatchStreamDecoder()
        decoder.append(
            Array("\n\r\n{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"8\"}}}\r\n\n".utf8)
        )
        #expect(try drain(&decoder) == [.bookmark(resourceVersion: "8")])
    }

    @Test func tooLongLineIsAClearError() throws {
        var decoder = WatchStreamDecoder(maximumLineLength: 100)
        decoder.append([UInt8](repeating: UInt8(ascii: "x"), count: 101))
        let error = #expect(throws: KubeError.self) { try decoder.next() }
        #expect(error?.kind == .watchLineTooLong)
        #expect(error?.problem == "watch event 1 is longer than 100 bytes without a newline")
    }

    @Test func tooLongCompleteLineIsRefusedToo() throws {
        var decoder = WatchStreamDecoder(maximumLineLength: 50)
        decoder.append(
            Array(#"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"1234567890"}}}"#.utf8) + [0x0A]
        )
        let error = #expect(throws: KubeError.self) { try decoder.next() }
        #expect(error?.kind == .watchLineTooLong)
    }

    @Test func garbageLineNamesTheEventNumberAndEarlierEventsSurvive() throws {
        var decoder = WatchStreamDecoder()
        decoder.append(
            Array(
                "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"1\"}}}\n<html>oops</html>\n"
                    .utf8
            )
        )
        #expect(try decoder.next() == .bookmark(resourceVersion: "1"))
        let error = #expect(throws: KubeError.self) { try decoder.next() }
        #expect(error?.kind == .decoding)
        #expect(error?.problem.hasPrefix("watch event 2") == true)
    }

    @Test func unknownEventTypeIsRefused() {
        var decoder = WatchStreamDecoder()
        decoder.append(Array("{\"type\":\"RENAMED\",\"object\":{}}\n".utf8))
        let error = #expect(throws: KubeError.self) { try decoder.next() }
        #expect(error?.problem.contains("unknown watch event type \"RENAMED\"") == true)
    }

    @Test func manyEventsKeepTheBufferSmall() throws {
        var decoder = WatchStreamDecoder(maximumLineLength: 200)
        let line = Array("{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"1\"}}}\n".utf8)
        // 10,000 events through a 200-byte limit: only unconsumed bytes count against it.
        var largest = 0
        for _ in 0..<10_000 {
            decoder.append(line)
            #expect(try decoder.next() != nil)
            largest = max(largest, decoder.retainedByteCount)
        }
        #expect(decoder.eventCount == 10_000)
        #expect(largest <= 2 * line.count)
    }
}
