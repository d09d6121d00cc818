import Addressing
import ConfigTestSupport
import Testing

@testable import Config

/// The IPv6 half of the config as flannel validates it.
func validatedIPv6(_ json: String, checks: NetworkConfig.Checks = .allocation) throws -> IPv6Allocation? {
    try NetworkConfig.validated(Array(json.utf8), checks: checks).ipv6
}

func validationError(
    _ json: String,
    checks: NetworkConfig.Checks = .allocation,
    sourceLocation: SourceLocation = #_sourceLocation
) -> ConfigError? {
    do {
        let config = try NetworkConfig.validated(Array(json.utf8), checks: checks)
        Issue.record("expected an error, got \(String(describing: config))", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

func dualStack(_ ipv6Fields: String) -> String {
    #"{"Network":"10.244.0.0/16","EnableIPv6":true,\#(ipv6Fields)}"#
}

@Suite struct IPv6NetworkConfigDefaults {
    @Test func flannelsOwnExample() throws {
        // The reference: fc00::/48 gives Min fc00:0:0:1::, Max fc00:0:0:ffff::, Len 64.
        let ipv6 = try #require(try validatedIPv6(dualStack(#""IPv6Network":"fc00::/48""#)))
        #expect(ipv6.network == IPv6Prefix("fc00::/48"))
        #expect(ipv6.subnetLength == 64)
        #expect(ipv6.subnetMin == IPv6Address("fc00:0:0:1::"))
        #expect(ipv6.subnetMax == IPv6Address("fc00:0:0:ffff::"))
    }

    @Test(arguments: [
        // (network, subnet length, min, max), worked out by hand from flannel's rules.
        ("2001:cafe:42::/56", 64, "2001:cafe:42:1::", "2001:cafe:42:ff::"),
        ("fc00::/62", 64, "fc00:0:0:1::", "fc00:0:0:3::"),
        ("fc00::/63", 65, "fc00::8000:0:0:0", "fc00:0:0:1:8000::"),
        ("fc00::/100", 102, "fc00::400:0", "fc00::c00:0"),
        ("fc00::/124", 126, "fc00::4", "fc00::c"),
    ])
    func defaultsFollowTheNetworkSize(network: String, length: Int, min: String, max: String) throws {
        let ipv6 = try #require(try validatedIPv6(dualStack(#""IPv6Network":"\#(network)""#)))
        #expect(ipv6.subnetLength == length)
        #expect(ipv6.subnetMin == IPv6Address(min), "\(ipv6.subnetMin)")
        #expect(ipv6.subnetMax == IPv6Address(max), "\(ipv6.subnetMax)")
    }

    @Test func hostBitsOfTheIPv6NetworkAreMasked() throws {
        let ipv6 = try #require(try validatedIPv6(dualStack(#""IPv6Network":"fc00::1:2:3/48""#)))
        #expect(ipv6.network.description == "fc00::/48")
    }

    @Test func explicitValuesAreKept() throws {
        let ipv6 = try #require(
            try validatedIPv6(
                dualStack(
                    #""IPv6Network":"fc00::/48","IPv6SubnetLen":80,"IPv6SubnetMin":"fc00:0:0:10::","IPv6SubnetMax":"fc00:0:0:10:ffff::""#
                )
            )
        )
        #expect(ipv6.subnetLength == 80)
        #expect(ipv6.subnetMin == IPv6Address("fc00:0:0:10::"))
        #expect(ipv6.subnetMax == IPv6Address("fc00:0:0:10:ffff::"))
        #expect(ipv6.fits(IPv6Prefix("fc00:0:0:10:8000::/80")!))
        #expect(!ipv6.fits(IPv6Prefix("fc00:0:0:11::/80")!), "above IPv6SubnetMax")
        #expect(!ipv6.fits(IPv6Prefix("fc00:0:0:10::/64")!), "wrong length")
    }

    @Test func zeroValuesMeanUnset() throws {
        let ipv6 = try #require(
            try validatedIPv6(
                dualStack(
                    #""IPv6Network":"fc00::/48","IPv6SubnetLen":0,"IPv6SubnetMin":"::","IPv6SubnetMax":"::""#
                )
            )
        )
        #expect(ipv6.subnetLength == 64)
        #expect(ipv6.subnetMin == IPv6Address("fc00:0:0:1::"))
        #expect(ipv6.subnetMax == IPv6Address("fc00:0:0:ffff::"))
    }

    @Test func keysAreCaseInsensitive() throws {
        let ipv6 = try #require(
            try validatedIPv6(
                #"{"network":"10.244.0.0/16","enableipv6":true,"IPV6NETWORK":"fc00::/48","ipv6subnetlen":56,"Ipv6SubnetMax":"fc00:0:0:ff00::"}"#
            )
        )
        #expect(ipv6.subnetLength == 56)
        #expect(ipv6.subnetMin == IPv6Address("fc00:0:0:100::"))
        #expect(ipv6.subnetMax == IPv6Address("fc00:0:0:ff00::"))
    }

    @Test func ipv6IsAbsentWhenEnableIPv6IsFalse() throws {
        let config = try NetworkConfig.validated(
            Array(#"{"Network":"10.3.0.0/16","IPv6Network":"fc00::/48"}"#.utf8),
            checks: .allocation
        )
        #expect(config.ipv6 == nil)
        #expect(try NetworkConfig.parse(#"{"Network":"10.3.0.0/16","IPv6Network":"fc00::/48"}"#) == config)
    }

    @Test func ipv6OnlyNeedsNoNetwork() throws {
        // EnableIPv4 false: the IPv4 fields are not read for the lease, as flannel skips them.
        let config = try NetworkConfig.parse(#"{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48"}"#)
        #expect(config.ipv4 == nil && config.isIPv6Only)
        #expect(config.network == nil && config.subnets == nil)
        #expect(config.ipv6?.network == IPv6Prefix("fc00::/48") && config.ipv6?.subnetLength == 64)
        #expect(config.backend.kind == .udp)
    }

    @Test func ipv6OnlyIgnoresAnIPv4NetworkItHasTurnedOff() throws {
        let config = try NetworkConfig.parse(
            #"{"Network":"10.5.0.0/16","EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"host-gw"}}"#
        )
        #expect(config.ipv4 == nil && config.ipv6?.network == IPv6Prefix("fc00::/48"))
    }
}

@Suite struct IPv6NetworkConfigValidation {
    @Test func ipv6NetworkIsRequiredWhenEnabled() {
        expectOneLine(
            validationError(#"{"Network":"10.244.0.0/16","EnableIPv6":true}"#),
            field: "IPv6Network",
            mentions: ["missing", "fc00::/48", "EnableIPv6"]
        )
    }

    @Test(arguments: ["fc00::/125", "fc00::/127", "fc00::1/128"])
    func networksLongerThan124AreTooSmall(network: String) {
        expectOneLine(
            validationError(dualStack(#""IPv6Network":"\#(network)""#)),
            field: "IPv6Network",
            mentions: ["too small", "/124"]
        )
    }

    @Test func theWholeAddressSpaceIsRefused() {
        expectOneLine(
            validationError(dualStack(#""IPv6Network":"::/0""#)),
            field: "IPv6Network",
            mentions: ["::/0", "e.g."]
        )
    }

    @Test func anIPv4CIDRIsRefusedWhenIPv6IsOn() {
        // Go's net.ParseCIDR takes it, so it only matters once EnableIPv6 uses it.
        expectOneLine(
            validationError(dualStack(#""IPv6Network":"10.0.0.0/8""#)),
            field: "IPv6Network",
            mentions: ["IPv4", "fc00::/48"]
        )
        #expect(throws: Never.self) {
            try NetworkConfig.parse(#"{"Network":"10.3.0.0/16","IPv6Network":"10.0.0.0/8"}"#)
        }
    }

    @Test func subnetLengthAbove126() {
        let error = validationError(dualStack(#""IPv6Network":"fc00::/48","IPv6SubnetLen":127"#))
        #expect(
            error?.description
                == #"config: IPv6SubnetLen 127 is larger than 126; use an IPv6SubnetLen between 50 and 126 (e.g. "IPv6SubnetLen": 64)"#
        )
        expectOneLine(
            validationError(dualStack(#""IPv6Network":"fc00::/48","IPv6SubnetLen":200"#)),
            field: "IPv6SubnetLen",
            mentions: ["200", "126"]
        )
    }

    @Test func subnetLength126IsTheLongestAccepted() throws {
        let ipv6 = try #require(try validatedIPv6(dualStack(#""IPv6Network":"fc00::/120","IPv6SubnetLen":126"#)))
        #expect(ipv6.subnetMin == IPv6Address("fc00::4"))
        #expect(ipv6.subnetMax == IPv6Address("fc00::fc"))
    }

    @Test func fewerThanFourSubnets() {
        expectOneLine(
            validationError(dualStack(#""IPv6Network":"fc00::/48","IPv6SubnetLen":49"#)),
            field: "IPv6SubnetLen",
            mentions: ["49", "four", "50", "fc00::/48"]
        )
        expectOneLine(
            validationError(dualStack(#""IPv6Network":"fc00::/48","IPv6SubnetLen":16"#)),
            field: "IPv6SubnetLen",
            mentions: ["16"]
        )
    }

    @Test func exactlyFourSubnetsIsEnough() throws {
        let ipv6 = try #require(try validatedIPv6(dualStack(#""IPv6Network":"fc00::/48","IPv6SubnetLen":50"#)))
        #expect(ipv6.subnetMin == IPv6Address("fc00:0:0:4000::"))
        #expect(ipv6.subnetMax == IPv6Address("fc00:0:0:c000::"))
    }

    @Test func subnetMinOutsideNetwork() {
        expectOneLine(
            validationError(dualStack(#""IPv6Network":"fc00::/48","IPv6SubnetMin":"fd00::""#)),
            field: "IPv6SubnetMin",
            mentions: ["fd00::", "range of the IPv6Network", "fc00:0:0:1::"]
        )
    }

    @Test func subnetMaxOutsideNetwork() {
        expectOneLine(
            validationError(dualStack(#""IPv6Network":"fc00::/48","IPv6SubnetMax":"fc00:1::""#)),
            field: "IPv6SubnetMax",
            mentions: ["fc00:1::", "fc00:0:0:ffff::"]
        )
    }

    @Test func anIPv4SubnetMinIsOutsideTheNetwork() {
        // Go reads a dotted quad as its IPv4-mapped address, which no IPv6Network of flannel's holds.
        expectOneLine(
            validationError(dualStack(#""IPv6Network":"fc00::/48","IPv6SubnetMin":"10.0.0.0""#)),
            field: "IPv6SubnetMin",
            mentions: ["10.0.0.0", "range"]
        )
    }

    @Test func subnetMinOffBoundary() {
        expectOneLine(
            validationError(dualStack(#""IPv6Network":"fc00::/48","IPv6SubnetMin":"fc00:0:0:1::5""#)),
            field: "IPv6SubnetMin",
            mentions: ["fc00:0:0:1::5", "boundary", "/64", "\"fc00:0:0:1::\""]
        )
    }

    @Test func subnetMaxOffBoundary() {
        expectOneLine(
            validationError(
                dualStack(#""IPv6Network":"fc00::/48","IPv6SubnetLen":56,"IPv6SubnetMax":"fc00:0:0:ff80::""#)
            ),
            field: "IPv6SubnetMax",
            mentions: ["fc00:0:0:ff80::", "\"fc00:0:0:ff00::\""]
        )
    }

    @Test func subnetMinAboveMax() {
        expectOneLine(
            validationError(
                dualStack(#""IPv6Network":"fc00::/48","IPv6SubnetMin":"fc00:0:0:9::","IPv6SubnetMax":"fc00:0:0:2::""#)
            ),
            field: "IPv6SubnetMin",
            mentions: ["fc00:0:0:9::", "fc00:0:0:2::", "swap"]
        )
    }

    @Test(arguments: [
        (#"{"Network":"10.0.0.0/16","IPv6Network": 6}"#, "IPv6Network", "a number"),
        (#"{"Network":"10.0.0.0/16","IPv6Network": "fc00::"}"#, "IPv6Network", "not an IPv6 CIDR"),
        (#"{"Network":"10.0.0.0/16","IPv6Network": "fc00::/129"}"#, "IPv6Network", "fc00::/129"),
        (#"{"Network":"10.0.0.0/16","IPv6Network": "fc00:::/48"}"#, "IPv6Network", "not an IPv6 CIDR"),
        (#"{"Network":"10.0.0.0/16","IPv6SubnetLen": "64"}"#, "IPv6SubnetLen", "a string"),
        (#"{"Network":"10.0.0.0/16","IPv6SubnetLen": 64.5}"#, "IPv6SubnetLen", "64.5"),
        (#"{"Network":"10.0.0.0/16","IPv6SubnetLen": -1}"#, "IPv6SubnetLen", "negative"),
        (#"{"Network":"10.0.0.0/16","IPv6SubnetMin": 5}"#, "IPv6SubnetMin", "a number"),
        (#"{"Network":"10.0.0.0/16","IPv6SubnetMin": "fc00::g"}"#, "IPv6SubnetMin", "not an IPv6 address"),
        (#"{"Network":"10.0.0.0/16","IPv6SubnetMax": "fc00::/64"}"#, "IPv6SubnetMax", "not an IPv6 address"),
    ])
    func malformedIPv6FieldsFailEvenWithIPv6Off(json: String, field: String, mention: String) {
        // Go decodes every field before anything looks at EnableIPv6.
        expectOneLine(configError(json), field: field, mentions: [mention, "e.g."])
    }

    @Test func nullLeavesAnIPv6FieldUnset() throws {
        let ipv6 = try #require(
            try validatedIPv6(dualStack(#""IPv6Network":"fc00::/48","IPv6SubnetLen":null,"IPv6SubnetMin":null"#))
        )
        #expect(ipv6.subnetLength == 64)
    }
}

@Suite struct IPv6NetworkConfigRefusal {
    /// Every backend carries a dual-stack network: host-gw routes the IPv6 subnets via the peers'
    /// PublicIPv6, the udp engine carries inner IPv6, vxlan has flannel-v6.<VNI> (udp is the default).
    @Test func enableIPv6IsTakenWithEveryBackend() throws {
        for (backend, kind) in [
            (#","Backend":{"Type":"host-gw"}"#, BackendConfig.Kind.hostGateway), ("", .udp),
            (#","Backend":{"Type":"vxlan"}"#, .vxlan),
        ] {
            let config = try NetworkConfig.parse(
                #"{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48"\#(backend)}"#
            )
            #expect(config.ipv6?.network == IPv6Prefix("fc00::/48"))
            #expect(config.backend.kind == kind)
        }
    }

    @Test func theIPv6FieldsAreValidated() {
        expectOneLine(configError(dualStack(#""IPv6Network":"fc00::/48","IPv6SubnetLen":127"#)), field: "IPv6SubnetLen")
        expectOneLine(configError(dualStack(#""IPv6Network":"fc00::/125""#)), field: "IPv6Network")
        expectOneLine(configError(#"{"EnableIPv6":true}"#), field: "IPv6Network", mentions: ["missing"])
        expectOneLine(
            configError(#"{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","IPv6SubnetMin":"fd00::"}"#),
            field: "IPv6SubnetMin"
        )
    }

    @Test func theIPv4FieldsAreValidatedBesideTheIPv6Ones() {
        expectOneLine(
            configError(#"{"Network":"10.0.0.0/16","SubnetLen":31,"EnableIPv6":true,"IPv6Network":"fc00::/48"}"#),
            field: "SubnetLen"
        )
    }

    @Test func neitherFamilyIsAConfigError() {
        expectOneLine(
            configError(#"{"Network":"10.0.0.0/16","EnableIPv4":false}"#),
            field: "EnableIPv4",
            mentions: ["both false", "EnableIPv6"]
        )
    }

    @Test func kubernetesModeTakesItTheSameWay() throws {
        let vxlan = #"{"Network":"10.0.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"vxlan"}}"#
        #expect(try NetworkConfig.parse(vxlan, checks: .podCIDRs).ipv6?.network == IPv6Prefix("fc00::/48"))
    }
}

@Suite struct IPv6NetworkConfigKubernetesMode {
    @Test func subnetFieldsAreNotValidatedAndFallBackToTheDefaults() throws {
        let json = dualStack(#""IPv6Network":"fc00::/126","IPv6SubnetLen":127,"IPv6SubnetMin":"fd00::""#)
        #expect(validationError(json) != nil)
        let ipv6 = try #require(try validatedIPv6(json, checks: .podCIDRs))
        #expect(ipv6.network == IPv6Prefix("fc00::/126"))
        let defaults = IPv6Allocation.defaultSubnets(of: ipv6.network)
        #expect(
            ipv6.subnetLength == defaults.length && ipv6.subnetMin == defaults.min && ipv6.subnetMax == defaults.max
        )
        #expect(ipv6.subnetLength == 128)
    }

    @Test func validSubnetFieldsAreKeptAsEtcdModeKeepsThem() throws {
        let json = dualStack(#""IPv6Network":"fc00::/48","IPv6SubnetLen":80,"IPv6SubnetMin":"fc00:0:0:10::""#)
        #expect(try validatedIPv6(json, checks: .podCIDRs) == validatedIPv6(json))
    }

    @Test func theIPv6NetworkIsStillRequiredAndTyped() {
        #expect(
            validationError(#"{"Network":"10.0.0.0/16","EnableIPv6":true}"#, checks: .podCIDRs)?.field == "IPv6Network"
        )
        #expect(
            validationError(#"{"Network":"10.0.0.0/16","IPv6SubnetLen":"x"}"#, checks: .podCIDRs)?.field
                == "IPv6SubnetLen"
        )
    }
}

@Suite struct FlannelIPv6TextTests {
    @Test func printsAsGoPrintsFlannelsIP6() {
        #expect(FlannelIPv6Text.address(IPv6Address("fc00:0:0:5::")!) == "fc00:0:0:5::")
        #expect(FlannelIPv6Text.address(IPv6Address("2001:DB8:0:0:1:0:0:1")!) == "2001:db8::1:0:0:1")
        #expect(FlannelIPv6Text.address(.any) == "::")
        #expect(FlannelIPv6Text.address(IPv6Address("::1")!) == "::1")
        #expect(FlannelIPv6Text.address(IPv6Address("::ff:ffff")!) == "::ff:ffff")
        // Through big.Int's four minimal bytes, and Go's dotted quad for IPv4-mapped.
        #expect(FlannelIPv6Text.address(IPv6Address("::102:304")!) == "1.2.3.4")
        #expect(FlannelIPv6Text.address(IPv6Address("::ffff:10.0.0.1")!) == "10.0.0.1")
        #expect(FlannelIPv6Text.prefix(IPv6Prefix("fc00::/48")!, separator: "-") == "fc00::-48")
    }

    @Test func readsAsGoParsesIP() {
        #expect(FlannelIPv6Text.parseAddress("FC00::1") == IPv6Address("fc00::1"))
        #expect(FlannelIPv6Text.parseAddress("10.0.0.1") == IPv6Address("::ffff:10.0.0.1"))
        #expect(FlannelIPv6Text.parseAddress("fc00::/64") == nil)
        #expect(FlannelIPv6Text.parseAddress("") == nil)
    }
}
