import Config
import Foundation
import Testing

@testable import CNI

func parseError(_ json: String) -> CNIError? {
    do {
        _ = try PluginConfig.parse(Array(json.utf8))
        return nil
    } catch {
        return error
    }
}

@Suite struct PluginConfigTests {
    @Test func defaultsAreFlannelsWithWeftsDataDir() throws {
        let config = try pluginConfig(#"{"name":"cbr0","type":"flannel"}"#)
        #expect(config.subnetFile == "/run/flannel/subnet.env")
        #expect(config.dataDir == "/var/lib/cni/weft")
        #expect(config.dataDirIsDefault)
        #expect(config.cniVersion == "")
        #expect(config.effectiveVersion == "0.1.0")
    }

    @Test func pathsFromTheConfig() throws {
        let config = try pluginConfig(
            #"{"name":"cbr0","cniVersion":"1.0.0","subnetFile":"/run/weft/subnet.env","dataDir":"/tmp/d"}"#
        )
        #expect(config.subnetFile == "/run/weft/subnet.env")
        #expect(config.dataDir == "/tmp/d")
        #expect(!config.dataDirIsDefault)
        #expect(config.effectiveVersion == "1.0.0")
    }

    /// Containers added by flannel's plugin before its binary was swapped for weft-cni are found
    /// in flannel's dataDir, unless the config names a dataDir of its own.
    @Test func flannelsDataDirIsSearchedOnlyUnderTheDefault() throws {
        #expect(
            try pluginConfig(#"{"name":"n"}"#).savedConfigDirectories == ["/var/lib/cni/weft", "/var/lib/cni/flannel"]
        )
        #expect(try pluginConfig(#"{"name":"n","dataDir":"/srv/cni"}"#).savedConfigDirectories == ["/srv/cni"])
    }

    @Test func shapeErrorsCarryTheSpecsCodes() {
        #expect(parseError("{nope")?.code == .decodingFailure)
        #expect(parseError("[1]")?.code == .decodingFailure)
        #expect(
            parseError(#"{"type":"weft-cni"}"#)
                == CNIError(
                    .invalidNetworkConfig,
                    "missing network name",
                    details: "the conflist's \"name\" is passed to each plugin; set it"
                )
        )
        #expect(parseError(#"{"name":"a b"}"#)?.message == "invalid characters found in network name")
        #expect(parseError(#"{"name":"n","cniVersion":1}"#)?.code == .decodingFailure)
        #expect(
            parseError(#"{"name":"n","delegate":"bridge"}"#)?.message
                == "failed to load netconf: delegate is a string, not an object"
        )
        #expect(
            parseError(#"{"name":"n","subnetFile":3}"#)?.message
                == "failed to load netconf: subnetFile is a number, not a string"
        )
    }

    @Test func identifiersFollowLibcni() {
        #expect(PluginConfig.isIdentifier("a1b2c3"))
        #expect(PluginConfig.isIdentifier("9f-x_y.z"))
        for bad in ["", ".hidden", "-x", "a/b", "..", "a b", "é"] { #expect(!PluginConfig.isIdentifier(bad), "\(bad)") }
    }
}

@Suite struct SubnetLeaseTests {
    @Test func theLeaseIsReadAsANetwork() throws {
        let env = try SubnetEnv.parse(
            "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
        )
        let lease = try SubnetLease(env, path: "/x")
        #expect(lease.subnet?.description == "10.244.1.0/24")
        #expect(lease.network?.description == "10.244.0.0/16")
        #expect(lease.mtu == 1450 && lease.ipMasq)
    }

    @Test func missingValuesAreListedAsFlannelDoes() throws {
        let env = try SubnetEnv.parse("FLANNEL_SUBNET=10.244.1.1/24\n")
        #expect(throws: CNIError.self) { try SubnetLease(env, path: "/run/flannel/subnet.env") }
        do {
            _ = try SubnetLease(env, path: "/run/flannel/subnet.env")
        } catch {
            #expect(
                error.message
                    == "loadFlannelSubnetEnv failed: /run/flannel/subnet.env is missing FLANNEL_NETWORK, FLANNEL_IPV6_NETWORK, FLANNEL_MTU, FLANNEL_IPMASQ"
            )
        }
    }

    @Test func aMissingFileGivesFlannelsText() {
        do {
            _ = try SubnetLease.load(path: "/nonexistent-weft-cni/subnet.env")
            Issue.record("expected an error")
        } catch {
            #expect(
                error.message
                    == "loadFlannelSubnetEnv failed: open /nonexistent-weft-cni/subnet.env: no such file or directory"
            )
            #expect(error.code == .internal)
        }
    }
}

@Suite struct CNIRequestTests {
    let add = [
        "CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/var/run/netns/c1", "CNI_IFNAME": "eth0",
        "CNI_PATH": "/usr/lib/cni",
    ]

    func requestError(_ environment: [String: String]) -> CNIError? {
        do {
            try CNIRequest(environment: environment).validate()
            return nil
        } catch {
            return error
        }
    }

    @Test func missingVariablesAreListedInSkelsOrder() {
        #expect(requestError([:])?.message == "required env variables [CNI_COMMAND] missing")
        #expect(
            requestError(["CNI_COMMAND": "ADD", "CNI_PATH": "/x"])?.message
                == "required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME] missing"
        )
        #expect(requestError(["CNI_COMMAND": "ADD"])?.code == .invalidEnvironment)
    }

    @Test func delNeedsNoNamespace() {
        var del = add
        del["CNI_COMMAND"] = "DEL"
        del["CNI_NETNS"] = nil
        #expect(requestError(del) == nil)
        #expect(requestError(["CNI_COMMAND": "VERSION"]) != nil, "VERSION skips validation in Plugin.run, not here")
    }

    @Test func containerIDsAndInterfaceNamesAreChecked() {
        var request = add
        request["CNI_CONTAINERID"] = "../etc"
        #expect(requestError(request)?.message == "invalid characters in containerID")
        request = add
        request["CNI_IFNAME"] = "a-very-long-ifname"
        #expect(requestError(request)?.message == "interface name is too long")
        request["CNI_IFNAME"] = "eth:0"
        #expect(requestError(request)?.message == "interface name contains / or : or whitespace characters")
        request["CNI_IFNAME"] = ".."
        #expect(requestError(request)?.message == "interface name is . or ..")
        #expect(requestError(add) == nil)
    }
}
