import Addressing
import Config
import Testing

@testable import KubeModel

@Suite struct NodeToLease {
    let reader = PeerLeaseReader(keys: .standard, ownNodeName: "worker-1")

    @Test func vxlanPeer() throws {
        let reading = reader.read(try Fixture.node("node-dualstack.json"))
        let expected = PeerLease(
            nodeName: "worker-2",
            subnet: IPv4Prefix("10.244.2.0/24")!,
            attributes: LeaseAttributes(
                publicIP: IPv4Address(192, 168, 56, 12),
                backendType: "vxlan",
                backendData: "{\"VNI\":1,\"VtepMAC\":\"12:c6:65:89:b4:e3\"}"
            )
        )
        #expect(reading == .lease(expected))
        if case .lease(let lease) = reading {
            #expect(try lease.attributes.vxlanData().vtepMAC == MACAddress("12:c6:65:89:b4:e3"))
        }
    }

    @Test func hostGatewayPeerWithNullDataAndIPv6First() throws {
        let reading = reader.read(try Fixture.node("node-v6-first.json"))
        #expect(
            reading
                == .lease(
                    PeerLease(
                        nodeName: "worker-6",
                        subnet: IPv4Prefix("10.244.6.0/24")!,
                        attributes: .hostGateway(publicIP: IPv4Address(192, 168, 56, 16))
                    )
                )
        )
    }

    @Test func ownNodeIsNotAPeer() throws {
        #expect(reader.read(try Fixture.node("node-vxlan.json")) == .ownNode)
    }

    @Test func nodesWithoutTheManagedAnnotationAreIgnored() throws {
        #expect(reader.read(try Fixture.node("node-fresh.json")) == .notManaged)
        var annotations = vxlanAnnotations(publicIP: "192.168.56.20", mac: "aa:bb:cc:dd:ee:01")
        annotations["flannel.alpha.coreos.com/kube-subnet-manager"] = "false"
        #expect(reader.read(.make("n", podCIDRs: ["10.244.20.0/24"], annotations: annotations)) == .notManaged)
    }

    @Test func firstIPv4EntryWinsForPeers() {
        let node = Node.make(
            "n",
            podCIDRs: ["10.244.20.0/24", "10.244.21.0/24"],
            annotations: vxlanAnnotations(publicIP: "192.168.56.20", mac: "aa:bb:cc:dd:ee:01")
        )
        guard case .lease(let lease) = reader.read(node) else {
            Issue.record("want a lease")
            return
        }
        #expect(lease.subnet == IPv4Prefix("10.244.20.0/24")!)
    }

    @Test(arguments: [
        ("public-ip", "", "annotation flannel.alpha.coreos.com/public-ip is missing"),
        (
            "public-ip", "192.168.56",
            "annotation flannel.alpha.coreos.com/public-ip \"192.168.56\" is not an IPv4 address"
        ),
        (
            "backend-data", "{\"VNI\":1}",
            "annotation flannel.alpha.coreos.com/backend-data \"{\\\"VNI\\\":1}\": BackendData.VtepMAC is missing"
        ),
        (
            "backend-data", "garbage",
            "annotation flannel.alpha.coreos.com/backend-data \"garbage\": BackendData is not valid JSON"
        ),
    ])
    func unusableAnnotationsNameTheNodeAndField(key: String, value: String, why: String) {
        var annotations = vxlanAnnotations(publicIP: "192.168.56.20", mac: "aa:bb:cc:dd:ee:01")
        annotations["flannel.alpha.coreos.com/\(key)"] = value.isEmpty ? nil : value
        let reading = reader.read(.make("worker-9", podCIDRs: ["10.244.9.0/24"], annotations: annotations))
        guard case .unusable(let line) = reading else {
            Issue.record("want unusable, got \(reading)")
            return
        }
        #expect(line.hasPrefix("Error turning node \"worker-9\" to lease: \(why)"))
        #expect(!line.contains("\n"))
    }

    @Test func podCIDRProblemsNameTheField() {
        let annotations = vxlanAnnotations(publicIP: "192.168.56.20", mac: "aa:bb:cc:dd:ee:01")
        func line(_ node: Node) -> String? {
            if case .unusable(let line) = reader.read(node) { line } else { nil }
        }
        #expect(line(.make("a", annotations: annotations))?.contains("spec.podCIDR: invalid CIDR address: ") == true)
        #expect(
            line(.make("b", podCIDRs: ["fd00::/64"], annotations: annotations))?.contains(
                "missing IPv4 address on n.Spec.PodCIDRs"
            ) == true
        )
        // first IPv4 wins before x is read
        #expect(line(.make("c", podCIDRs: ["10.244.1.0/24", "x"], annotations: annotations)) == nil)
        #expect(
            line(.make("d", podCIDRs: ["x", "10.244.1.0/24"], annotations: annotations))?.contains(
                "spec.podCIDRs[0]: invalid CIDR address: x"
            ) == true
        )
        #expect(
            line(.make("e", podCIDRs: ["10.244.1.0/24", "fd00::/64", "10.244.2.0/24"], annotations: annotations))?
                .contains("pod cidrs should be IPv4/IPv6 only or dualstack") == true
        )
    }

    @Test func otherPrefixIsHonoured() throws {
        let keys = try AnnotationKeys(prefix: "example.com/weft")
        let reader = PeerLeaseReader(keys: keys, ownNodeName: "me")
        let node = Node.make(
            "n",
            podCIDRs: ["10.244.5.0/24"],
            annotations: vxlanAnnotations(
                publicIP: "192.168.56.5",
                mac: "aa:bb:cc:dd:ee:05",
                prefix: "example.com/weft-"
            )
        )
        guard case .lease(let lease) = reader.read(node) else {
            Issue.record("want a lease")
            return
        }
        #expect(lease.attributes.publicIP == IPv4Address(192, 168, 56, 5))
        #expect(PeerLeaseReader(keys: .standard, ownNodeName: "me").read(node) == .notManaged)
    }
}
