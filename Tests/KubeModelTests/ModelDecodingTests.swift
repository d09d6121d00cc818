import Foundation
import Testing

@testable import KubeModel

@Suite struct ModelDecoding {
    @Test func realNodeDecodesAndUnknownFieldsAreIgnored() throws {
        let node = try Fixture.node("node-vxlan.json")
        #expect(node.name == "worker-1")
        #expect(node.metadata.uid == "5f0c8a8e-6f5a-4d7e-9c57-1d0b6c1f2a11")
        #expect(node.resourceVersion == "48213")
        #expect(node.metadata.creationTimestamp == "2026-11-30T09:14:02Z")
        #expect(node.metadata.labels?["kubernetes.io/os"] == "linux")
        #expect(node.annotations["flannel.alpha.coreos.com/public-ip"] == "192.168.56.11")
        #expect(node.spec.podCIDR == "10.244.1.0/24")
        #expect(node.spec.podCIDRs == ["10.244.1.0/24"])
        #expect(node.status.conditions?.map(\.type) == ["NetworkUnavailable", "MemoryPressure", "Ready"])
        #expect(node.status.conditions?[0].reason == "FlannelIsUp")
        #expect(node.status.addresses?.first == NodeAddress(type: "InternalIP", address: "192.168.56.11"))
    }

    @Test func nodeWithoutAnnotationsOrPodCIDR() throws {
        let node = try Fixture.node("node-fresh.json")
        #expect(node.metadata.annotations == nil)
        #expect(node.annotations.isEmpty)
        #expect(node.spec == NodeSpec())
    }

    @Test func bareObjectDecodesToEmptyParts() throws {
        let node = try APIDecoding.node(Array("{}".utf8))
        #expect(node.name == "")
        #expect(node.status == NodeStatus())
    }

    @Test func nodeListKeepsItsResourceVersionAndContinue() throws {
        let page = try APIDecoding.nodeList(Fixture.bytes("nodelist-page1.json"))
        #expect(page.metadata.resourceVersion == "60000")
        #expect(page.metadata.continue?.hasPrefix("eyJ2Ijoi") == true)
        #expect(page.items.map(\.name) == ["master", "worker-1"])
    }

    @Test func statusBodiesDecode() throws {
        let body =
            #"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"nodes \"x\" not found","reason":"NotFound","details":{"name":"x","kind":"nodes"},"code":404}"#
        let status = try #require(APIDecoding.status(Array(body.utf8)))
        #expect(status.code == 404)
        #expect(status.reason == "NotFound")
        #expect(status.details?.name == "x")
        #expect(status.message == "nodes \"x\" not found")
        #expect(!status.isExpired)
        #expect(APIDecoding.status(Array("<html>502 Bad Gateway</html>".utf8)) == nil)
        #expect(APIDecoding.status(Array(#"{"kind":"Node"}"#.utf8)) == nil)
    }

    @Test func wrongShapeNamesThePath() {
        let error = #expect(throws: KubeError.self) {
            try APIDecoding.node(Array(#"{"metadata":{"annotations":{"a":1}}}"#.utf8))
        }
        #expect(error?.kind == .decoding)
        #expect(error?.problem.contains("metadata.annotations.a") == true)
    }

    @Test func watchEventsRoundTrip() throws {
        let events: [WatchEvent] = [
            .added(.make("a", resourceVersion: "5")), .bookmark(resourceVersion: "9"),
            .error(Status(message: "too old resource version: 5 (100)", reason: "Expired", code: 410)),
        ]
        for event in events {
            let encoded = try JSONEncoderForTests.encode(event)
            #expect(try APIDecoding.decode(WatchEvent.self, from: encoded, what: "event") == event)
        }
    }
}

enum JSONEncoderForTests {
    static func encode(_ value: some Encodable) throws -> [UInt8] { [UInt8](try JSONEncoder().encode(value)) }
}
