import KubeTestServer
import Testing

/// The three patch types on their own (no server): RFC 7386, RFC 6902, and the strategic merge with
/// core/v1's merge keys and directives.
struct PatchTests {
    let node: JSONValue = [
        "metadata": ["name": "n1", "annotations": ["a": "1", "b": "2"], "finalizers": ["x"]],
        "spec": ["podCIDRs": ["10.244.1.0/24"], "taints": [["key": "k1", "effect": "NoSchedule"]]],
        "status": [
            "conditions": [["type": "Ready", "status": "True"], ["type": "MemoryPressure", "status": "False"]]
        ],
    ]

    @Test func mergePatchSetsDeletesAndReplacesLists() throws {
        let result = try Patch.apply(
            .merge,
            ["metadata": ["annotations": ["a": .null, "c": "3"]], "status": ["conditions": []]],
            to: node
        )
        #expect(result.value(at: "metadata.annotations") == ["b": "2", "c": "3"])
        #expect(result.value(at: "status.conditions") == [])
        #expect(result["spec"] == node["spec"])
    }

    @Test func strategicMergeKeysAndDirectives() throws {
        let conditions = try Patch.apply(
            .strategicMerge,
            [
                "status": [
                    "conditions": [
                        ["type": "Ready", "status": "False"], ["type": "NetworkUnavailable", "status": "False"],
                    ]
                ]
            ],
            to: node
        )
        #expect(
            conditions.value(at: "status.conditions") == [
                ["type": "Ready", "status": "False"], ["type": "MemoryPressure", "status": "False"],
                ["type": "NetworkUnavailable", "status": "False"],
            ]
        )

        let deleted = try Patch.apply(
            .strategicMerge,
            ["status": ["conditions": [["type": "MemoryPressure", "$patch": "delete"]]]],
            to: node
        )
        #expect(deleted.value(at: "status.conditions")?.array?.count == 1)

        let replaced = try Patch.apply(
            .strategicMerge,
            ["status": ["conditions": [["$patch": "replace"], ["type": "Only", "status": "True"]]]],
            to: node
        )
        #expect(replaced.value(at: "status.conditions") == [["type": "Only", "status": "True"]])

        // podCIDRs and finalizers are merged primitive lists (a union); taints are atomic (replaced).
        let lists = try Patch.apply(
            .strategicMerge,
            [
                "spec": ["podCIDRs": ["fd00::/64"], "taints": [["key": "k2", "effect": "NoExecute"]]],
                "metadata": ["finalizers": ["y"]],
            ],
            to: node
        )
        #expect(lists.value(at: "spec.podCIDRs") == ["10.244.1.0/24", "fd00::/64"])
        #expect(lists.value(at: "spec.taints") == [["key": "k2", "effect": "NoExecute"]])
        #expect(lists.value(at: "metadata.finalizers") == ["x", "y"])

        let removed = try Patch.apply(
            .strategicMerge,
            ["metadata": ["$deleteFromPrimitiveList/finalizers": ["x"]]],
            to: node
        )
        #expect(removed.value(at: "metadata.finalizers") == [])
        let order = try Patch.apply(
            .strategicMerge,
            ["status": ["$setElementOrder/conditions": [["type": "Ready"]]]],
            to: node
        )
        #expect(order == node)
        #expect(throws: PatchFailure.self) {
            try Patch.apply(.strategicMerge, ["status": ["conditions": [["status": "True"]]]], to: node)
        }
    }

    @Test func jsonPatchOperations() throws {
        let result = try Patch.apply(
            .json,
            [
                ["op": "add", "path": "/metadata/annotations/example.com~1k", "value": "v"],
                ["op": "remove", "path": "/metadata/annotations/a"],
                ["op": "replace", "path": "/status/conditions/0/status", "value": "False"],
                ["op": "copy", "from": "/metadata/name", "path": "/metadata/labels"],
                ["op": "move", "from": "/metadata/labels", "path": "/metadata/generateName"],
                ["op": "add", "path": "/spec/podCIDRs/-", "value": "fd00::/64"],
                ["op": "test", "path": "/metadata/name", "value": "n1"],
            ],
            to: node
        )
        #expect(result.value(at: "metadata.annotations") == ["b": "2", "example.com/k": "v"])
        #expect(result.value(at: "status.conditions")?.array?.first?["status"]?.string == "False")
        #expect(result.value(at: "metadata.generateName")?.string == "n1")
        #expect(result.value(at: "metadata.labels") == nil)
        #expect(result.value(at: "spec.podCIDRs") == ["10.244.1.0/24", "fd00::/64"])
        #expect(throws: PatchFailure.self) {
            try Patch.apply(.json, [["op": "test", "path": "/metadata/name", "value": "n2"]], to: node)
        }
        #expect(throws: PatchFailure.self) {
            try Patch.apply(.json, [["op": "remove", "path": "/metadata/nosuch"]], to: node)
        }
    }

    @Test func jsonRoundTripKeepsNumbersAndEscapes() throws {
        let text = #"{"a":10250,"b":-1.5e3,"c":"q\"\\\n\u00e9\ud83d\ude00","d":[true,false,null]}"#
        let value = try JSONValue.parse(text)
        #expect(value["a"] == .number("10250"))
        #expect(value["c"]?.string == "q\"\\\né😀")
        #expect(try JSONValue.parse(value.text) == value)
        #expect(throws: JSONParseError.self) { try JSONValue.parse("{\"a\":1,}") }
        #expect(throws: JSONParseError.self) { try JSONValue.parse("[1] 2") }
    }
}
