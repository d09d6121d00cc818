import Addressing
import Config
import Testing

@testable import KubeModel

/// A dual-stack Node (podCIDRs of both families, public-ipv6 and backend-v6-data) read as
/// flannel's AcquireLease and nodeToLease read it when EnableIPv6 is true.
@Suite struct DualStackNodeTests {
    let network = IPv4Prefix("10.244.0.0/16")!

    @Test func ownSubnetTakesTheIPv6PodCIDRInsideTheIPv6Network() throws {
        let node = try Fixture.node("node-dualstack.json")
        let own = try OwnSubnet.select(node: node, network: network, ipv6Network: IPv6Prefix("fd00:10:244::/56"))
        #expect(own == OwnSubnet(subnet: IPv4Prefix("10.244.2.0/24")!, ipv6Subnet: IPv6Prefix("fd00:10:244:2::/64")))
        #expect(own.note(node: "worker-2") == nil)
        let error = #expect(throws: KubeError.self) {
            try OwnSubnet.select(node: node, network: network, ipv6Network: IPv6Prefix("fc00::/48"))
        }
        #expect(
            error?.problem
                == #"subnet "fc00::/48" specified in the flannel net config doesn't contain "fd00:10:244:2::/64" IPv6 PodCIDR of the "worker-2" node"#
        )
        // An IPv4-only node on a dual-stack network keeps its IPv4 lease, as flannel's.
        let single = try OwnSubnet.select(
            node: Fixture.node("node-vxlan.json"),
            network: network,
            ipv6Network: IPv6Prefix("fd00:10:244::/56")
        )
        #expect(single.ipv6Subnet == nil)
    }

    @Test func peerLeaseReadsTheIPv6HalfOnlyWhenAsked() throws {
        let node = try Fixture.node("node-dualstack.json")
        guard case .lease(let dual) = PeerLeaseReader(keys: .standard, ownNodeName: "me", ipv6: true).read(node) else {
            Issue.record("the dual-stack node is a lease")
            return
        }
        #expect(dual.ipv6Subnet == IPv6Prefix("fd00:10:244:2::/64"))
        #expect(dual.attributes.publicIPv6Address == IPv6Address("fd00:56::12"))
        #expect(try dual.attributes.vxlanV6Data().vtepMAC == MACAddress("2a:0f:73:1c:9e:01"))
        guard case .lease(let single) = PeerLeaseReader(keys: .standard, ownNodeName: "me").read(node) else {
            Issue.record("the dual-stack node is a lease")
            return
        }
        #expect(single.ipv6Subnet == nil && single.attributes.publicIPv6 == nil)
        // An IPv4-only node cannot be a dual-stack peer: flannel's nodeToLease fails on it.
        guard
            case .unusable(let why) = PeerLeaseReader(keys: .standard, ownNodeName: "me", ipv6: true)
                .read(try Fixture.node("node-vxlan.json"))
        else {
            Issue.record("an IPv4-only node is unusable on a dual-stack network")
            return
        }
        #expect(why.contains("public-ipv6 is missing"), "\(why)")
    }
}
