import Addressing
import Foundation
import TestSupport
import TestThreads
import Testing

/// A dual-stack and an IPv6-only subnet.env through weft-cni, bridge and the real host-local: the
/// container gets an address from each range and a route to each Network, as with flannel's plugin.
@Suite(.ownThread, .enabled(if: bedUnavailable == nil, "\(bedUnavailable ?? "")"), .serialized, .timeLimit(.minutes(2)))
struct CNIDualStackTests {
    static let ipv6Network = "fc00::/48"

    /// The ADD result's addresses, by family.
    func addresses(_ result: [String: Any]?) -> (v4: [String], v6: [String]) {
        let all = (result?["ips"] as? [[String: Any]] ?? []).compactMap { $0["address"] as? String }
        return (all.filter { !$0.contains(":") }, all.filter { $0.contains(":") })
    }

    /// Writes `lines` (and FLANNEL_MTU, FLANNEL_IPMASQ) as `name` in the bed's directory; its path.
    func subnetFile(_ bed: CNIBed, _ name: String, _ lines: [String]) throws -> String {
        let path = "\(bed.directory)/\(name)"
        let text = (lines + ["FLANNEL_MTU=\(CNIBed.mtu)", "FLANNEL_IPMASQ=false"]).joined(separator: "\n") + "\n"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// ADD for `id` on host `index` with `file` as subnet.env; its JSON result.
    func add(_ bed: CNIBed, host index: Int, id: String, file: String) throws -> [String: Any] {
        let add = try bed.plugin(
            "ADD",
            host: index,
            containerID: id,
            config: pluginConfig(bed, host: index, subnetFile: file)
        )
        try #require(add.status == 0, "ADD: \(add.output) \(add.error)")
        return try #require(json(add.output), "ADD printed no JSON: \(add.output)")
    }

    @Test func hostLocalHandsOutAnAddressOfEachFamily() throws {
        let bed = try CNIBed()
        defer { bed.tearDown() }
        let dual = try subnetFile(
            bed,
            "dual.env",
            [
                "FLANNEL_NETWORK=\(CNIBed.network)", "FLANNEL_SUBNET=10.244.1.1/24",
                "FLANNEL_IPV6_NETWORK=\(Self.ipv6Network)", "FLANNEL_IPV6_SUBNET=fc00:0:0:1::1/64",
            ]
        )
        let result = try add(bed, host: 1, id: "ds1", file: dual)
        let (v4, v6) = addresses(result)
        try #require(v4.count == 1 && v6.count == 1, "\(result)")
        #expect(IPv4Prefix("10.244.1.0/24")!.contains(IPv4Address(String(v4[0].split(separator: "/")[0]))!), "\(v4)")
        let address6 = try #require(IPv6Address(String(v6[0].split(separator: "/")[0])), "\(v6)")
        #expect(IPv6Prefix("fc00:0:0:1::/64")!.contains(address6) && v6[0].hasSuffix("/64"), "\(v6)")

        let shown = try bed.exec(bed.container(1), ["/usr/sbin/ip", "-6", "-o", "addr", "show", "dev", "eth0"])
        #expect(shown.contains("inet6 \(v6[0]) "), "\(shown)")
        let routes = try bed.exec(bed.container(1), ["/usr/sbin/ip", "-6", "route", "show"])
        #expect(routes.contains("\(Self.ipv6Network) via fc00:0:0:1::1 dev eth0"), "\(routes)")
        let routes4 = try bed.exec(bed.container(1), ["/usr/sbin/ip", "-4", "route", "show"])
        #expect(routes4.contains("\(CNIBed.network) via 10.244.1.1 dev eth0"), "\(routes4)")
        // The bridge holds the IPv6 gateway: the container reaches it once duplicate address detection is over.
        #expect(
            waitUntil(timeout: .seconds(15), interval: .milliseconds(200)) { bed.ping(from: 1, "fc00:0:0:1::1") },
            "container → its IPv6 gateway"
        )

        // CHECK takes both addresses; after the IPv6 subnet moved, it names the stale one.
        let check = try bed.plugin(
            "CHECK",
            host: 1,
            containerID: "ds1",
            config: pluginConfig(bed, host: 1, subnetFile: dual, extra: ["prevResult": result])
        )
        #expect(check.status == 0, "CHECK: \(check.output) \(check.error)")
        let moved = try subnetFile(
            bed,
            "moved6.env",
            [
                "FLANNEL_NETWORK=\(CNIBed.network)", "FLANNEL_SUBNET=10.244.1.1/24",
                "FLANNEL_IPV6_NETWORK=\(Self.ipv6Network)", "FLANNEL_IPV6_SUBNET=fc00:0:0:9::1/64",
            ]
        )
        let stale = try bed.plugin(
            "CHECK",
            host: 1,
            containerID: "ds1",
            config: pluginConfig(bed, host: 1, subnetFile: moved, extra: ["prevResult": result])
        )
        #expect(
            stale.status != 0
                && (json(stale.output)?["msg"] as? String ?? "").contains(
                    "\(address6) is outside this host's subnet fc00:0:0:9::/64"
                ),
            "CHECK after the IPv6 lease moved: \(stale.output)"
        )

        // DEL releases both reservations.
        let reservations = [v4[0], v6[0]].map { "\(bed.ipamDir(1))/cbr0/\($0.split(separator: "/")[0])" }
        #expect(reservations.allSatisfy { FileManager.default.fileExists(atPath: $0) }, "\(reservations)")
        let delete = try bed.plugin(
            "DEL",
            host: 1,
            containerID: "ds1",
            config: pluginConfig(bed, host: 1, subnetFile: dual)
        )
        #expect(delete.status == 0, "DEL: \(delete.output) \(delete.error)")
        #expect(reservations.allSatisfy { !FileManager.default.fileExists(atPath: $0) }, "\(reservations)")
    }

    @Test func anIPv6OnlyLeaseGetsOnlyAnIPv6Address() throws {
        let bed = try CNIBed()
        defer { bed.tearDown() }
        let only = try subnetFile(
            bed,
            "v6only.env",
            ["FLANNEL_IPV6_NETWORK=\(Self.ipv6Network)", "FLANNEL_IPV6_SUBNET=fc00:0:0:2::1/64"]
        )
        let result = try add(bed, host: 2, id: "v6", file: only)
        let (v4, v6) = addresses(result)
        #expect(v4.isEmpty && v6.count == 1 && v6[0].hasPrefix("fc00:0:0:2::"), "\(result)")
        let routes = try bed.exec(bed.container(2), ["/usr/sbin/ip", "-6", "route", "show"])
        #expect(routes.contains("\(Self.ipv6Network) via fc00:0:0:2::1 dev eth0"), "\(routes)")
        let delete = try bed.plugin(
            "DEL",
            host: 2,
            containerID: "v6",
            config: pluginConfig(bed, host: 2, subnetFile: only)
        )
        #expect(delete.status == 0, "DEL: \(delete.output) \(delete.error)")
    }
}
