import Addressing
import Config
import Foundation
import Testing

@testable import CNI

let sampleLease = SubnetLease(
    network: IPv4Prefix("10.244.0.0/16")!,
    subnet: IPv4Prefix("10.244.1.0/24")!,
    mtu: 1450,
    ipMasq: false
)

func pluginConfig(_ json: String) throws -> PluginConfig {
    try PluginConfig.parse(Array(json.utf8))
}

/// The delegate config as JSON text with sorted keys, for exact comparisons.
func rendered(_ json: String, lease: SubnetLease = sampleLease) throws -> String {
    String(
        decoding: DelegateConfig.render(try DelegateConfig.build(try pluginConfig(json), lease: lease)),
        as: UTF8.self
    )
}

func buildError(_ json: String) -> CNIError? {
    do {
        _ = try DelegateConfig.build(try PluginConfig.parse(Array(json.utf8)), lease: sampleLease)
        return nil
    } catch {
        return error
    }
}

@Suite struct DelegateConfigTests {
    /// kube-flannel.yml's conflist entry as the runtime passes it (name and cniVersion injected).
    @Test func flannelsSampleEntryBecomesABridgeWithHostLocal() throws {
        let text = try rendered(
            #"{"cniVersion":"0.3.1","name":"cbr0","type":"weft-cni","delegate":{"hairpinMode":true,"isDefaultGateway":true}}"#
        )
        #expect(
            text == #"{"cniVersion":"0.3.1","hairpinMode":true,"ipam":{"ranges":[[{"subnet":"10.244.1.0/24"}]],"#
                + #""routes":[{"dst":"10.244.0.0/16"}],"type":"host-local"},"ipMasq":true,"isDefaultGateway":true,"isGateway":true,"mtu":1450,"name":"cbr0","type":"bridge"}"#
        )
    }

    @Test func theDaemonsMasqueradeTurnsTheBridgesOff() throws {
        let lease = SubnetLease(network: sampleLease.network, subnet: sampleLease.subnet, mtu: 1472, ipMasq: true)
        let delegate = try DelegateConfig.build(try pluginConfig(#"{"name":"n"}"#), lease: lease)
        #expect(delegate["ipMasq"] as? Bool == false)
        #expect(delegate["mtu"] as? Int == 1472)
        #expect(delegate["cniVersion"] == nil, "an absent cniVersion stays absent, as in flannel")
    }

    @Test func valuesTheUserSetAreKept() throws {
        let delegate = try DelegateConfig.build(
            try pluginConfig(
                #"{"name":"n","delegate":{"ipMasq":true,"mtu":1400,"isGateway":false,"bridge":"weft0"}}"#
            ),
            lease: sampleLease
        )
        #expect(delegate["ipMasq"] as? Bool == true)
        #expect(delegate["mtu"] as? Int == 1400)
        #expect(delegate["isGateway"] as? Bool == false)
        #expect(delegate["bridge"] as? String == "weft0")
    }

    @Test func isGatewayIsOnlyForTheBridge() throws {
        let delegate = try DelegateConfig.build(
            try pluginConfig(#"{"name":"n","delegate":{"type":"ipvlan","master":"eth0"}}"#),
            lease: sampleLease
        )
        #expect(delegate["type"] as? String == "ipvlan")
        #expect(delegate["isGateway"] == nil)
        #expect(delegate["master"] as? String == "eth0")
    }

    @Test func ipamKeepsItsOwnKeysAndRoutesGainTheNetwork() throws {
        let text = try rendered(
            #"{"name":"n","ipam":{"type":"host-local","dataDir":"/run/ipam","ranges":[[{"subnet":"192.0.2.0/24"}]],"#
                + #""routes":[{"dst":"0.0.0.0/0","gw":"10.244.1.1"}]}}"#
        )
        #expect(
            text.contains(
                #""ipam":{"dataDir":"/run/ipam","ranges":[[{"subnet":"10.244.1.0/24"}]],"#
                    + #""routes":[{"dst":"0.0.0.0/0","gw":"10.244.1.1"},{"dst":"10.244.0.0/16"}],"type":"host-local"}"#
            ),
            "\(text)"
        )
    }

    @Test func runtimeConfigIsPassedOn() throws {
        let delegate = try DelegateConfig.build(
            try pluginConfig(#"{"name":"n","runtimeConfig":{"portMappings":[{"hostPort":80}]}}"#),
            lease: sampleLease
        )
        let runtime = try #require(delegate["runtimeConfig"] as? [String: Any])
        #expect((runtime["portMappings"] as? [[String: Any]])?.first?["hostPort"] as? Int == 80)
    }

    @Test func numbersAndNestedValuesRoundTrip() throws {
        let text = try rendered(
            #"{"name":"n","delegate":{"x":{"big":18446744073709551615,"neg":-3,"f":1.5,"nothing":null,"list":[true,"a"]}}}"#
        )
        #expect(
            text.contains(#""x":{"big":18446744073709551615,"f":1.5,"list":[true,"a"],"neg":-3,"nothing":null}"#),
            "\(text)"
        )
    }

    @Test func delegateRulesAreFlannels() {
        #expect(
            buildError(#"{"name":"n","delegate":{"type":7}}"#)?.message
                == "'delegate' dictionary, if present, must have (string) 'type' field"
        )
        #expect(
            buildError(#"{"name":"n","delegate":{"name":"x"}}"#)?.message
                == "'delegate' dictionary must not have 'name' field, it'll be set by weft-cni"
        )
        #expect(
            buildError(#"{"name":"n","delegate":{"ipam":{}}}"#)?.message
                == "'delegate' dictionary must not have 'ipam' field, it'll be set by weft-cni"
        )
        #expect(buildError(#"{"name":"n","delegate":{"ipam":{}}}"#)?.code == .invalidNetworkConfig)
    }

    @Test func malformedRoutesAreRefused() {
        #expect(
            buildError(#"{"name":"n","ipam":{"routes":"0.0.0.0/0"}}"#)?.message
                == "failed to assemble Delegate IPAM: failed to read IPAM routes: ipam.routes is a string, not an array"
        )
        #expect(
            buildError(#"{"name":"n","ipam":{"routes":[{"gw":"10.244.1.1"}]}}"#)?.message
                == "failed to assemble Delegate IPAM: failed to read IPAM routes: ipam.routes[0] has no \"dst\" string"
        )
    }
}

@Suite struct DualStackDelegateConfigTests {
    static let dual = SubnetLease(
        network: IPv4Prefix("10.244.0.0/16")!,
        subnet: IPv4Prefix("10.244.1.0/24")!,
        ipv6Network: IPv6Prefix("fc00::/48")!,
        ipv6Subnet: IPv6Prefix("fc00:0:0:1::/64")!,
        mtu: 1450,
        ipMasq: false
    )

    /// flannel's getDelegateIPAM: one range set per family, IPv4 first, and a route to each Network.
    @Test func hostLocalGetsBothRangesAndBothRoutes() throws {
        let text = try rendered(#"{"cniVersion":"1.0.0","name":"cbr0","type":"flannel"}"#, lease: Self.dual)
        #expect(
            text
                == #"{"cniVersion":"1.0.0","ipam":{"ranges":[[{"subnet":"10.244.1.0/24"}],[{"subnet":"fc00:0:0:1::/64"}]],"#
                + #""routes":[{"dst":"10.244.0.0/16"},{"dst":"fc00::/48"}],"type":"host-local"},"ipMasq":true,"isGateway":true,"mtu":1450,"name":"cbr0","type":"bridge"}"#
        )
    }

    @Test func anIPv6OnlyLeaseHasOnlyItsRangeAndRouteAfterTheUsersRoutes() throws {
        var lease = Self.dual
        lease.network = nil
        lease.subnet = nil
        let delegate = try DelegateConfig.build(
            try pluginConfig(#"{"name":"n","ipam":{"routes":[{"dst":"::/0"}]}}"#),
            lease: lease
        )
        let ipam = try #require(delegate["ipam"] as? [String: Any])
        #expect(
            String(decoding: DelegateConfig.render(ipam), as: UTF8.self).contains(
                #""ranges":[[{"subnet":"fc00:0:0:1::/64"}]]"#
            )
        )
        let routes = try #require(ipam["routes"] as? [[String: Any]])
        #expect(routes.compactMap { $0["dst"] as? String } == ["::/0", "fc00::/48"])
    }
}

@Suite struct DualStackSubnetLeaseTests {
    @Test func bothFamiliesAreReadAsNetworks() throws {
        let env = try SubnetEnv.parse(
            "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00:0:0:1::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
        )
        let lease = try SubnetLease(env, path: "/x")
        #expect(lease == DualStackDelegateConfigTests.dual.with(ipMasq: true))
    }

    @Test func eitherFamilySatisfiesFlannelsCheck() throws {
        let v6only = try SubnetEnv.parse(
            "FLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00:0:0:1::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n"
        )
        let lease = try SubnetLease(v6only, path: "/x")
        #expect(lease.subnet == nil && lease.ipv6Subnet == IPv6Prefix("fc00:0:0:1::/64")!)
        let noSubnet = try SubnetEnv.parse("FLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n")
        #expect {
            try SubnetLease(noSubnet, path: "/run/flannel/subnet.env")
        } throws: { error in
            (error as? CNIError)?.message
                == "loadFlannelSubnetEnv failed: /run/flannel/subnet.env is missing FLANNEL_SUBNET, FLANNEL_IPV6_SUBNET"
        }
    }
}

extension SubnetLease {
    fileprivate func with(ipMasq: Bool) -> SubnetLease {
        var copy = self
        copy.ipMasq = ipMasq
        return copy
    }
}
