import Addressing
import Config
import Testing

@testable import KubeModel

@Suite struct OwnLeases {
    let network = IPv4Prefix("10.244.0.0/16")!
    let attributes = LeaseAttributes.vxlan(
        publicIP: IPv4Address(192, 168, 56, 11),
        data: VXLANLeaseData(vni: 1, vtepMAC: MACAddress("96:59:b2:3f:04:ee")!)
    )

    @Test func restartOfAnAnnotatedNodeSendsNothing() throws {
        let lease = try OwnLease.acquire(
            node: Fixture.node("node-vxlan.json"),
            network: network,
            attributes: attributes,
            keys: .standard
        )
        #expect(lease.subnet.subnet == IPv4Prefix("10.244.1.0/24")!)
        #expect(lease.advertisedPublicIP == IPv4Address(192, 168, 56, 11))
        #expect(lease.annotationPatch == nil)
    }

    @Test func overwriteIsWhatIsAdvertised() throws {
        let node = Node.make(
            "n",
            podCIDRs: ["10.244.7.0/24"],
            annotations: ["flannel.alpha.coreos.com/public-ip-overwrite": "203.0.113.7"]
        )
        let lease = try OwnLease.acquire(node: node, network: network, attributes: attributes, keys: .standard)
        #expect(lease.advertisedPublicIP == IPv4Address(203, 0, 113, 7))
        #expect(lease.annotationPatch?.contains("\"flannel.alpha.coreos.com/public-ip\":\"203.0.113.7\"") == true)
    }

    @Test func nothingIsPublishedForASubnetOutsideTheNetwork() {
        let node = Node.make("n", podCIDRs: ["10.245.7.0/24"])
        let error = #expect(throws: KubeError.self) {
            try OwnLease.acquire(node: node, network: network, attributes: attributes, keys: .standard)
        }
        #expect(error?.kind == .podCIDR)
    }

    @Test func unassignedPodCIDRIsTheWaitingKind() throws {
        let error = #expect(throws: KubeError.self) {
            try OwnLease.acquire(
                node: Fixture.node("node-fresh.json"),
                network: network,
                attributes: attributes,
                keys: .standard
            )
        }
        #expect(error?.kind == .podCIDRNotAssigned)
    }
}
