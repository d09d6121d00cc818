import Addressing
import Config
import TestThreads
import Testing

@testable import KubeModel

@Suite(.computeLane) struct PeerLeaseViews {
    let reader = PeerLeaseReader(keys: .standard, ownNodeName: "worker-1")

    func peer(
        _ name: String,
        _ octet: UInt8,
        mac: String = "aa:bb:cc:dd:ee:01",
        rv: String = "1",
        publicIP: String? = nil
    ) -> Node {
        Node.make(
            name,
            resourceVersion: rv,
            podCIDRs: ["10.244.\(octet).0/24"],
            annotations: vxlanAnnotations(publicIP: publicIP ?? "192.168.56.\(octet)", mac: mac)
        )
    }

    @Test func listGivesThePeersOnlyFromManagedOtherNodes() throws {
        var mirror = NodeMirror()
        var view = PeerLeaseView(reader: reader)
        let list = try APIDecoding.nodeList(Fixture.bytes("nodelist.json"))
        let changes = view.apply(mirror.replace(list.items, resourceVersion: "51020"))
        // master is a peer; worker-1 is us; worker-3 and windows-1 are not managed.
        #expect(changes.added.map(\.nodeName) == ["master"])
        #expect(changes.added.first?.subnet == IPv4Prefix("10.244.0.0/24")!)
        #expect(changes.skipped.isEmpty && changes.removed.isEmpty && changes.replaced.isEmpty)
        #expect(view.snapshot.map(\.nodeName) == ["master"])
    }

    @Test func changedPublicIPOrBackendDataReplacesTheLease() {
        var mirror = NodeMirror()
        var view = PeerLeaseView(reader: reader)
        _ = view.apply(mirror.replace([peer("a", 2)], resourceVersion: "1"))
        guard case .changes(let moved) = mirror.apply(.modified(peer("a", 2, rv: "2", publicIP: "192.168.57.2"))) else {
            Issue.record("want changes")
            return
        }
        let result = view.apply(moved)
        #expect(result.replaced.count == 1)
        #expect(result.replaced.first?.old.attributes.publicIP == IPv4Address(192, 168, 56, 2))
        #expect(result.replaced.first?.new.attributes.publicIP == IPv4Address(192, 168, 57, 2))
        guard
            case .changes(let remac) = mirror.apply(
                .modified(peer("a", 2, mac: "aa:bb:cc:dd:ee:99", rv: "3", publicIP: "192.168.57.2"))
            )
        else { return }
        #expect(
            view.apply(remac).replaced.first?.new.attributes.backendData
                == "{\"VNI\":1,\"VtepMAC\":\"aa:bb:cc:dd:ee:99\"}"
        )
    }

    @Test func unrelatedChangesDoNotTouchTheLease() {
        var mirror = NodeMirror()
        var view = PeerLeaseView(reader: reader)
        _ = view.apply(mirror.replace([peer("a", 2)], resourceVersion: "1"))
        var heartbeat = peer("a", 2, rv: "2")
        heartbeat.status.conditions = [
            NodeCondition(type: "Ready", status: "True", lastHeartbeatTime: "2026-12-06T08:30:00Z")
        ]
        guard case .changes(let changes) = mirror.apply(.modified(heartbeat)) else { return }
        #expect(changes.updated.count == 1)
        #expect(view.apply(changes).isEmpty)
    }

    @Test func nodeWhoseAnnotationsStopParsingDropsOutWithOneLine() {
        var mirror = NodeMirror()
        var view = PeerLeaseView(reader: reader)
        _ = view.apply(mirror.replace([peer("a", 2)], resourceVersion: "1"))
        let broken = peer("a", 2, rv: "2", publicIP: "not-an-ip")
        guard case .changes(let first) = mirror.apply(.modified(broken)) else { return }
        let result = view.apply(first)
        #expect(result.removed.map(\.nodeName) == ["a"])
        #expect(result.skipped.count == 1)
        #expect(
            result.skipped.first?.contains(
                "Error turning node \"a\" to lease: annotation flannel.alpha.coreos.com/public-ip \"not-an-ip\""
            ) == true
        )
        // Still broken at the next update: no second line.
        var again = broken
        again.metadata.resourceVersion = "3"
        guard case .changes(let second) = mirror.apply(.modified(again)) else { return }
        #expect(view.apply(second).isEmpty)
        // Fixed: back as an add.
        guard case .changes(let fixed) = mirror.apply(.modified(peer("a", 2, rv: "4"))) else { return }
        #expect(view.apply(fixed).added.map(\.nodeName) == ["a"])
    }

    @Test func losingTheManagedAnnotationRemovesThePeer() {
        var mirror = NodeMirror()
        var view = PeerLeaseView(reader: reader)
        _ = view.apply(mirror.replace([peer("a", 2)], resourceVersion: "1"))
        guard
            case .changes(let changes) = mirror.apply(
                .modified(.make("a", resourceVersion: "2", podCIDRs: ["10.244.2.0/24"], annotations: [:]))
            )
        else { return }
        let result = view.apply(changes)
        #expect(result.removed.map(\.nodeName) == ["a"])
        #expect(result.skipped.isEmpty)
    }

    @Test func deletedPeerAndPeerDeletedWhileAwayAreRemoved() {
        var mirror = NodeMirror()
        var view = PeerLeaseView(reader: reader)
        _ = view.apply(mirror.replace([peer("a", 2), peer("b", 3), peer("c", 4)], resourceVersion: "1"))
        guard case .changes(let deleted) = mirror.apply(.deleted(peer("a", 2, rv: "2"))) else { return }
        #expect(view.apply(deleted).removed.map(\.nodeName) == ["a"])
        // The watch expired; "b" was deleted meanwhile and the relist no longer has it.
        let relisted = view.apply(mirror.replace([peer("c", 4)], resourceVersion: "9"))
        #expect(relisted.removed.map(\.nodeName) == ["b"])
        #expect(view.snapshot.map(\.nodeName) == ["c"])
    }

    @Test func ownNodeNeverBecomesAPeer() {
        var mirror = NodeMirror()
        var view = PeerLeaseView(reader: reader)
        #expect(view.apply(mirror.replace([peer("worker-1", 1)], resourceVersion: "1")).isEmpty)
        guard case .changes(let changes) = mirror.apply(.modified(peer("worker-1", 1, rv: "2", publicIP: "10.9.9.9")))
        else { return }
        #expect(view.apply(changes).isEmpty)
    }

    @Test func fiveThousandNodesListAndOneChangeIsOneReplacement() {
        var mirror = NodeMirror()
        var view = PeerLeaseView(reader: reader)
        let nodes = (0..<5000).map { index in
            Node.make(
                "node-\(index)",
                resourceVersion: "\(index)",
                podCIDRs: ["10.\(index / 256 + 1).\(index % 256).0/24"],
                annotations: vxlanAnnotations(
                    publicIP: "172.16.\(index / 256).\(index % 256)",
                    mac: "aa:bb:cc:dd:ee:01"
                )
            )
        }
        #expect(view.apply(mirror.replace(nodes, resourceVersion: "5000")).added.count == 5000)
        var changed = nodes[1234]
        changed.metadata.resourceVersion = "5001"
        changed.metadata.annotations?["flannel.alpha.coreos.com/public-ip"] = "172.31.0.1"
        guard case .changes(let changes) = mirror.apply(.modified(changed)) else { return }
        let result = view.apply(changes)
        #expect(result.replaced.map(\.new.nodeName) == ["node-1234"])
        #expect(result.added.isEmpty && result.removed.isEmpty)
    }
}
