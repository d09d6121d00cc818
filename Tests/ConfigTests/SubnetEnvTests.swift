import Addressing
import ConfigTestSupport
import Testing

@testable import Config

/// flannel's dist/sample_subnet.env, the input of its mk-docker-opts test.
let sampleSubnetEnv =
    "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.74.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=false\n"

func subnetEnvError(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> ConfigError? {
    do {
        let env = try SubnetEnv.parse(text, file: "/run/flannel/subnet.env")
        Issue.record("expected an error, got \(env)", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

@Suite struct SubnetEnvRendering {
    @Test func exactTextFlannelWrites() {
        let env = SubnetEnv(
            network: IPv4Prefix("10.244.0.0/16"),
            subnet: IPv4Prefix("10.244.34.0/24"),
            mtu: 1450,
            ipMasq: false
        )
        #expect(
            env.text
                == "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.34.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n"
        )
    }

    @Test func flannelsSampleFile() {
        let env = SubnetEnv(
            network: IPv4Prefix("10.1.0.0/16"),
            subnet: IPv4Prefix("10.1.74.0/24"),
            mtu: 1472,
            ipMasq: false
        )
        #expect(env.text == sampleSubnetEnv)
    }

    @Test func subnetLineIsTheFirstHostWithTheLeaseLength() {
        let env = SubnetEnv(
            network: IPv4Prefix("10.5.0.0/16"),
            subnet: IPv4Prefix("10.5.72.128/26"),
            mtu: 1472,
            ipMasq: true
        )
        #expect(
            env.text
                == "FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.72.129/26\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n"
        )
    }

    @Test func absentFieldsLeaveTheirLinesOut() {
        let env = SubnetEnv(network: nil, subnet: nil, mtu: 1450, ipMasq: true)
        #expect(env.text == "FLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n")
    }

    @Test func parsesWhatItRenders() throws {
        let env = SubnetEnv(
            network: IPv4Prefix("10.244.0.0/16"),
            subnet: IPv4Prefix("10.244.34.0/24"),
            mtu: 1450,
            ipMasq: false
        )
        #expect(try SubnetEnv.parse(env.text) == env)
    }
}

@Suite struct SubnetEnvParsing {
    @Test func toleratesWhatGodotenvTolerates() throws {
        let text = """
            # written by hand\r
            \r
            export FLANNEL_NETWORK="10.1.0.0/16"   # the overlay
              FLANNEL_SUBNET = '10.1.74.1/24'
            FLANNEL_MTU: 1472 # yaml style
            FLANNEL_IPMASQ=true
            FLANNEL_IPV6_NETWORK=fc00::/48
            OTHER=a#b
            """
        let env = try SubnetEnv.parse(text)
        #expect(
            env
                == SubnetEnv(
                    network: IPv4Prefix("10.1.0.0/16"),
                    subnet: IPv4Prefix("10.1.74.0/24"),
                    ipv6Network: IPv6Prefix("fc00::/48"),
                    mtu: 1472,
                    ipMasq: true
                )
        )
        let entries = try SubnetEnv.parseEntries(text)
        #expect(entries["OTHER"] == "a#b")
        #expect(entries["FLANNEL_IPV6_NETWORK"] == "fc00::/48")
        #expect(entries["FLANNEL_MTU"] == "1472")
        #expect(entries.count == 6)
    }

    @Test func quotedValues() throws {
        let entries = try SubnetEnv.parseEntries(
            #"""
            A="x # not a comment"
            B='it\'s literal \n'
            C="line\nbreak \"quoted\" \$HOME"
            D=
            E=""
            F=  spaced out   
            """#
        )
        #expect(entries["A"] == "x # not a comment")
        #expect(entries["B"] == #"it\'s literal \n"#)
        #expect(entries["C"] == "line\nbreak \"quoted\" \\$HOME")
        #expect(entries["D"] == "")
        #expect(entries["E"] == "")
        #expect(entries["F"] == "spaced out")
    }

    @Test func laterDuplicateWins() throws {
        let env = try SubnetEnv.parse("FLANNEL_MTU=1400\nFLANNEL_MTU=1450\n")
        #expect(env.mtu == 1450)
    }

    @Test func severalCommaSeparatedSubnetsCountAsNone() throws {
        let env = try SubnetEnv.parse(
            "FLANNEL_NETWORK=10.1.0.0/16,10.2.0.0/16\nFLANNEL_SUBNET=10.1.74.1/24,\nFLANNEL_MTU=1450\n"
        )
        #expect(env.network == nil)
        #expect(env.subnet == nil)
        #expect(env.mtu == 1450)
    }

    @Test func emptyAndMissingValuesAreAbsent() throws {
        let env = try SubnetEnv.parse("FLANNEL_SUBNET=\n")
        #expect(env == SubnetEnv(network: nil, subnet: nil, mtu: nil, ipMasq: nil))
        #expect(try SubnetEnv.parse("") == env)
    }

    @Test func ipMasqReadsGoBooleans() throws {
        #expect(try SubnetEnv.parse("FLANNEL_IPMASQ=1").ipMasq == true)
        #expect(try SubnetEnv.parse("FLANNEL_IPMASQ=False").ipMasq == false)
    }

    @Test(arguments: [
        ("FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.74.1\n", "FLANNEL_SUBNET", "line 2"),
        ("FLANNEL_NETWORK=ten\n", "FLANNEL_NETWORK", "line 1"),
        ("\n\nFLANNEL_MTU=big\n", "FLANNEL_MTU", "line 3"),
        ("FLANNEL_MTU=40\n", "FLANNEL_MTU", "line 1"),
        ("FLANNEL_MTU=+1450\n", "FLANNEL_MTU", "line 1"),
        ("FLANNEL_IPMASQ=maybe\n", "FLANNEL_IPMASQ", "line 1"),
    ])
    func badValuesNameFileLineAndKey(text: String, field: String, line: String) {
        let error = subnetEnvError(text)
        expectOneLine(error, field: field, mentions: [line, "/run/flannel/subnet.env"])
    }

    @Test(arguments: [
        ("FLANNEL_MTU=1450\nthis is not a line\n", "line 2"),
        ("=1450\n", "line 1"),
        ("FLANNEL-MTU=1450\n", "line 1"),
        ("A=1\nB=\"unterminated\n", "line 2"),
        ("A='x' trailing\n", "line 1"),
    ])
    func garbledLinesNameFileAndLine(text: String, line: String) {
        let error = subnetEnvError(text)
        expectOneLine(error, field: "line", mentions: [line, "/run/flannel/subnet.env"])
    }
}

@Suite struct DockerOptionsRendering {
    let entries = try! SubnetEnv.parseEntries(sampleSubnetEnv)

    // The expected texts are flannel's dist/mk_docker_opts_test.go cases for sample_subnet.env.
    @Test func defaultIsIndividualAndCombined() throws {
        #expect(
            try DockerOptions().render(entries: entries) == """
                DOCKER_OPT_BIP="--bip=10.1.74.1/24"
                DOCKER_OPT_IPMASQ="--ip-masq=true"
                DOCKER_OPT_MTU="--mtu=1472"
                DOCKER_OPTS=" --bip=10.1.74.1/24 --ip-masq=true --mtu=1472"

                """
        )
    }

    @Test func individualOnly() throws {
        #expect(
            try DockerOptions(form: .individual).render(entries: entries) == """
                DOCKER_OPT_BIP="--bip=10.1.74.1/24"
                DOCKER_OPT_IPMASQ="--ip-masq=true"
                DOCKER_OPT_MTU="--mtu=1472"

                """
        )
    }

    @Test func combinedOnly() throws {
        #expect(
            try DockerOptions(form: .combined).render(entries: entries)
                == "DOCKER_OPTS=\" --bip=10.1.74.1/24 --ip-masq=true --mtu=1472\"\n"
        )
    }

    @Test func customKey() throws {
        #expect(
            try DockerOptions(combinedKey: "CUSTOM_KEY").render(entries: entries) == """
                DOCKER_OPT_BIP="--bip=10.1.74.1/24"
                DOCKER_OPT_IPMASQ="--ip-masq=true"
                DOCKER_OPT_MTU="--mtu=1472"
                CUSTOM_KEY=" --bip=10.1.74.1/24 --ip-masq=true --mtu=1472"

                """
        )
    }

    @Test func withoutIPMasq() throws {
        #expect(
            try DockerOptions(includeIPMasq: false).render(entries: entries) == """
                DOCKER_OPT_BIP="--bip=10.1.74.1/24"
                DOCKER_OPT_MTU="--mtu=1472"
                DOCKER_OPTS=" --bip=10.1.74.1/24 --mtu=1472"

                """
        )
    }

    @Test func flannelMasqueradingTurnsDockersOff() throws {
        let env = SubnetEnv(
            network: IPv4Prefix("10.244.0.0/16"),
            subnet: IPv4Prefix("10.244.34.0/24"),
            mtu: 1450,
            ipMasq: true
        )
        #expect(
            try DockerOptions(form: .combined).render(env)
                == "DOCKER_OPTS=\" --bip=10.244.34.1/24 --ip-masq=false --mtu=1450\"\n"
        )
    }

    @Test func inheritedValueComesFirst() throws {
        // The script appends one space to an existing $DOCKER_OPTS, then " <opt>" per option.
        #expect(
            try DockerOptions(form: .combined).render(entries: entries, inherited: "--debug")
                == "DOCKER_OPTS=\"--debug  --bip=10.1.74.1/24 --ip-masq=true --mtu=1472\"\n"
        )
        var withKey = entries
        withKey["DOCKER_OPTS"] = "--from-file"
        #expect(
            try DockerOptions(form: .combined).render(entries: withKey, inherited: "--ignored")
                == "DOCKER_OPTS=\"--from-file  --bip=10.1.74.1/24 --ip-masq=true --mtu=1472\"\n"
        )
    }

    @Test func missingVariablesGiveNoOption() throws {
        #expect(
            try DockerOptions().render(entries: ["FLANNEL_MTU": "1450"])
                == "DOCKER_OPT_MTU=\"--mtu=1450\"\nDOCKER_OPTS=\" --mtu=1450\"\n"
        )
        #expect(try DockerOptions().render(entries: [:]) == "DOCKER_OPTS=\"\"\n")
    }

    @Test func dockerOptVariablesFromTheFileJoinInNameOrder() throws {
        var more = entries
        more["DOCKER_OPT_DNS"] = "--dns=10.0.0.10"
        #expect(
            try DockerOptions(form: .combined).render(entries: more)
                == "DOCKER_OPTS=\" --bip=10.1.74.1/24 --dns=10.0.0.10 --ip-masq=true --mtu=1472\"\n"
        )
    }

    @Test func invalidIPMasqIsRefusedLikeTheScript() throws {
        #expect(throws: ConfigError.self) { try DockerOptions().render(entries: ["FLANNEL_IPMASQ": "yes"]) }
        do {
            _ = try DockerOptions().render(entries: ["FLANNEL_IPMASQ": "yes"])
        } catch {
            expectOneLine(error, field: "FLANNEL_IPMASQ", mentions: ["yes"])
        }
        // -m skips the check along with the option, as the script does.
        #expect(
            try DockerOptions(includeIPMasq: false).render(entries: ["FLANNEL_IPMASQ": "yes"]) == "DOCKER_OPTS=\"\"\n"
        )
    }

    @Test func combinedKeyMustBeAShellName() {
        #expect(throws: ConfigError.self) { try DockerOptions(combinedKey: "DOCKER OPTS").render(entries: entries) }
        #expect(throws: ConfigError.self) { try DockerOptions(combinedKey: "1X").render(entries: entries) }
        #expect(throws: ConfigError.self) { try DockerOptions(combinedKey: "").render(entries: entries) }
    }
}
