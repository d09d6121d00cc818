import Config
import Operator
import Testing

@Suite struct ConfigSummaryTests {
    @Test func defaultsAreShownAndMarked() throws {
        let raw = #"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}"#
        let summary = ConfigSummary(try NetworkConfig.parse(raw), raw: raw)
        #expect(
            summary.fields.map(\.name) == [
                "Network", "SubnetLen", "SubnetMin", "SubnetMax", "Backend.Type", "Backend.VNI", "Backend.Port",
            ]
        )
        #expect(summary["Network"] == .init(name: "Network", value: "10.244.0.0/16", isDefault: false))
        #expect(summary["SubnetLen"] == .init(name: "SubnetLen", value: "24", isDefault: true))
        #expect(summary["SubnetMin"] == .init(name: "SubnetMin", value: "10.244.1.0", isDefault: true))
        #expect(summary["SubnetMax"] == .init(name: "SubnetMax", value: "10.244.255.0", isDefault: true))
        #expect(summary["Backend.Type"]?.isDefault == false)
        #expect(summary["Backend.VNI"] == .init(name: "Backend.VNI", value: "1", isDefault: true))
        #expect(summary["Backend.Port"] == .init(name: "Backend.Port", value: "8472", isDefault: true))
    }

    @Test func directRoutingIsShownWhenOn() throws {
        let on = #"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","DirectRouting":true}}"#
        let off = #"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","DirectRouting":false}}"#
        let summary = ConfigSummary(try NetworkConfig.parse(on), raw: on)
        #expect(
            summary["Backend.DirectRouting"] == .init(name: "Backend.DirectRouting", value: "true", isDefault: false)
        )
        let changes = ConfigSummary.changes(from: ConfigSummary(try NetworkConfig.parse(off), raw: off), to: summary)
        #expect(changes.map(\.line) == ["Backend.DirectRouting: (none) → true"])
    }

    @Test func writtenFieldsMatchInAnyCaseAndZeroMeansDefault() throws {
        let raw =
            #"{"network":"10.244.0.0/16","subnetlen":0,"SubnetMin":"10.244.8.0","backend":{"type":"udp","PORT":9000}}"#
        let summary = ConfigSummary(try NetworkConfig.parse(raw), raw: raw)
        #expect(summary["SubnetLen"]?.isDefault == true)
        #expect(summary["SubnetMin"] == .init(name: "SubnetMin", value: "10.244.8.0", isDefault: false))
        #expect(summary["Backend.Port"] == .init(name: "Backend.Port", value: "9000", isDefault: false))
        #expect(summary["Backend.VNI"] == nil)
    }

    @Test func noBackendIsUDPByDefault() throws {
        let raw = #"{"Network":"10.244.0.0/16"}"#
        let summary = ConfigSummary(try NetworkConfig.parse(raw), raw: raw)
        #expect(summary["Backend.Type"] == .init(name: "Backend.Type", value: "udp", isDefault: true))
        #expect(summary["Backend.Port"] == .init(name: "Backend.Port", value: "8285", isDefault: true))
    }

    @Test func changesNameEveryFieldInForceThatDiffers() throws {
        let old = #"{"Network":"10.244.0.0/16","Backend":{"Type":"udp"}}"#
        let new = #"{"Network":"10.244.0.0/16","SubnetLen":26,"Backend":{"Type":"vxlan"}}"#
        let update = try ConfigUpdate(
            key: "/coreos.com/network/config",
            text: new,
            current: .init(text: old, modRevision: 7)
        )
        #expect(
            update.changes.map(\.line) == [
                "SubnetLen: 24 → 26", "SubnetMin: 10.244.1.0 → 10.244.0.64", "SubnetMax: 10.244.255.0 → 10.244.255.192",
                "Backend.Type: udp → vxlan", "Backend.VNI: (none) → 1", "Backend.Port: 8285 → 8472",
            ]
        )
        #expect(!update.isUnchanged)
    }

    @Test func sameEffectiveConfigIsReportedAsNoChange() throws {
        let old = #"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}"#
        let new = #"{"Network":"10.244.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan","VNI":1}}"#
        let update = try ConfigUpdate(key: "k", text: new, current: .init(text: old, modRevision: 3))
        #expect(update.changes.isEmpty)
        #expect(update.description == ["no change to the config in force (only the JSON's wording differs)"])
        let same = try ConfigUpdate(key: "k", text: old, current: .init(text: old, modRevision: 3))
        #expect(same.isUnchanged)
        #expect(same.description == ["no change: k already holds this config"])
    }

    @Test func creatingAndReplacingAnInvalidConfigSaySo() throws {
        let new = #"{"Network":"10.244.0.0/16"}"#
        let created = try ConfigUpdate(key: "k", text: new, current: nil)
        #expect(created.description.first == "k does not exist yet; creating it")
        #expect(created.changes.first?.line == "Network: (none) → 10.244.0.0/16")
        let replaced = try ConfigUpdate(key: "k", text: new, current: .init(text: "{", modRevision: 2))
        #expect(replaced.currentSummary == nil)
        #expect(replaced.description.first?.hasPrefix("replacing an invalid config (config: ") == true)
    }

    @Test func aConfigWeftdWouldRefuseIsRefusedInOneLineWithTheFix() {
        let cases: [(String, String)] = [
            (#"{"Backend":{"Type":"vxlan"}}"#, "Network is missing; add it"),
            (#"{"Network":"10.244.0.0/16","SubnetLen":31}"#, "SubnetLen 31 is larger than 30"),
            (#"{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard"}}"#, "backend wireguard is not supported"),
            (#"{"Network":"10.244.0.0/16""#, "fix the JSON syntax"),
        ]
        for (text, expected) in cases {
            do {
                _ = try ConfigUpdate(key: "/coreos.com/network/config", text: text, current: nil)
                Issue.record("accepted \(text)")
            } catch {
                #expect(error.description.hasPrefix("not written to /coreos.com/network/config: config: "), "\(error)")
                #expect(error.description.contains(expected), "\(error)")
                #expect(!error.description.contains("\n"))
            }
        }
    }
}

@Suite struct ConfigDraftTests {
    @Test func flagsBecomeFlannelJSON() throws {
        #expect(ConfigDraft(network: "10.244.0.0/16").json == #"{"Network":"10.244.0.0/16"}"#)
        let vxlan = ConfigDraft(network: "10.244.0.0/16", subnetLength: 26, backend: "vxlan", vni: 4, port: 4789)
        #expect(
            vxlan.json == #"{"Network":"10.244.0.0/16","SubnetLen":26,"Backend":{"Type":"vxlan","VNI":4,"Port":4789}}"#
        )
        let parsed = try NetworkConfig.parse(vxlan.json)
        #expect(parsed.backend.vni == 4 && parsed.backend.port == 4789 && parsed.subnetLength == 26)
        #expect(
            ConfigDraft(network: "10.244.0.0/16", vni: 2).json
                == #"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":2}}"#
        )
    }

    @Test func quotesCannotBreakOutOfTheNetworkValue() {
        let hostile = ConfigDraft(network: #"10.0.0.0/8","Backend":{"Type":"ipip"}"#)
        #expect(throws: ConfigError.self) { try NetworkConfig.parse(hostile.json) }
        #expect(hostile.json.hasPrefix(#"{"Network":"10.0.0.0/8\","#))
    }

    @Test func anIPv6OnlyConfigShowsItsIPv6FieldsAndNoIPv4Ones() throws {
        let raw = #"{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"host-gw"}}"#
        let summary = ConfigSummary(try NetworkConfig.parse(raw), raw: raw)
        #expect(
            summary.fields.map(\.name) == [
                "EnableIPv4", "EnableIPv6", "IPv6Network", "IPv6SubnetLen", "IPv6SubnetMin", "IPv6SubnetMax",
                "Backend.Type",
            ]
        )
        #expect(summary["IPv6SubnetLen"] == .init(name: "IPv6SubnetLen", value: "64", isDefault: true))
        #expect(summary["IPv6SubnetMin"] == .init(name: "IPv6SubnetMin", value: "fc00:0:0:1::", isDefault: true))
        #expect(summary["Network"] == nil)
    }
}
