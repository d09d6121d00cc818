import Addressing
import ConfigTestSupport
import Testing

@testable import Config

@Suite struct DualStackSubnetEnv {
    @Test func exactTextFlanneldWritesForDualStack() {
        // The reference's example: the IPv6 lines after the IPv4 ones, the subnet as its first host.
        let env = SubnetEnv(
            network: IPv4Prefix("10.5.0.0/16"),
            subnet: IPv4Prefix("10.5.72.0/24"),
            ipv6Network: IPv6Prefix("2001:cafe:42::/56"),
            ipv6Subnet: IPv6Prefix("2001:cafe:42::/64"),
            mtu: 1450,
            ipMasq: true
        )
        #expect(
            env.text == """
                FLANNEL_NETWORK=10.5.0.0/16
                FLANNEL_SUBNET=10.5.72.1/24
                FLANNEL_IPV6_NETWORK=2001:cafe:42::/56
                FLANNEL_IPV6_SUBNET=2001:cafe:42::1/64
                FLANNEL_MTU=1450
                FLANNEL_IPMASQ=true

                """
        )
    }

    @Test func ipv6OnlyLeavesTheIPv4LinesOut() {
        let env = SubnetEnv(
            network: nil,
            subnet: nil,
            ipv6Network: IPv6Prefix("fc00::/48"),
            ipv6Subnet: IPv6Prefix("fc00:0:0:5::/64"),
            mtu: 1450,
            ipMasq: false
        )
        #expect(
            env.text
                == "FLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00:0:0:5::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n"
        )
    }

    @Test func ipv4OnlyHasNoIPv6Lines() {
        let env = SubnetEnv(
            network: IPv4Prefix("10.244.0.0/16"),
            subnet: IPv4Prefix("10.244.34.0/24"),
            mtu: 1450,
            ipMasq: false
        )
        #expect(!env.text.contains("IPV6"))
    }

    @Test func parsesWhatItRenders() throws {
        let env = SubnetEnv(
            network: IPv4Prefix("10.244.0.0/16"),
            subnet: IPv4Prefix("10.244.34.0/24"),
            ipv6Network: IPv6Prefix("fc00::/48"),
            ipv6Subnet: IPv6Prefix("fc00:0:0:22::/64"),
            mtu: 1450,
            ipMasq: false
        )
        #expect(try SubnetEnv.parse(env.text) == env)
    }

    @Test func readsTheIPv6SubnetAsItsNetwork() throws {
        // As flanneld and the CNI plugin read it, with ParseCIDR: the gateway's host bits go.
        let env = try SubnetEnv.parse("FLANNEL_IPV6_NETWORK=FC00:0::/48\nFLANNEL_IPV6_SUBNET=fc00:0:0:5::1/64\n")
        #expect(env.ipv6Network == IPv6Prefix("fc00::/48"))
        #expect(env.ipv6Subnet == IPv6Prefix("fc00:0:0:5::/64"))
        #expect(env.network == nil && env.subnet == nil)
    }

    @Test func severalCommaSeparatedIPv6SubnetsCountAsNone() throws {
        let env = try SubnetEnv.parse("FLANNEL_IPV6_SUBNET=fc00:0:0:5::1/64,fc00:0:0:6::1/64\n")
        #expect(env.ipv6Subnet == nil)
    }

    @Test(arguments: [
        ("FLANNEL_IPV6_NETWORK=fc00::\n", "FLANNEL_IPV6_NETWORK", "line 1"),
        ("FLANNEL_MTU=1450\nFLANNEL_IPV6_SUBNET=10.1.74.1/24\n", "FLANNEL_IPV6_SUBNET", "line 2"),
        ("FLANNEL_IPV6_SUBNET=fc00::1/129\n", "FLANNEL_IPV6_SUBNET", "line 1"),
    ])
    func badIPv6ValuesNameFileLineAndKey(text: String, field: String, line: String) {
        expectOneLine(
            subnetEnvError(text),
            field: field,
            mentions: [line, "/run/flannel/subnet.env", "IPv6 CIDR", "e.g."]
        )
    }

    @Test func dockerOptionsIgnoreTheIPv6Lines() throws {
        // flannel's mk-docker-opts.sh reads FLANNEL_SUBNET, FLANNEL_MTU and FLANNEL_IPMASQ only.
        let dual = SubnetEnv(
            network: IPv4Prefix("10.1.0.0/16"),
            subnet: IPv4Prefix("10.1.74.0/24"),
            ipv6Network: IPv6Prefix("fc00::/48"),
            ipv6Subnet: IPv6Prefix("fc00:0:0:5::/64"),
            mtu: 1472,
            ipMasq: false
        )
        var plain = dual
        plain.ipv6Network = nil
        plain.ipv6Subnet = nil
        #expect(try DockerOptions().render(dual) == DockerOptions().render(plain))
    }
}
