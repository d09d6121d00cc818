import Addressing
import Testing

@testable import KubeModel

@Suite struct OwnSubnets {
    let network = IPv4Prefix("10.244.0.0/16")!

    @Test func singleStackNode() throws {
        let own = try OwnSubnet.select(node: Fixture.node("node-vxlan.json"), network: network)
        #expect(own == OwnSubnet(subnet: IPv4Prefix("10.244.1.0/24")!))
        #expect(own.note(node: "worker-1") == nil)
    }

    @Test func dualStackNodeOnAnIPv4NetworkUsesIPv4AndNamesIPv6() throws {
        let own = try OwnSubnet.select(node: Fixture.node("node-dualstack.json"), network: network)
        #expect(own.subnet == IPv4Prefix("10.244.2.0/24")!)
        #expect(own.ignored == "fd00:10:244:2::/64")
        #expect(
            own.note(node: "worker-2")
                == "node \"worker-2\" also has the IPv6 pod cidr fd00:10:244:2::/64; the network config has no IPv6 (EnableIPv6), so only 10.244.2.0/24 is carried"
        )
    }

    @Test func ipv6FirstOrderStillFindsIPv4() throws {
        let own = try OwnSubnet.select(node: Fixture.node("node-v6-first.json"), network: network)
        #expect(own.subnet == IPv4Prefix("10.244.6.0/24")!)
        #expect(own.ignored == "fd00:10:244:6::/64")
    }

    @Test func noPodCIDRGivesFlannelsTextAndTheFix() throws {
        let error = #expect(throws: KubeError.self) {
            try OwnSubnet.select(node: Fixture.node("node-fresh.json"), network: network)
        }
        #expect(error?.kind == .podCIDRNotAssigned)
        #expect(error?.problem == "node \"worker-3\" pod cidr not assigned")
        #expect(error?.fix.contains("--allocate-node-cidrs") == true)
        #expect(error?.fix.contains("kubectl patch node worker-3 -p '{\"spec\":{\"podCIDR\":") == true)
    }

    @Test func podCIDRsWithoutPodCIDRIsNotAssignedAsInFlannel() {
        // flannel issue #1224: only spec.podCIDR is checked first.
        var node = Node.make("n", podCIDRs: ["10.244.3.0/24"])
        node.spec.podCIDR = nil
        let error = #expect(throws: KubeError.self) { try OwnSubnet.select(node: node, network: network) }
        #expect(error?.kind == .podCIDRNotAssigned)
    }

    @Test func threeCIDRsAreRefused() {
        let node = Node.make("n", podCIDRs: ["10.244.3.0/24", "fd00::/64", "10.244.4.0/24"])
        let error = #expect(throws: KubeError.self) { try OwnSubnet.select(node: node, network: network) }
        #expect(error?.problem == "node \"n\" pod cidrs should be IPv4/IPv6 only or dualstack")
    }

    @Test func outsideNetworkGivesFlannelsText() {
        let node = Node.make("n1", podCIDRs: ["10.245.1.0/24"])
        let error = #expect(throws: KubeError.self) { try OwnSubnet.select(node: node, network: network) }
        #expect(
            error?.problem
                == "subnet \"10.244.0.0/16\" specified in the flannel net config doesn't contain \"10.245.1.0/24\" PodCIDR of the \"n1\" node"
        )
        #expect(error?.fix.contains("--cluster-cidr") == true)
    }

    @Test func podCIDRWiderThanNetworkIsOutside() {
        // containsCIDR: the Network's prefix must be no longer than the podCIDR's.
        let node = Node.make("n1", podCIDRs: ["10.0.0.0/8"])
        #expect(throws: KubeError.self) { try OwnSubnet.select(node: node, network: network) }
    }

    @Test func anIPv6OnlyNodeOnAnIPv4NetworkIsNamed() {
        let node = Node.make("v6", podCIDRs: ["fd00:10:244:7::/64"])
        let error = #expect(throws: KubeError.self) { try OwnSubnet.select(node: node, network: network) }
        #expect(
            error?.problem
                == "node \"v6\" has only the IPv6 pod cidr fd00:10:244:7::/64, but the network config carries IPv4 (Network 10.244.0.0/16)"
        )
    }

    @Test func garbageCIDRNamesTheField() {
        var node = Node.make("n", podCIDRs: ["10.244.3.0/24", "banana"])
        node.spec.podCIDR = "10.244.3.0/24"
        let error = #expect(throws: KubeError.self) { try OwnSubnet.select(node: node, network: network) }
        #expect(error?.problem == "node \"n\" spec.podCIDRs[1]: invalid CIDR address: banana")
    }

    @Test(arguments: ["fd00::/64", "::/0", "2001:db8::1:0/112", "::ffff:10.0.0.1/128", "1:2:3:4:5:6:7:8/128"])
    func ipv6CIDRsParse(text: String) {
        #expect(PodCIDR(text) == .ipv6(text))
    }

    @Test(arguments: [
        "fd00::/129", "fd00:::/64", "1:2:3:4:5:6:7:8:9/64", "fd0g::/64", "fd00::", "12345::/64", "1::2::3/64",
    ])
    func badIPv6CIDRsDoNot(text: String) {
        #expect(PodCIDR(text) == nil)
    }
}
