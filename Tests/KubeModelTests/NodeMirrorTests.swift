import Testing

@testable import KubeModel

@Suite struct NodeMirrors {
    func listed() throws -> (NodeMirror, NodeChanges) {
        var mirror = NodeMirror()
        let list = try APIDecoding.nodeList(Fixture.bytes("nodelist.json"))
        let changes = mirror.replace(list.items, resourceVersion: list.metadata.resourceVersion ?? "")
        return (mirror, changes)
    }

    @Test func firstListAddsEverythingAndSetsTheResourceVersion() throws {
        var fresh = NodeMirror()
        #expect(!fresh.hasSynced)
        #expect(fresh.listResourceVersion == "0")
        fresh.listExpired()
        #expect(fresh.listResourceVersion == "")
        let (mirror, changes) = try listed()
        #expect(mirror.hasSynced)
        #expect(changes.added.map(\.name) == ["master", "windows-1", "worker-1", "worker-3"])
        #expect(changes.updated.isEmpty && changes.removed.isEmpty)
        #expect(mirror.lastResourceVersion == "51020")
        #expect(mirror.listResourceVersion == "51020")
    }

    @Test func watchEventsApplyAndEveryOneAdvancesTheResourceVersion() throws {
        var (mirror, _) = try listed()
        var decoder = WatchStreamDecoder()
        decoder.append(try Fixture.bytes("watch-stream.jsonl"))
        var outcomes: [WatchOutcome] = []
        while let event = try decoder.next() { outcomes.append(mirror.apply(event)) }
        guard outcomes.count == 5 else {
            Issue.record("want 5 outcomes")
            return
        }
        if case .changes(let c) = outcomes[0] {
            #expect(c.added.map(\.name) == ["worker-2"])
        } else {
            Issue.record("want add")
        }
        if case .changes(let c) = outcomes[1] {
            #expect(c.updated.count == 1)
            #expect(c.updated.first?.old.resourceVersion == "48213")
            #expect(c.updated.first?.new.resourceVersion == "51022")
        } else {
            Issue.record("want update")
        }
        #expect(outcomes[2] == .progressed)
        if case .changes(let c) = outcomes[3] {
            #expect(c.removed.map(\.name) == ["master"])
        } else {
            Issue.record("want removal")
        }
        guard case .relist(let status) = outcomes[4] else {
            Issue.record("want relist")
            return
        }
        #expect(status.isExpired)
        // The bookmark and the delete moved the RV; the ERROR did not.
        #expect(mirror.lastResourceVersion == "51031")
        #expect(mirror.listResourceVersion == "51031")
        #expect(mirror.nodes.keys.sorted() == ["windows-1", "worker-1", "worker-2", "worker-3"])
    }

    @Test func relistReportsNodesDeletedWhileAway() throws {
        var (mirror, _) = try listed()
        // While the watch was down: master deleted, worker-1 changed, worker-5 created.
        var items = mirror.nodes.values.filter { $0.name != "master" }
        let index = items.firstIndex { $0.name == "worker-1" }!
        items[index].metadata.resourceVersion = "52000"
        items.append(.make("worker-5", resourceVersion: "52001"))
        let changes = mirror.replace(items, resourceVersion: "52002")
        #expect(changes.removed.map(\.name) == ["master"])
        #expect(changes.removed.first?.annotations["flannel.alpha.coreos.com/public-ip"] == "192.168.56.10")
        #expect(changes.updated.map(\.new.name) == ["worker-1"])
        #expect(changes.added.map(\.name) == ["worker-5"])
        #expect(mirror.lastResourceVersion == "52002")
    }

    @Test func sameListTwiceChangesNothing() throws {
        var (mirror, _) = try listed()
        let list = try APIDecoding.nodeList(Fixture.bytes("nodelist.json"))
        #expect(mirror.replace(list.items, resourceVersion: "51020").isEmpty)
    }

    @Test func addedForAKnownNodeIsAnUpdateAndModifiedForAnUnknownOneAnAdd() {
        var mirror = NodeMirror()
        _ = mirror.replace([.make("a", resourceVersion: "1")], resourceVersion: "1")
        #expect(
            mirror.apply(.added(.make("a", resourceVersion: "2")))
                == .changes(
                    NodeChanges(updated: [
                        .init(old: .make("a", resourceVersion: "1"), new: .make("a", resourceVersion: "2"))
                    ])
                )
        )
        #expect(
            mirror.apply(.modified(.make("b", resourceVersion: "3")))
                == .changes(NodeChanges(added: [.make("b", resourceVersion: "3")]))
        )
        #expect(mirror.apply(.modified(.make("b", resourceVersion: "3"))) == .changes(NodeChanges()))
        #expect(mirror.lastResourceVersion == "3")
    }

    @Test func deleteReportsTheLastKnownState() {
        var mirror = NodeMirror()
        let full = Node.make("a", resourceVersion: "1", podCIDRs: ["10.244.1.0/24"], annotations: ["k": "v"])
        _ = mirror.replace([full], resourceVersion: "1")
        #expect(mirror.apply(.deleted(.make("a", resourceVersion: "2"))) == .changes(NodeChanges(removed: [full])))
        #expect(mirror.nodes.isEmpty)
    }

    @Test func throttledWatchBacksOffWithoutRelisting() {
        var mirror = NodeMirror()
        let status = Status(
            message: "rate limited",
            reason: "TooManyRequests",
            details: .init(retryAfterSeconds: 7),
            code: 429
        )
        #expect(mirror.apply(.error(status)) == .backOff(.seconds(7), status))
        let other = Status(message: "internal error", reason: "InternalError", code: 500)
        #expect(mirror.apply(.error(other)) == .relist(other))
    }

    @Test func pagesAreJoinedUntilNoContinue() throws {
        var pages = NodeListPages()
        let token = pages.add(try APIDecoding.nodeList(Fixture.bytes("nodelist-page1.json")))
        #expect(token?.hasSuffix("==") == true)
        #expect(
            APIRequest.listNodes(resourceVersion: "", continueToken: token).path.contains(
                "continue=eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6NjAwMDAsInN0YXJ0Ijoid29ya2VyLTFcdTAwMDAifQ%3D%3D&limit=500"
            )
        )
        #expect(pages.add(try APIDecoding.nodeList(Fixture.bytes("nodelist-page2.json"))) == nil)
        #expect(pages.items.map(\.name) == ["master", "worker-1", "worker-2"])
        #expect(pages.resourceVersion == "60000")
    }
}
