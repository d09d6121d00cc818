import Addressing
import ConfigTestSupport
import Testing

@testable import Config

/// Parses and expects failure; returns the error for further checks.
func configError(_ json: String, sourceLocation: SourceLocation = #_sourceLocation) -> ConfigError? {
    do {
        let config = try NetworkConfig.parse(json)
        Issue.record("expected an error, got \(config)", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

@Suite struct NetworkConfigDefaults {
    @Test func flannelsOwnExample() throws {
        // pkg/subnet/config_test.go: 10.3.0.0/16 gives Min 10.3.1.0, Max 10.3.255.0, Len 24.
        let config = try NetworkConfig.parse(#"{ "network": "10.3.0.0/16" }"#)
        #expect(config.network == IPv4Prefix("10.3.0.0/16"))
        #expect(config.subnetLength == 24)
        #expect(config.subnetMin == IPv4Address("10.3.1.0"))
        #expect(config.subnetMax == IPv4Address("10.3.255.0"))
        #expect(config.backend == .udp)
        #expect(config.enableNFTables == false)
    }

    @Test func hostBitsOfTheNetworkAreMasked() throws {
        let config = try NetworkConfig.parse(#"{"Network": "10.1.2.3/16"}"#)
        #expect(config.network?.description == "10.1.0.0/16")
    }

    @Test(arguments: [
        // (network, subnet length, min, max), worked out by hand from flannel's rules.
        ("10.0.0.0/8", 24, "10.0.1.0", "10.255.255.0"),
        ("10.244.0.0/22", 24, "10.244.1.0", "10.244.3.0"),
        ("10.244.0.0/23", 25, "10.244.0.128", "10.244.1.128"),
        ("192.168.1.0/24", 26, "192.168.1.64", "192.168.1.192"),
        ("192.168.1.0/28", 30, "192.168.1.4", "192.168.1.12"),
    ])
    func defaultsFollowTheNetworkSize(network: String, length: Int, min: String, max: String) throws {
        let config = try NetworkConfig.parse(#"{"Network": "\#(network)"}"#)
        #expect(config.subnetLength == length)
        #expect(config.subnetMin?.description == min)
        #expect(config.subnetMax?.description == max)
    }

    @Test func explicitValuesAreKept() throws {
        let config = try NetworkConfig.parse(
            #"""
            {"Network":"10.244.0.0/16","SubnetLen":26,"SubnetMin":"10.244.16.0","SubnetMax":"10.244.31.192",
             "EnableNFTables": true, "Backend":{"Type":"vxlan","VNI":1,"Port":8472}}
            """#
        )
        #expect(config.subnetLength == 26)
        #expect(config.subnetMin == IPv4Address(10, 244, 16, 0))
        #expect(config.subnetMax == IPv4Address(10, 244, 31, 192))
        #expect(config.enableNFTables)
        #expect(config.backend == BackendConfig(kind: .vxlan, vni: 1, port: 8472))
    }

    @Test func zeroValuesMeanUnset() throws {
        let config = try NetworkConfig.parse(
            #"{"Network":"10.3.0.0/16","SubnetLen":0,"SubnetMin":"0.0.0.0","SubnetMax":"0.0.0.0"}"#
        )
        #expect(config.subnetLength == 24)
        #expect(config.subnetMin?.description == "10.3.1.0")
        #expect(config.subnetMax?.description == "10.3.255.0")
    }

    @Test func keysAreCaseInsensitiveAndUnknownKeysIgnored() throws {
        let config = try NetworkConfig.parse(
            #"""
            {"NETWORK":"10.5.0.0/16","subnetlen":25,"subnetMIN":"10.5.1.0","SUBNETMAX":"10.5.9.128",
             "enableipv4":true,"enableIPV6":false,"Whatever":[1,{"x":null}],
             "backend":{"TYPE":"VxLan","vni":7,"port":4789}}
            """#
        )
        #expect(config.network?.description == "10.5.0.0/16")
        #expect(config.subnetLength == 25)
        #expect(config.subnetMax?.description == "10.5.9.128")
        #expect(config.backend.kind == .vxlan)
        #expect(config.backend.vni == 7)
        #expect(config.backend.effectivePort == 4789)
    }

    @Test func laterDuplicateWinsAndNullLeavesAFieldAlone() throws {
        // Go's decoder applies members in order; null does not reset a field.
        let config = try NetworkConfig.parse(
            #"{"Network":"10.1.0.0/16","network":"10.2.0.0/16","SubnetLen":25,"subnetlen":null}"#
        )
        #expect(config.network?.description == "10.2.0.0/16")
        #expect(config.subnetLength == 25)
    }

    @Test func topLevelNullIsAnEmptyConfig() {
        expectOneLine(configError("null"), field: "Network", mentions: ["missing"])
    }
}

@Suite struct NetworkConfigValidation {
    @Test func networkIsRequired() {
        expectOneLine(configError(#"{"SubnetLen": 24}"#), field: "Network", mentions: ["missing", "10.244.0.0/16"])
    }

    @Test(arguments: ["10.0.0.0/29", "10.0.0.1/32", "10.0.0.0/30"])
    func networksLongerThan28AreTooSmall(network: String) {
        expectOneLine(configError(#"{"Network":"\#(network)"}"#), field: "Network", mentions: ["too small", "/28"])
    }

    @Test func theWholeAddressSpaceIsRefused() {
        expectOneLine(configError(#"{"Network":"0.0.0.0/0"}"#), field: "Network", mentions: ["0.0.0.0/0"])
    }

    @Test func subnetLengthAbove30() {
        let error = configError(#"{"Network":"10.0.0.0/14","SubnetLen":33}"#)
        #expect(
            error?.description
                == #"config: SubnetLen 33 is larger than 30; use a SubnetLen between 16 and 30 (e.g. "SubnetLen": 24)"#
        )
        expectOneLine(
            configError(#"{"Network":"10.0.0.0/16","SubnetLen":31}"#),
            field: "SubnetLen",
            mentions: ["31", "30"]
        )
    }

    @Test func subnetLength30IsTheLongestAccepted() throws {
        let config = try NetworkConfig.parse(#"{"Network":"10.0.0.0/16","SubnetLen":30}"#)
        #expect(config.subnetMin?.description == "10.0.0.4")
        #expect(config.subnetMax?.description == "10.0.255.252")
    }

    @Test func fewerThanFourSubnets() {
        // /16 split into /17s is only two subnets.
        expectOneLine(
            configError(#"{"Network":"10.0.0.0/16","SubnetLen":17}"#),
            field: "SubnetLen",
            mentions: ["17", "four", "18"]
        )
        expectOneLine(configError(#"{"Network":"10.0.0.0/16","SubnetLen":8}"#), field: "SubnetLen", mentions: ["8"])
    }

    @Test func exactlyFourSubnetsIsEnough() throws {
        let config = try NetworkConfig.parse(#"{"Network":"10.0.0.0/16","SubnetLen":18}"#)
        #expect(config.subnets?.count == 3)  // the first of the four is skipped
    }

    @Test func subnetMinOutsideNetwork() {
        expectOneLine(
            configError(#"{"Network":"10.3.0.0/16","SubnetMin":"10.4.0.0"}"#),
            field: "SubnetMin",
            mentions: ["10.4.0.0", "range of the Network", "10.3.1.0"]
        )
    }

    @Test func subnetMaxOutsideNetwork() {
        expectOneLine(
            configError(#"{"Network":"10.3.0.0/16","SubnetMax":"10.2.255.0"}"#),
            field: "SubnetMax",
            mentions: ["10.2.255.0", "10.3.255.0"]
        )
    }

    @Test func subnetMinOffBoundary() {
        expectOneLine(
            configError(#"{"Network":"10.3.0.0/16","SubnetMin":"10.3.1.5"}"#),
            field: "SubnetMin",
            mentions: ["10.3.1.5", "boundary", "10.3.1.0"]
        )
    }

    @Test func subnetMaxOffBoundary() {
        expectOneLine(
            configError(#"{"Network":"10.3.0.0/16","SubnetLen":26,"SubnetMax":"10.3.200.100"}"#),
            field: "SubnetMax",
            mentions: ["10.3.200.100", "10.3.200.64"]
        )
    }

    @Test func subnetMinAboveMax() {
        expectOneLine(
            configError(#"{"Network":"10.3.0.0/16","SubnetMin":"10.3.9.0","SubnetMax":"10.3.2.0"}"#),
            field: "SubnetMin",
            mentions: ["10.3.9.0", "10.3.2.0"]
        )
    }

    @Test func minEqualToMaxIsOneSubnet() throws {
        let config = try NetworkConfig.parse(
            #"{"Network":"10.3.0.0/16","SubnetMin":"10.3.7.0","SubnetMax":"10.3.7.0"}"#
        )
        #expect(Array(try #require(config.subnets)) == [IPv4Prefix("10.3.7.0/24")!])
    }

    @Test func ipv4OffIsRefused() {
        expectOneLine(configError(#"{"EnableIPv4":false,"EnableIPv6":false}"#), field: "EnableIPv4")
    }

    @Test func ipv6FieldsParseWhenIPv6IsOff() throws {
        let config = try NetworkConfig.parse(#"{"Network":"10.3.0.0/16","EnableIPv6":false,"IPv6Network":"fc00::/48"}"#)
        #expect(config.subnetLength == 24)
    }
}

@Suite struct NetworkConfigTypeErrors {
    @Test(arguments: [
        (#"{"Network": 5}"#, "Network", "a number"),
        (#"{"Network": "10.0.0.0"}"#, "Network", "not an IPv4 CIDR"),
        (#"{"Network": "10.0.0.0/33"}"#, "Network", "not an IPv4 CIDR"),
        (#"{"Network": "fc00::/48"}"#, "Network", "not an IPv4 CIDR"),
        (#"{"Network":"10.0.0.0/16","SubnetLen": "24"}"#, "SubnetLen", "a string"),
        (#"{"Network":"10.0.0.0/16","SubnetLen": 24.5}"#, "SubnetLen", "24.5"),
        (#"{"Network":"10.0.0.0/16","SubnetLen": 2.4e1}"#, "SubnetLen", "2.4e1"),
        (#"{"Network":"10.0.0.0/16","SubnetLen": -1}"#, "SubnetLen", "-1"),
        (#"{"Network":"10.0.0.0/16","SubnetLen": 99999999999999999999}"#, "SubnetLen", "out of range"),
        (#"{"Network":"10.0.0.0/16","SubnetMin": 5}"#, "SubnetMin", "a number"),
        (#"{"Network":"10.0.0.0/16","SubnetMax": "10.0.300.0"}"#, "SubnetMax", "10.0.300.0"),
        (#"{"Network":"10.0.0.0/16","EnableIPv6": "no"}"#, "EnableIPv6", "true or false"),
        (#"{"Network":"10.0.0.0/16","EnableIPv4": 1}"#, "EnableIPv4", "true or false"),
        (#"{"Network":"10.0.0.0/16","IPv6Network": 6}"#, "IPv6Network", "a number"),
        (#"{"Network":"10.0.0.0/16","Backend": "vxlan"}"#, "Backend", "an object"),
        (#"{"Network":"10.0.0.0/16","Backend": {"Type": 1}}"#, "Backend.Type", "a number"),
    ])
    func wrongTypesNameTheField(json: String, field: String, mention: String) {
        expectOneLine(configError(json), field: field, mentions: [mention])
    }

    @Test func typeErrorInAnOverriddenDuplicateStillFails() {
        // Go reports the bad member even when a later one would have won.
        expectOneLine(configError(#"{"SubnetLen":"x","Network":"10.0.0.0/16","subnetlen":24}"#), field: "SubnetLen")
    }

    @Test func aNonObjectDocumentIsRefused() {
        expectOneLine(configError(#"["Network"]"#), field: "JSON", mentions: ["an array"])
        expectOneLine(configError(#""10.0.0.0/16""#), field: "JSON", mentions: ["a string"])
    }

    @Test(arguments: [
        ("", "end of input"),
        ("{", "end of input"),
        (#"{"Network": "10.0.0.0/16",}"#, "line 1, column 27"),
        ("{\n  \"Network\": \"10.0.0.0/16\"\n  \"SubnetLen\": 24\n}", "line 3, column 3"),
        (#"{"Network": '10.0.0.0/16'}"#, "'''"),
        (#"{"Network": "10.0.0.0/16"} x"#, "after the end"),
        (#"{"Network": tru}"#, "column 13"),
        (#"{"Network": 01}"#, "column 14"),
        (#"{"Network": "a\qb"}"#, "escape"),
        ("{\"Network\": \"a\nb\"}", "control character"),
    ])
    func invalidJSONIsOneLineWithAPosition(json: String, mention: String) {
        expectOneLine(configError(json), field: "JSON", mentions: ["invalid JSON", mention])
    }

    @Test func hostileNestingIsRefusedNotACrash() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        expectOneLine(configError(#"{"Network":"10.0.0.0/16","x":\#(deep)}"#), field: "JSON", mentions: ["nesting"])
    }
}

@Suite struct BackendParsing {
    func backend(_ json: String) throws -> BackendConfig {
        try NetworkConfig.parse(#"{"Network":"10.244.0.0/16","Backend":\#(json)}"#).backend
    }

    func backendError(_ json: String) -> ConfigError? {
        configError(#"{"Network":"10.244.0.0/16","Backend":\#(json)}"#)
    }

    @Test func absentBackendIsUDP() throws {
        // flannel's parseBackendType returns "udp" for an absent Backend, whatever its docs say.
        let config = try NetworkConfig.parse(#"{"Network":"10.244.0.0/16"}"#)
        #expect(config.backend.kind == .udp)
        #expect(config.backend.effectivePort == 8285)
    }

    @Test func backendWithoutTypeIsAnError() {
        expectOneLine(backendError("{}"), field: "Backend.Type", mentions: ["missing"])
        expectOneLine(backendError("null"), field: "Backend.Type")
        expectOneLine(backendError(#"{"Type":""}"#), field: "Backend.Type")
    }

    @Test(arguments: ["wireguard", "ipip", "ipsec", "alloc", "extension", "tencent-vpc", "WireGuard"])
    func flannelsOtherBackendsAreNamedAsUnsupported(type: String) {
        let error = backendError(#"{"Type":"\#(type)"}"#)
        #expect(
            error?.description
                == "config: backend \(type.lowercased()) is not supported by Weft (supported: udp, vxlan, host-gw)"
        )
        #expect(error?.field == "Backend.Type")
    }

    @Test func unknownBackendType() {
        let error = backendError(#"{"Type":"Carrier-Pigeon"}"#)
        #expect(error?.description.hasPrefix("config: unknown backend type: Carrier-Pigeon") == true)
        expectOneLine(error, field: "Backend.Type", mentions: ["udp, vxlan, host-gw"])
    }

    @Test func vxlanDefaults() throws {
        let vxlan = try backend(#"{"Type":"vxlan"}"#)
        #expect(vxlan == .vxlan)
        #expect(vxlan.vni == 1)
        #expect(vxlan.port == 0)
        #expect(vxlan.effectivePort == 8472)
        #expect(vxlan.overhead == 50)
        #expect(vxlan.overlayMTU(underlayMTU: 1500) == 1450)
        #expect(vxlan.underlayMTU == nil)
    }

    @Test func vxlanSettings() throws {
        let vxlan = try backend(
            #"{"Type":"vxlan","VNI":16777215,"Port":4789,"MTU":9001,"GBP":false,"DirectRouting":false,"Learning":false,"MacPrefix":"0E-2A","Name":"x"}"#
        )
        #expect(vxlan.vni == 16_777_215)
        #expect(vxlan.effectivePort == 4789)
        #expect(vxlan.underlayMTU == 9001)
        // Backend.MTU replaces the interface MTU before the overhead is taken off.
        #expect(vxlan.overlayMTU(underlayMTU: 1500) == 8951)
        #expect(vxlan.otherKeys == ["MacPrefix": "\"0E-2A\"", "Name": "\"x\""])
    }

    @Test func vxlanDirectRoutingIsReadAndOffByDefault() throws {
        #expect(try backend(#"{"Type":"vxlan","DirectRouting":true}"#).directRouting)
        #expect(try !backend(#"{"Type":"vxlan","DirectRouting":false}"#).directRouting)
        #expect(try !backend(#"{"Type":"vxlan"}"#).directRouting)
        #expect(try backend(#"{"Type":"vxlan","DirectRouting":true}"#).otherKeys.isEmpty)
    }

    @Test func vxlanVNIZeroAndMTUZeroAreAccepted() throws {
        let vxlan = try backend(#"{"Type":"vxlan","VNI":0,"MTU":0}"#)
        #expect(vxlan.vni == 0)
        #expect(vxlan.underlayMTU == nil)
    }

    @Test(arguments: [
        (#"{"Type":"vxlan","VNI":16777216}"#, "Backend.VNI", "16777216"),
        (#"{"Type":"vxlan","VNI":-1}"#, "Backend.VNI", "-1"),
        (#"{"Type":"vxlan","VNI":"1"}"#, "Backend.VNI", "a string"),
        (#"{"Type":"vxlan","Port":65536}"#, "Backend.Port", "65536"),
        (#"{"Type":"vxlan","MTU":100}"#, "Backend.MTU", "100"),
        (#"{"Type":"vxlan","MTU":1500.5}"#, "Backend.MTU", "1500.5"),
        (#"{"Type":"vxlan","GBP":true}"#, "Backend.GBP", "not supported"),
        (#"{"Type":"vxlan","DirectRouting":1}"#, "Backend.DirectRouting", "true or false"),
        (#"{"Type":"vxlan","Learning":true}"#, "Backend.Learning", "not supported"),
        (#"{"Type":"vxlan","Learning":"false"}"#, "Backend.Learning", "true or false"),
        (#"{"Type":"udp","Port":0}"#, "Backend.Port", "1...65535"),
        (#"{"Type":"udp","Port":70000}"#, "Backend.Port", "70000"),
    ])
    func backendValuesAreChecked(json: String, field: String, mention: String) {
        expectOneLine(backendError(json), field: field, mentions: [mention])
    }

    @Test func udpSettings() throws {
        let udp = try backend(#"{"Type":"UDP","Port":9000,"MTU":1400}"#)
        #expect(udp.kind == .udp)
        #expect(udp.effectivePort == 9000)
        #expect(udp.overhead == 28)
        // flannel's udp backend ignores Backend.MTU: the TUN gets interface MTU - 28.
        #expect(udp.overlayMTU(underlayMTU: 1500) == 1472)
        #expect(udp.otherKeys == ["MTU": "1400"])
        #expect(try backend(#"{"Type":"udp"}"#).effectivePort == 8285)
    }

    @Test func hostGateway() throws {
        let hostGW = try backend(#"{"Type":"host-gw","Port":12}"#)
        #expect(hostGW.kind == .hostGateway)
        #expect(hostGW.overhead == 0)
        #expect(hostGW.effectivePort == 0)
        #expect(hostGW.overlayMTU(underlayMTU: 1500) == 1500)
        #expect(hostGW.otherKeys == ["Port": "12"])
    }

    @Test func backendErrorsComeBeforeNetworkChecksLikeFlannel() {
        // flannel's ParseConfig decodes Backend before CheckNetworkConfig looks at the Network.
        expectOneLine(configError(#"{"Backend":{"Type":"vxlan","VNI":"x"}}"#), field: "Backend.VNI")
    }
}

@Suite struct SubnetMath {
    /// A slow reference: every SubnetLen-aligned subnet of the Network, filtered by the bounds.
    func reference(_ config: NetworkConfig) throws -> [IPv4Prefix] {
        let ipv4 = try #require(config.ipv4)
        var result: [IPv4Prefix] = []
        var address = UInt64(ipv4.network.network.value)
        let end = UInt64(ipv4.network.last.value)
        while address <= end {
            if address >= UInt64(ipv4.subnetMin.value) && address <= UInt64(ipv4.subnetMax.value) {
                result.append(IPv4Prefix(IPv4Address(UInt32(address)), length: ipv4.subnetLength))
            }
            address += UInt64(1) << UInt64(32 - ipv4.subnetLength)
        }
        return result
    }

    @Test(arguments: [
        #"{"Network":"10.3.0.0/16"}"#,
        #"{"Network":"192.168.0.0/24"}"#,
        #"{"Network":"10.0.0.0/20","SubnetLen":28,"SubnetMin":"10.0.2.32","SubnetMax":"10.0.7.240"}"#,
        // The last subnet of the address space: iteration must stop, not wrap to 0.0.0.0.
        #"{"Network":"255.255.255.0/24","SubnetLen":26}"#,
    ])
    func candidatesMatchAReferenceWalk(json: String) throws {
        let config = try NetworkConfig.parse(json)
        let expected = try reference(config)
        #expect(Array(try #require(config.subnets)) == expected)
        #expect(config.subnets?.count == expected.count)
    }

    @Test func candidatesAreLazy() throws {
        // 10.0.0.0/8 in /30 steps: four million candidates, none built until asked for.
        let config = try NetworkConfig.parse(#"{"Network":"10.0.0.0/8","SubnetLen":30}"#)
        #expect(config.subnets?.count == (1 << 22) - 1)
        #expect(
            Array(try #require(config.subnets).prefix(2)) == [IPv4Prefix("10.0.0.4/30")!, IPv4Prefix("10.0.0.8/30")!]
        )
        #expect(config.subnetSize == 4)
    }

    @Test func fitsChecksLengthAndBounds() throws {
        let config = try NetworkConfig.parse(
            #"{"Network":"10.3.0.0/16","SubnetMin":"10.3.10.0","SubnetMax":"10.3.20.0"}"#
        )
        #expect(config.fits(IPv4Prefix("10.3.10.0/24")!))
        #expect(config.fits(IPv4Prefix("10.3.20.0/24")!))
        #expect(config.fits(IPv4Prefix("10.3.15.0/24")!))
        #expect(!config.fits(IPv4Prefix("10.3.9.0/24")!))
        #expect(!config.fits(IPv4Prefix("10.3.21.0/24")!))
        #expect(!config.fits(IPv4Prefix("10.3.15.0/25")!))
        #expect(!config.fits(IPv4Prefix("10.3.14.0/23")!))
        #expect(!config.fits(IPv4Prefix("10.4.15.0/24")!))
    }

    @Test func misfitSaysWhyExactlyWhenASubnetDoesNotFit() throws {
        let config = try NetworkConfig.parse(
            #"{"Network":"10.3.0.0/16","SubnetMin":"10.3.10.0","SubnetMax":"10.3.20.0"}"#
        )
        #expect(config.misfit(IPv4Prefix("10.4.15.0/24")!) == "10.4.15.0/24 lies outside the Network 10.3.0.0/16")
        #expect(config.misfit(IPv4Prefix("10.0.0.0/8")!) == "10.0.0.0/8 lies outside the Network 10.3.0.0/16")
        #expect(config.misfit(IPv4Prefix("10.3.15.0/25")!) == "10.3.15.0/25 is not a /24 (the SubnetLen)")
        #expect(config.misfit(IPv4Prefix("10.3.9.0/24")!) == "10.3.9.0/24 lies below SubnetMin 10.3.10.0")
        #expect(config.misfit(IPv4Prefix("10.3.21.0/24")!) == "10.3.21.0/24 lies above SubnetMax 10.3.20.0")
        // Over every /22 to /26 around the Network, no misfit exactly when it fits.
        for length in 22...26 {
            var candidate: IPv4Prefix? = IPv4Prefix(IPv4Address(10, 2, 240, 0), length: length)
            while let subnet = candidate, subnet.network < IPv4Address(10, 4, 16, 0) {
                #expect((config.misfit(subnet) == nil) == config.fits(subnet), "\(subnet)")
                candidate = subnet.next
            }
        }
    }

    @Test func validatedInitializerAppliesTheSameRules() throws {
        let config = try NetworkConfig(network: IPv4Prefix("10.3.0.0/16")!, backend: .vxlan)
        #expect(config == (try NetworkConfig.parse(#"{"Network":"10.3.0.0/16","Backend":{"Type":"vxlan"}}"#)))
        #expect(throws: ConfigError.self) { try NetworkConfig(network: IPv4Prefix("10.3.0.0/16")!, subnetLength: 31) }
    }
}

/// Kubernetes mode: flanneld parses net-conf.json without CheckNetworkConfig, because each node's
/// subnet is its podCIDR and nothing is allocated from SubnetLen/SubnetMin/SubnetMax.
@Suite struct NetworkConfigForPodCIDRs {
    @Test(arguments: [
        #"{"Network":"10.244.0.0/29","Backend":{"Type":"vxlan"}}"#,
        #"{"Network":"10.244.0.0/16","SubnetLen":31}"#,
        #"{"Network":"10.244.0.0/16","SubnetLen":17}"#,
        #"{"Network":"10.244.0.0/16","SubnetMin":"10.9.0.0"}"#,
        #"{"Network":"10.244.0.0/16","SubnetMin":"10.244.1.7"}"#,
        #"{"Network":"10.244.0.0/16","SubnetMin":"10.244.9.0","SubnetMax":"10.244.2.0"}"#,
        #"{"Network":"0.0.0.0/0"}"#,
        #"{"Network":"10.244.0.1/32"}"#,
    ])
    func whatAllocationRefusesRunsOnPodCIDRs(json: String) throws {
        #expect(configError(json) != nil, "etcd mode refuses \(json)")
        let config = try NetworkConfig.parse(json, checks: .podCIDRs)
        let network = try #require(IPv4Prefix(String(json.split(separator: "\"")[3])))
        #expect(config.network == network)
        let defaults = IPv4Allocation.defaultSubnets(of: network)
        #expect(
            config.subnetLength == defaults.length && config.subnetMin == defaults.min
                && config.subnetMax == defaults.max,
            "the subnet fields fall back to the defaults: \(config)"
        )
    }

    @Test func validSubnetFieldsAreKeptAsEtcdModeKeepsThem() throws {
        let json =
            #"{"Network":"10.244.0.0/16","SubnetLen":26,"SubnetMin":"10.244.8.0","SubnetMax":"10.244.9.192","Backend":{"Type":"host-gw"}}"#
        #expect(try NetworkConfig.parse(json, checks: .podCIDRs) == NetworkConfig.parse(json))
    }

    @Test(arguments: [
        (#"{"Backend":{"Type":"vxlan"}}"#, "Network"),
        (#"{"Network":"10.244.0.0/16","SubnetLen":"24"}"#, "SubnetLen"),
        (#"{"Network":"10.244.0.0/16","SubnetMin":"ten"}"#, "SubnetMin"),
        (#"{"Network":"10.244.0.0/16","Backend":{"Type":"bogus"}}"#, "Backend"),
        (#"{"Network":"10.244.0.0/16","EnableIPv6":true}"#, "IPv6Network"),
    ])
    func syntaxTypesNetworkAndBackendAreStillChecked(json: String, field: String) {
        do {
            let config = try NetworkConfig.parse(json, checks: .podCIDRs)
            Issue.record("\(json) parsed: \(config)")
        } catch {
            #expect(error.field.hasPrefix(field), "\(json): \(error)")
        }
    }
}
