import Addressing
import CShims
import Foundation
import Glibc
import TestThreads
import Testing

@testable import Netlink

/// The vxlan device, neighbours, FDB entries, addresses and onlink routes made through RouteNetlink
/// in a namespace of their own, and read back by iproute2's own JSON (`ip -d -j link`, `ip -j
/// neigh`, `bridge -j fdb`, `ip -j route`), so what the kernel holds is judged by another reader.
@Suite(
    .ownThread,
    .enabled(if: TestNamespace.missing == nil, "\(TestNamespace.missing ?? "")"),
    .timeLimit(.minutes(1))
)
struct VXLANNetlinkTests {
    static let vtep = MACAddress("0e:00:00:00:00:01")!
    static let peer = MACAddress("0e:00:00:00:00:02")!

    /// `ip -n <namespace> -j <arguments>` (or `bridge` when the first argument is "bridge"), parsed.
    static func json(_ namespace: TestNamespace, _ arguments: [String]) throws -> [[String: Any]] {
        let command =
            arguments.first == "bridge"
            ? ["netns", "exec", namespace.name, "/usr/sbin/bridge", "-j"] + arguments.dropFirst()
            : ["-n", namespace.name, "-j"] + arguments
        let (status, output) = try TestNamespace.run(command)
        guard status == 0 else { throw TestFailure("\(arguments): \(output)") }
        let text = output.trimmingCharacters(in: .whitespacesAndNewlines)
        if text.isEmpty { return [] }
        return try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]] ?? []
    }

    static func underlay(_ namespace: TestNamespace) throws {
        for arguments in [
            ["link", "add", "d0", "type", "veth", "peer", "name", "d1"], ["addr", "add", "198.18.0.1/24", "dev", "d0"],
            ["link", "set", "d0", "up"],
        ] {
            let (status, output) = try TestNamespace.run(["-n", namespace.name] + arguments)
            guard status == 0 else { throw TestFailure("ip \(arguments): \(output)") }
        }
    }

    @Test func createdDeviceIsWhatIPLinkShows() throws {
        try TestNamespace.with { namespace in
            try Self.underlay(namespace)
            let (index, state) = try namespace.enter { () throws -> (Int32, LinkState) in
                var netlink = try RouteNetlink()
                let underlay = try RouteNetlink.interfaceIndex("d0")
                let link = VXLANLink(
                    name: "flannel.1",
                    vni: 7,
                    local: IPv4Address(198, 18, 0, 1),
                    underlayIndex: underlay,
                    port: 8472,
                    gbp: true,
                    mac: Self.vtep,
                    mtu: 1450
                )
                let index = try netlink.createVXLAN(link)
                #expect { try netlink.createVXLAN(link) } throws: { ($0 as? NetlinkError)?.code == EEXIST }
                try netlink.configureLink(index: index)
                try netlink.addAddress(IPv4Address(10, 244, 1, 0), prefixLength: 32, index: index)
                let state = try netlink.linkState(index: index)
                #expect(state.vxlan == link, "read back as created")
                #expect(try netlink.linkState(named: "nothing") == nil)
                #expect(
                    try netlink.addresses(interfaceIndex: index) == [
                        LinkAddress(interfaceIndex: index, address: IPv4Address(10, 244, 1, 0), prefixLength: 32)
                    ]
                )
                return (index, state)
            }
            #expect(state.isUp && state.kind == "vxlan")
            let shown = try #require(try Self.json(namespace, ["-d", "link", "show", "flannel.1"]).first)
            #expect(shown["ifindex"] as? Int == Int(index))
            #expect(shown["address"] as? String == "0e:00:00:00:00:01")
            #expect(shown["mtu"] as? Int == 1450)
            #expect((shown["flags"] as? [String])?.contains("UP") == true)
            let info = (shown["linkinfo"] as? [String: Any])?["info_data"] as? [String: Any] ?? [:]
            #expect(info["id"] as? Int == 7)
            #expect(info["local"] as? String == "198.18.0.1")
            #expect(info["link"] as? String == "d0")
            #expect(info["port"] as? Int == 8472)
            #expect(info["learning"] as? Bool == false)
            #expect(info["gbp"] as? Bool == true)

            // A device made by iproute2 reads back the same way, and a different one says how it differs.
            let (status, output) = try namespace.ip(
                "link",
                "add",
                "flannel.2",
                "address",
                "0e:00:00:00:00:09",
                "type",
                "vxlan",
                "id",
                "2",
                "local",
                "198.18.0.1",
                "dev",
                "d0",
                "dstport",
                "4789",
                "nolearning"
            )
            #expect(status == 0, "\(output)")
            let other = try namespace.enter { () throws -> VXLANLink? in
                var netlink = try RouteNetlink()
                return try netlink.linkState(named: "flannel.2")?.vxlan
            }
            #expect(
                other?.vni == 2 && other?.port == 4789 && other?.mac == MACAddress("0e:00:00:00:00:09")
                    && other?.learning == false
            )
            #expect(other?.incompatibility(with: state.vxlan!) == "VNI 2, wanted 7")
        }
    }

    @Test func neighboursAndFDBEntriesAddReplaceAndDelete() throws {
        try TestNamespace.with { namespace in
            try Self.underlay(namespace)
            let (status, output) = try namespace.ip(
                "link",
                "add",
                "flannel.1",
                "address",
                "0e:00:00:00:00:01",
                "type",
                "vxlan",
                "id",
                "1",
                "local",
                "198.18.0.1",
                "dev",
                "d0",
                "dstport",
                "8472",
                "nolearning"
            )
            #expect(status == 0, "\(output)")
            _ = try namespace.ip("link", "set", "flannel.1", "up")
            let gateway = IPv4Address(10, 244, 2, 0)

            try namespace.enter {
                var netlink = try RouteNetlink()
                let index = try RouteNetlink.interfaceIndex("flannel.1")
                try netlink.replaceNeighbour(NeighbourEntry(interfaceIndex: index, address: gateway, mac: Self.peer))
                try netlink.replaceFDB(
                    FDBEntry(interfaceIndex: index, mac: Self.peer, destination: IPv4Address(198, 18, 0, 2))
                )
                try netlink.replaceRoute(
                    KernelRoute(
                        destination: IPv4Prefix(gateway, length: 24),
                        gateway: gateway,
                        interfaceIndex: index,
                        routeProtocol: 87,
                        onlink: true
                    )
                )
                #expect(
                    try netlink.neighbours(interfaceIndex: index) == [
                        NeighbourEntry(interfaceIndex: index, address: gateway, mac: Self.peer)
                    ]
                )
                #expect(
                    try netlink.fdbEntries(interfaceIndex: index) == [
                        FDBEntry(interfaceIndex: index, mac: Self.peer, destination: IPv4Address(198, 18, 0, 2))
                    ]
                )
                let routes = try netlink.mainTableRoutes().filter { $0.interfaceIndex == index }
                #expect(
                    routes.count == 1 && routes.first?.onlink == true && routes.first?.routeProtocol == 87,
                    "\(routes)"
                )
            }
            let neighbours = try Self.json(namespace, ["neigh", "show", "dev", "flannel.1"])
            #expect(neighbours.map { "\($0["dst"]!) \($0["lladdr"]!)" } == ["10.244.2.0 0e:00:00:00:00:02"])
            #expect(neighbours.first?["state"] as? [String] == ["PERMANENT"])
            let fdb = try Self.json(namespace, ["bridge", "fdb", "show", "dev", "flannel.1"])
            #expect(
                fdb.map { "\($0["mac"]!) \($0["dst"]!) \($0["state"]!)" } == ["0e:00:00:00:00:02 198.18.0.2 permanent"]
            )
            #expect((fdb.first?["flags"] as? [String]) == ["self"])
            let route = try #require(try Self.json(namespace, ["route", "show", "dev", "flannel.1"]).first)
            #expect(route["dst"] as? String == "10.244.2.0/24" && route["gateway"] as? String == "10.244.2.0")
            #expect((route["flags"] as? [String]) == ["onlink"])

            // Replace: a new MAC for the neighbour, a new destination for the MAC (rewritten in place).
            let moved = MACAddress("0e:00:00:00:00:05")!
            try namespace.enter {
                var netlink = try RouteNetlink()
                let index = try RouteNetlink.interfaceIndex("flannel.1")
                try netlink.replaceNeighbour(NeighbourEntry(interfaceIndex: index, address: gateway, mac: moved))
                try netlink.replaceFDB(
                    FDBEntry(interfaceIndex: index, mac: Self.peer, destination: IPv4Address(198, 18, 0, 9))
                )
            }
            #expect(
                try Self.json(namespace, ["neigh", "show", "dev", "flannel.1"]).map { $0["lladdr"] as? String } == [
                    "0e:00:00:00:00:05"
                ]
            )
            #expect(
                try Self.json(namespace, ["bridge", "fdb", "show", "dev", "flannel.1"]).map { $0["dst"] as? String }
                    == ["198.18.0.9"]
            )

            // Delete: each goes, and deleting again says ENOENT.
            try namespace.enter {
                var netlink = try RouteNetlink()
                let index = try RouteNetlink.interfaceIndex("flannel.1")
                let neighbour = NeighbourEntry(interfaceIndex: index, address: gateway, mac: moved)
                let entry = FDBEntry(interfaceIndex: index, mac: Self.peer, destination: IPv4Address(198, 18, 0, 9))
                try netlink.deleteNeighbour(neighbour)
                try netlink.deleteFDB(entry)
                #expect { try netlink.deleteNeighbour(neighbour) } throws: { ($0 as? NetlinkError)?.code == ENOENT }
                #expect { try netlink.deleteFDB(entry) } throws: { ($0 as? NetlinkError)?.code == ENOENT }
                #expect(try netlink.neighbours(interfaceIndex: index).isEmpty)
                #expect(try netlink.fdbEntries(interfaceIndex: index).isEmpty)
            }
            #expect(try Self.json(namespace, ["neigh", "show", "dev", "flannel.1"]).isEmpty)
            #expect(try Self.json(namespace, ["bridge", "fdb", "show", "dev", "flannel.1"]).isEmpty)
        }
    }
}
