import Addressing
import Foundation
import Glibc
import TestSupport
import TestThreads
import Testing

/// dist/cni/10-weft.conflist, the sample operators install.
func sampleConflist() -> [String: Any] {
    let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
        .appendingPathComponent("dist/cni/10-weft.conflist").path
    let data = FileManager.default.contents(atPath: path) ?? Data()
    return ((try? JSONSerialization.jsonObject(with: data)) as? [String: Any]) ?? [:]
}

/// The conflist's first plugin as libcni hands it over (the list's name and cniVersion injected),
/// with this host's subnet.env and data directories, plus `extra` keys (prevResult).
func pluginConfig(
    _ bed: CNIBed,
    host index: Int,
    type: String? = nil,
    subnetFile: String? = nil,
    extra: [String: Any] = [:]
) throws -> String {
    let conflist = sampleConflist()
    var plugin = try #require(
        (conflist["plugins"] as? [[String: Any]])?.first,
        "dist/cni/10-weft.conflist has no plugins"
    )
    plugin["name"] = conflist["name"]
    plugin["cniVersion"] = conflist["cniVersion"]
    plugin["subnetFile"] = subnetFile ?? bed.subnetFile(index)
    plugin["dataDir"] = bed.dataDir(index)
    // host-local's store would otherwise be the machine's /var/lib/cni/networks.
    plugin["ipam"] = ["dataDir": bed.ipamDir(index)]
    if let type { plugin["type"] = type }
    plugin.merge(extra) { $1 }
    return String(decoding: try JSONSerialization.data(withJSONObject: plugin), as: UTF8.self)
}

func json(_ text: String) -> [String: Any]? {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
}

/// The first IPv4 address of an ADD result ("10.244.1.2/24"), or nil.
func resultAddress(_ result: [String: Any]?) -> String? {
    (result?["ips"] as? [[String: Any]])?.first?["address"] as? String
}

@Suite(.ownThread, .enabled(if: bedUnavailable == nil, "\(bedUnavailable ?? "")"), .serialized, .timeLimit(.minutes(2)))
struct CNIPluginTests {
    /// Host 1 runs the plugin as weft-cni, host 2 as a copy named `flannel` under type "flannel",
    /// as an operator migrating from flannel would install it.
    @Test func containersOnTwoHostsGetLeaseAddressesAndReachEachOther() throws {
        let bed = try CNIBed()
        defer { bed.tearDown() }
        let flannelCopy = "\(bed.directory)/bin/flannel"
        try FileManager.default.createDirectory(atPath: "\(bed.directory)/bin", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: weftCNIPath, toPath: flannelCopy)
        try bed.startDataplanes()

        var results: [Int: [String: Any]] = [:]
        for index in 1...2 {
            let executable = index == 1 ? weftCNIPath : flannelCopy
            let add = try bed.plugin(
                "ADD",
                host: index,
                containerID: "ctr\(index)",
                config: pluginConfig(bed, host: index, type: index == 1 ? "weft-cni" : "flannel"),
                executable: executable
            )
            try #require(add.status == 0, "ADD on host \(index): \(add.output) \(add.error)")
            let result = try #require(json(add.output), "ADD printed no JSON: \(add.output)")
            #expect(result["cniVersion"] as? String == "1.0.0")
            let address = try #require(resultAddress(result), "\(add.output)")
            let prefix = try #require(IPv4Prefix(address))
            let host = try #require(IPv4Address(String(address.split(separator: "/")[0])))
            #expect(
                IPv4Prefix(bed.subnet(index))!.contains(host) && prefix.length == 24,
                "\(address) is not in \(bed.subnet(index))"
            )
            results[index] = result

            let shown = try bed.exec(bed.container(index), ["/usr/sbin/ip", "-4", "-o", "addr", "show", "dev", "eth0"])
            #expect(shown.contains("inet \(address) "), "\(shown)")
            let link = try bed.exec(bed.container(index), ["/usr/sbin/ip", "-o", "link", "show", "dev", "eth0"])
            #expect(link.contains("mtu \(CNIBed.mtu) "), "the MTU comes from subnet.env: \(link)")
            let routes = try bed.exec(bed.container(index), ["/usr/sbin/ip", "-4", "route", "show"])
            #expect(routes.contains("\(CNIBed.network) via 10.244.\(index).1 dev eth0"), "\(routes)")
            #expect(FileManager.default.fileExists(atPath: "\(bed.dataDir(index))/ctr\(index)"))
        }

        let there = String(resultAddress(results[2])!.split(separator: "/")[0])
        let back = String(resultAddress(results[1])!.split(separator: "/")[0])
        // The first packets wait for ARP on both bridges; after that every ping must come back.
        let clock = ContinuousClock()
        let start = clock.now
        while !bed.ping(from: 1, there), clock.now - start < .seconds(15) {}
        #expect(bed.ping(from: 1, there, count: 3), "container 1 → \(there)")
        #expect(bed.ping(from: 2, back, count: 3), "container 2 → \(back)")

        // CHECK as the runtime sends it: the config with the ADD result as prevResult.
        let check = try bed.plugin(
            "CHECK",
            host: 1,
            containerID: "ctr1",
            config: pluginConfig(bed, host: 1, extra: ["prevResult": results[1]!])
        )
        #expect(check.status == 0 && check.output.isEmpty, "CHECK: \(check.output) \(check.error)")
        // After the host's lease moved, the container's address is stale and CHECK says so.
        let moved = "\(bed.directory)/moved.env"
        try
            "FLANNEL_NETWORK=\(CNIBed.network)\nFLANNEL_SUBNET=10.244.9.1/24\nFLANNEL_MTU=\(CNIBed.mtu)\nFLANNEL_IPMASQ=false\n"
            .write(toFile: moved, atomically: true, encoding: .utf8)
        let stale = try bed.plugin(
            "CHECK",
            host: 2,
            containerID: "ctr2",
            config: pluginConfig(
                bed,
                host: 2,
                type: "flannel",
                subnetFile: moved,
                extra: ["prevResult": results[2]!]
            ),
            executable: flannelCopy
        )
        #expect(
            stale.status != 0
                && (json(stale.output)?["msg"] as? String ?? "").contains("outside this host's subnet 10.244.9.0/24"),
            "CHECK after the lease moved: \(stale.output)"
        )
        // DEL must also work once the container's interface is gone.
        _ = try bed.exec(bed.container(2), ["/usr/sbin/ip", "link", "del", "eth0"])

        // DEL releases the address (host-local's reservation file goes) and the saved config.
        let address1 = String(resultAddress(results[1])!.split(separator: "/")[0])
        let reservation = "\(bed.ipamDir(1))/cbr0/\(address1)"
        #expect(FileManager.default.fileExists(atPath: reservation))
        let delete = try bed.plugin("DEL", host: 1, containerID: "ctr1", config: pluginConfig(bed, host: 1))
        #expect(delete.status == 0 && delete.output.isEmpty, "DEL: \(delete.output) \(delete.error)")
        #expect(!FileManager.default.fileExists(atPath: reservation), "host-local still holds \(address1)")
        #expect(!FileManager.default.fileExists(atPath: "\(bed.dataDir(1))/ctr1"))
        let gone = try runCommand([
            "/usr/sbin/ip", "netns", "exec", bed.container(1), "/usr/sbin/ip", "link", "show", "eth0",
        ])
        #expect(gone.status != 0, "eth0 outlived DEL")
        let again = try bed.plugin("DEL", host: 1, containerID: "ctr1", config: pluginConfig(bed, host: 1))
        #expect(again.status == 0, "a second DEL is a success: \(again.output)")
        let delete2 = try bed.plugin(
            "DEL",
            host: 2,
            containerID: "ctr2",
            config: pluginConfig(bed, host: 2, type: "flannel"),
            executable: flannelCopy
        )
        #expect(delete2.status == 0, "DEL after the interface vanished: \(delete2.output) \(delete2.error)")

        // The released address can be had again.
        let readd = try bed.plugin("ADD", host: 1, containerID: "ctr1", config: pluginConfig(bed, host: 1))
        #expect(readd.status == 0, "\(readd.output) \(readd.error)")
        let readdress = try #require(resultAddress(json(readd.output)), "\(readd.output)")
        #expect(readdress.hasPrefix("10.244.1."), "\(readdress)")
        #expect(bed.ping(from: 1, "10.244.1.1"), "the new interface reaches its gateway")
        #expect(try bed.plugin("DEL", host: 1, containerID: "ctr1", config: pluginConfig(bed, host: 1)).status == 0)
    }

    @Test func versionAndAMissingSubnetFileAnswerAsTheSpecAndFlannelDo() throws {
        let bed = try CNIBed()
        defer { bed.tearDown() }
        let version = try bed.plugin("VERSION", host: 1, containerID: "", config: "")
        #expect(version.status == 0)
        let versions = try #require(json(version.output), "\(version.output)")
        #expect(versions["cniVersion"] as? String == "1.0.0")
        #expect(versions["supportedVersions"] as? [String] == ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"])

        let missing = "\(bed.directory)/no-such/subnet.env"
        let add = try bed.plugin(
            "ADD",
            host: 1,
            containerID: "ctr1",
            config: pluginConfig(bed, host: 1, subnetFile: missing)
        )
        #expect(add.status != 0)
        let failure = try #require(json(add.output), "\(add.output)")
        #expect(failure["msg"] as? String == "loadFlannelSubnetEnv failed: open \(missing): no such file or directory")
        #expect(failure["code"] as? Int == 999)
        #expect(failure["cniVersion"] as? String == "1.0.0")
        let link = try runCommand([
            "/usr/sbin/ip", "netns", "exec", bed.container(1), "/usr/sbin/ip", "link", "show", "eth0",
        ])
        #expect(link.status != 0, "a failed ADD created eth0")
    }
}
