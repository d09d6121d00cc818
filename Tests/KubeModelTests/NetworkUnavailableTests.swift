import Foundation
import Testing

@testable import KubeModel

@Suite struct NetworkUnavailableCondition {
    // 2026-12-06T08:22:45Z
    let now = Date(timeIntervalSince1970: 1_796_545_365.75)

    @Test func bodyIsFlannelsByteForByte() {
        #expect(
            NetworkUnavailablePatch.body(at: now)
                == #"{"status":{"conditions":[{"type":"NetworkUnavailable","status":"False","lastHeartbeatTime":"2026-12-06T08:22:45Z","lastTransitionTime":"2026-12-06T08:22:45Z","reason":"FlannelIsUp","message":"Flannel is running on this node"}]}}"#
        )
    }

    @Test func bodyDecodesAsAStatusPatch() throws {
        struct Patch: Decodable {
            struct S: Decodable { var conditions: [NodeCondition] }
            var status: S
        }
        let patch = try JSONDecoder().decode(Patch.self, from: Data(NetworkUnavailablePatch.body(at: now).utf8))
        #expect(patch.status.conditions == [NetworkUnavailablePatch.condition(at: now)])
    }

    @Test(arguments: [
        (Int64(0), "1970-01-01T00:00:00Z"), (Int64(951_782_400), "2000-02-29T00:00:00Z"),
        (Int64(4_107_542_399), "2100-02-28T23:59:59Z"), (Int64(-1), "1969-12-31T23:59:59Z"),
    ])
    func rfc3339(seconds: Int64, text: String) {
        #expect(RFC3339.format(secondsSince1970: seconds) == text)
    }

    @Test func mergeByTypeKeepsTheOtherConditions() throws {
        let node = try Fixture.node("node-vxlan.json")
        var start = node.status.conditions!
        start[0].status = "True"
        start[0].reason = "NoRouteCreated"
        let merged = start.mergedByType([NetworkUnavailablePatch.condition(at: now)])
        #expect(merged.map(\.type) == ["NetworkUnavailable", "MemoryPressure", "Ready"])
        #expect(merged[0].status == "False")
        #expect(merged[0].reason == "FlannelIsUp")
        #expect(merged[0].lastHeartbeatTime == "2026-12-06T08:22:45Z")
        #expect(merged[2] == start[2])
        #expect([NodeCondition]().mergedByType([NetworkUnavailablePatch.condition(at: now)]).count == 1)
    }
}
