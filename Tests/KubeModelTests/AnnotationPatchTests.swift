import Addressing
import Config
import Testing

@testable import KubeModel

@Suite struct StatusAnnotationPatch {
    let keys = AnnotationKeys.standard
    let mac = MACAddress("96:59:b2:3f:04:ee")!
    var attributes: LeaseAttributes {
        .vxlan(publicIP: IPv4Address(192, 168, 56, 11), data: VXLANLeaseData(vni: 1, vtepMAC: mac))
    }

    @Test func freshNodeGetsAllFourKeysInGoOrder() throws {
        let body = try AnnotationPatch.body(node: Fixture.node("node-fresh.json"), attributes: attributes, keys: keys)
        #expect(
            body
                == #"{"metadata":{"annotations":{"flannel.alpha.coreos.com/backend-data":"{\"VNI\":1,\"VtepMAC\":\"96:59:b2:3f:04:ee\"}","flannel.alpha.coreos.com/backend-type":"vxlan","flannel.alpha.coreos.com/kube-subnet-manager":"true","flannel.alpha.coreos.com/public-ip":"192.168.56.11"}}}"#
        )
    }

    @Test func unchangedNodeNeedsNoPatch() throws {
        let node = try Fixture.node("node-vxlan.json")
        #expect(try AnnotationPatch.body(node: node, attributes: attributes, keys: keys) == nil)
    }

    @Test func storedVtepMACKeepsTheRestartQuiet() throws {
        // weftd restarts: the VTEP is recreated with the MAC from our own backend-data, so nothing changes.
        let node = try Fixture.node("node-vxlan.json")
        let stored = try #require(OwnNodeAnnotations(node: node, keys: keys).storedVtepMAC())
        let again = LeaseAttributes.vxlan(
            publicIP: IPv4Address(192, 168, 56, 11),
            data: VXLANLeaseData(vni: 1, vtepMAC: stored)
        )
        #expect(try AnnotationPatch.body(node: node, attributes: again, keys: keys) == nil)
    }

    @Test func onlyTheChangedKeyIsSent() throws {
        let node = try Fixture.node("node-vxlan.json")
        let moved = LeaseAttributes.vxlan(
            publicIP: IPv4Address(192, 168, 56, 99),
            data: VXLANLeaseData(vni: 1, vtepMAC: mac)
        )
        #expect(
            try AnnotationPatch.body(node: node, attributes: moved, keys: keys)
                == #"{"metadata":{"annotations":{"flannel.alpha.coreos.com/public-ip":"192.168.56.99"}}}"#
        )
    }

    @Test func nilAnnotationsAreHandled() throws {
        // flannel issue #969: assignment to entry in nil map.
        let node = Node.make("bare", podCIDRs: ["10.244.4.0/24"])
        #expect(node.metadata.annotations == nil)
        let body = try #require(
            try AnnotationPatch.body(
                node: node,
                attributes: .hostGateway(publicIP: IPv4Address(10, 0, 0, 4)),
                keys: keys
            )
        )
        #expect(
            body
                == #"{"metadata":{"annotations":{"flannel.alpha.coreos.com/backend-data":"null","flannel.alpha.coreos.com/backend-type":"host-gw","flannel.alpha.coreos.com/kube-subnet-manager":"true","flannel.alpha.coreos.com/public-ip":"10.0.0.4"}}}"#
        )
    }

    @Test func publicIPOverwriteIsWhatPeersSee() throws {
        // flannel's functional test: annotate public-ip-overwrite=172.18.0.2, expect public-ip == 172.18.0.2.
        var annotations = try Fixture.node("node-vxlan.json").annotations
        annotations[keys.publicIPOverwrite] = "172.18.0.2"
        let node = Node.make("worker-1", podCIDRs: ["10.244.1.0/24"], annotations: annotations)
        #expect(
            try AnnotationPatch.body(node: node, attributes: attributes, keys: keys)
                == #"{"metadata":{"annotations":{"flannel.alpha.coreos.com/public-ip":"172.18.0.2"}}}"#
        )
        // Once applied, the next start sends nothing although the overwrite still differs from the local address.
        annotations[keys.publicIP] = "172.18.0.2"
        let settled = Node.make("worker-1", podCIDRs: ["10.244.1.0/24"], annotations: annotations)
        #expect(AnnotationPatch.desired(current: annotations, attributes: attributes, keys: keys) == annotations)
        #expect(try AnnotationPatch.body(node: settled, attributes: attributes, keys: keys) == nil)
    }

    @Test func badOverwriteIsRefusedWithTheFix() {
        let node = Node.make("worker-1", annotations: [keys.publicIPOverwrite: "nat-gw"])
        let error = #expect(throws: KubeError.self) {
            try AnnotationPatch.body(node: node, attributes: attributes, keys: keys)
        }
        #expect(error?.kind == .annotation)
        #expect(
            error?.problem
                == "node \"worker-1\" annotation flannel.alpha.coreos.com/public-ip-overwrite \"nat-gw\" is not an IPv4 address"
        )
        #expect(
            error?.fix.contains(
                "kubectl annotate node worker-1 --overwrite flannel.alpha.coreos.com/public-ip-overwrite="
            ) == true
        )
    }

    @Test func vxlanWithoutDataPublishesNeitherDataNorAddress() {
        let bare = LeaseAttributes(publicIP: IPv4Address(10, 0, 0, 1), backendType: "vxlan")
        let desired = AnnotationPatch.desired(current: [:], attributes: bare, keys: keys)
        #expect(desired == [keys.backendType: "vxlan", keys.kubeSubnetManager: "true"])
    }

    @Test func udpPublishesAnEmptyBackendType() {
        let desired = AnnotationPatch.desired(
            current: ["other": "kept"],
            attributes: .udp(publicIP: IPv4Address(10, 0, 0, 1)),
            keys: keys
        )
        #expect(
            desired == [
                "other": "kept", keys.backendType: "", keys.backendData: "null", keys.publicIP: "10.0.0.1",
                keys.kubeSubnetManager: "true",
            ]
        )
    }

    @Test func otherAnnotationsAreNeverInThePatch() throws {
        let node = Node.make("n", annotations: ["node.alpha.kubernetes.io/ttl": "0", "a<b>&c": "x"])
        let body = try #require(try AnnotationPatch.body(node: node, attributes: attributes, keys: keys))
        #expect(!body.contains("ttl"))
        #expect(!body.contains("a\\u003cb"))
    }

    @Test func goEscapingInValues() {
        #expect(JSONText.quoted("a<b>&\"\\\n\u{2028}") == #""a\u003cb\u003e\u0026\"\\\n\u2028""#)
    }
}

@Suite struct OwnNodeAnnotationReads {
    let keys = AnnotationKeys.standard

    @Test func nodePublicIPReplacesTheFlag() throws {
        let node = Node.make("n", annotations: [keys.nodePublicIP: "192.168.56.30"])
        #expect(try OwnNodeAnnotations(node: node, keys: keys).nodePublicIP() == IPv4Address(192, 168, 56, 30))
        #expect(try OwnNodeAnnotations(node: .make("m"), keys: keys).nodePublicIP() == nil)
    }

    @Test func badNodePublicIPNamesTheAnnotation() {
        let node = Node.make("n", annotations: [keys.nodePublicIP: "eth0"])
        let error = #expect(throws: KubeError.self) { try OwnNodeAnnotations(node: node, keys: keys).nodePublicIP() }
        #expect(
            error?.problem
                == "node \"n\" annotation flannel.alpha.coreos.com/node-public-ip \"eth0\" is not an IPv4 address"
        )
    }

    @Test func storedMACIsAbsentForHostGatewayOrGarbage() {
        #expect(
            OwnNodeAnnotations(node: .make("n", annotations: [keys.backendData: "null"]), keys: keys).storedVtepMAC()
                == nil
        )
        #expect(
            OwnNodeAnnotations(
                node: .make("n", annotations: [keys.backendData: "{\"VNI\":1,\"VtepMAC\":\"zz\"}"]),
                keys: keys
            ).storedVtepMAC() == nil
        )
        #expect(OwnNodeAnnotations(node: .make("n"), keys: keys).storedVtepMAC() == nil)
        #expect(
            OwnNodeAnnotations(
                node: .make("n", annotations: [keys.backendData: "{\"VNI\":1,\"VtepMAC\":\"12:C6:65:89:B4:E3\"}"]),
                keys: keys
            ).storedVtepMAC()
                == MACAddress("12:c6:65:89:b4:e3")
        )
    }
}
