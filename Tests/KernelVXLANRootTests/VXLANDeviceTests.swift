import Addressing
import Foundation
import KernelVXLAN
import Netlink
import Routes
import TestThreads
import Testing

/// VXLANDevice against the kernel in a namespace of its own: the device it makes or adopts, and the
/// entries each reconcile leaves, read back with iproute2 (`ip -d link`, `ip neigh`, `bridge fdb`,
/// `ip route`).
@Suite(
    .ownThread,
    .enabled(if: TestNamespace.missing == nil, "\(TestNamespace.missing ?? "")"),
    .timeLimit(.minutes(1))
)
struct VXLANDeviceTests {
    static let network = IPv4Prefix(IPv4Address(10, 244, 0, 0), length: 16)
    static let local = IPv4Prefix(IPv4Address(10, 244, 1, 0), length: 24)

    static func peer(_ third: UInt8, host: UInt8, mac: String) -> Route {
        Route(
            subnet: IPv4Prefix(IPv4Address(10, 244, third, 0), length: 24),
            nextHop: NextHop(
                publicIP: IPv4Address(198, 18, 0, host),
                port: 8472,
                vtepMAC: MACAddress(mac)!,
                backend: .vxlan
            )
        )
    }

    static func ip(_ namespace: TestNamespace, _ arguments: String...) throws -> String {
        let (status, output) = try TestNamespace.run(["-n", namespace.name] + arguments)
        guard status == 0 else { throw TestFailure("ip \(arguments): \(output)") }
        return output
    }

    static func bridgeFDB(_ namespace: TestNamespace) throws -> String {
        let (status, output) = try TestNamespace.run([
            "netns", "exec", namespace.name, "/usr/sbin/bridge", "fdb", "show", "dev", "flannel.1",
        ])
        guard status == 0 else { throw TestFailure("bridge fdb: \(output)") }
        return output
    }

    static func underlay(_ namespace: TestNamespace) throws {
        _ = try ip(namespace, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
        _ = try ip(namespace, "addr", "add", "198.18.0.1/24", "dev", "eth0")
        _ = try ip(namespace, "link", "set", "eth0", "up")
    }

    /// Runs `body` with a VXLANDevice for flannel.1 made inside the namespace.
    static func withDevice<T: Sendable>(
        _ namespace: TestNamespace,
        mac: String = "0e:00:00:00:00:01",
        _ body: @escaping @Sendable (inout VXLANDevice) throws -> T
    ) throws -> T {
        try namespace.enter {
            let link = VXLANLink(
                name: "flannel.1",
                vni: 1,
                local: IPv4Address(198, 18, 0, 1),
                underlayIndex: try RouteNetlink.interfaceIndex("eth0"),
                port: 8472,
                mac: MACAddress(mac)!,
                mtu: 1450
            )
            var device = try VXLANDevice(
                link: link,
                localSubnet: local,
                network: network,
                publicIP: IPv4Address(198, 18, 0, 1)
            )
            return try body(&device)
        }
    }

    @Test func createsTheDeviceAndFollowsPeersAddedChangedAndRemoved() throws {
        try TestNamespace.with { namespace in
            try Self.underlay(namespace)
            let setup = try Self.withDevice(namespace) { device in try device.setUp() }
            #expect(setup == .created)
            let link = try Self.ip(namespace, "-d", "link", "show", "flannel.1")
            for part in [
                "mtu 1450", "link/ether 0e:00:00:00:00:01", "vxlan id 1 local 198.18.0.1 dev eth0", "dstport 8472",
                "nolearning", ",UP",
            ] {
                #expect(link.contains(part), "\(part): \(link)")
            }
            #expect(try Self.ip(namespace, "-4", "addr", "show", "dev", "flannel.1").contains("inet 10.244.1.0/32"))

            let two = Self.peer(2, host: 2, mac: "0e:00:00:00:00:02")
            let three = Self.peer(3, host: 3, mac: "0e:00:00:00:00:03")
            let first = try Self.withDevice(namespace) { device in
                _ = try device.setUp()
                return try device.reconcile([two, three])
            }
            #expect(first.added.count == 2 && first.refused.isEmpty)
            var neighbours = try Self.ip(namespace, "neigh", "show", "dev", "flannel.1")
            #expect(
                neighbours.contains("10.244.2.0 lladdr 0e:00:00:00:00:02 PERMANENT")
                    && neighbours.contains("10.244.3.0 lladdr 0e:00:00:00:00:03 PERMANENT"),
                "\(neighbours)"
            )
            var fdb = try Self.bridgeFDB(namespace)
            #expect(
                fdb.contains("0e:00:00:00:00:02 dst 198.18.0.2 self permanent")
                    && fdb.contains("0e:00:00:00:00:03 dst 198.18.0.3 self permanent"),
                "\(fdb)"
            )
            var routes = try Self.ip(namespace, "route", "show", "dev", "flannel.1")
            #expect(
                routes.contains("10.244.2.0/24 via 10.244.2.0 proto 87 onlink")
                    && routes.contains("10.244.3.0/24 via 10.244.3.0 proto 87 onlink"),
                "\(routes)"
            )

            // Again with the same peers: nothing to do. Then 3 moves to another PublicIP and 2 leaves.
            let (again, moved) = try Self.withDevice(namespace) { device in
                _ = try device.setUp()
                let again = try device.reconcile([two, three])
                return (again, try device.reconcile([Self.peer(3, host: 9, mac: "0e:00:00:00:00:03")]))
            }
            #expect(again.added.isEmpty && again.kept == 2 && again.removedRoutes.isEmpty, "\(again)")
            #expect(
                moved.removedRoutes.map(\.destination) == [two.subnet] && moved.removedNeighbours.count == 1
                    && moved.removedFDB.count == 1
            )
            neighbours = try Self.ip(namespace, "neigh", "show", "dev", "flannel.1")
            #expect(
                !neighbours.contains("10.244.2.0") && neighbours.contains("10.244.3.0 lladdr 0e:00:00:00:00:03"),
                "\(neighbours)"
            )
            fdb = try Self.bridgeFDB(namespace)
            #expect(
                !fdb.contains("0e:00:00:00:00:02") && fdb.contains("0e:00:00:00:00:03 dst 198.18.0.9 self permanent")
                    && !fdb.contains("198.18.0.3"),
                "\(fdb)"
            )
            routes = try Self.ip(namespace, "route", "show", "dev", "flannel.1")
            #expect(
                !routes.contains("10.244.2.0/24") && routes.contains("10.244.3.0/24 via 10.244.3.0 proto 87 onlink"),
                "\(routes)"
            )

            // Someone deletes an entry: pending names it, resync puts it back. Someone deletes the
            // device; isPresent says so.
            let (pending, present) = try Self.withDevice(namespace) { device in
                _ = try device.setUp()
                _ = try device.reconcile([Self.peer(3, host: 9, mac: "0e:00:00:00:00:03")])
                #expect(try device.pending().isEmpty)
                var netlink = try RouteNetlink()
                try netlink.deleteNeighbour(
                    NeighbourEntry(interfaceIndex: device.index, address: IPv4Address(10, 244, 3, 0), mac: nil)
                )
                let pending = try device.pending()
                _ = try device.resync()
                return (pending, device.isPresent())
            }
            #expect(
                pending.neighbours.map(\.address) == [IPv4Address(10, 244, 3, 0)] && pending.fdb.isEmpty
                    && pending.routes.isEmpty,
                "\(pending)"
            )
            #expect(present)

            // Someone takes the device down, which flushes its routes: resync brings it up and puts them back.
            let afterDown = try Self.withDevice(namespace) { device in
                _ = try device.setUp()
                _ = try device.reconcile([Self.peer(3, host: 9, mac: "0e:00:00:00:00:03")])
                _ = try Self.ip(namespace, "link", "set", "flannel.1", "down")
                #expect(!(try Self.ip(namespace, "route", "show", "dev", "flannel.1")).contains("10.244.3.0/24"))
                return try device.resync()
            }
            #expect(afterDown.refused.isEmpty, "\(afterDown.refused)")
            #expect(try Self.ip(namespace, "link", "show", "flannel.1").contains(",UP"))
            #expect(
                try Self.ip(namespace, "route", "show", "dev", "flannel.1").contains(
                    "10.244.3.0/24 via 10.244.3.0 proto 87 onlink"
                )
            )
            #expect(
                try Self.ip(namespace, "neigh", "show", "dev", "flannel.1").contains(
                    "10.244.3.0 lladdr 0e:00:00:00:00:03 PERMANENT"
                )
            )
            let gone = try Self.withDevice(namespace) { device in
                _ = try device.setUp()
                let index = try RouteNetlink.interfaceIndex("flannel.1")
                var netlink = try RouteNetlink()
                try netlink.deleteLink(index: index)
                return device.isPresent()
            }
            #expect(!gone)
        }
    }

    /// flanneld's flannel.1 with its entries (routes under proto boot) is adopted: the same device,
    /// its MAC made the lease's, the wanted peer's route rewritten under Weft's protocol, a departed
    /// peer's entries gone, an operator's route and the new address kept (an old address is removed
    /// only after ours is added: a device losing its last address loses its routes).
    @Test func adoptsFlanneldsDeviceAndReplacesWeftsTUN() throws {
        try TestNamespace.with { namespace in
            try Self.underlay(namespace)
            _ = try Self.ip(
                namespace,
                "link",
                "add",
                "flannel.1",
                "address",
                "0e:00:00:00:00:77",
                "type",
                "vxlan",
                "id",
                "1",
                "local",
                "198.18.0.1",
                "dev",
                "eth0",
                "dstport",
                "8472",
                "nolearning"
            )
            _ = try Self.ip(namespace, "link", "set", "flannel.1", "mtu", "1450", "up")
            _ = try Self.ip(namespace, "addr", "add", "10.244.9.0/32", "dev", "flannel.1")  // an old lease's
            let index = try Self.ip(namespace, "-o", "link", "show", "flannel.1").split(separator: ":").first.map(
                String.init
            )
            for (third, mac) in [(2, "0e:00:00:00:00:02"), (4, "0e:00:00:00:00:04")] {
                _ = try Self.ip(
                    namespace,
                    "neigh",
                    "add",
                    "10.244.\(third).0",
                    "lladdr",
                    mac,
                    "dev",
                    "flannel.1",
                    "nud",
                    "permanent"
                )
                let (status, output) = try TestNamespace.run([
                    "netns", "exec", namespace.name, "/usr/sbin/bridge", "fdb", "append", mac,
                    "dev", "flannel.1", "dst", "198.18.0.\(third)",
                ])
                #expect(status == 0, "\(output)")
                _ = try Self.ip(
                    namespace,
                    "route",
                    "add",
                    "10.244.\(third).0/24",
                    "via",
                    "10.244.\(third).0",
                    "dev",
                    "flannel.1",
                    "onlink"
                )
            }
            // an operator's
            _ = try Self.ip(namespace, "route", "add", "10.244.200.0/24", "dev", "flannel.1", "proto", "static")

            let (setup, result) = try Self.withDevice(namespace) { device in
                (try device.setUp(), try device.reconcile([Self.peer(2, host: 2, mac: "0e:00:00:00:00:02")]))
            }
            #expect(setup == .adopted)
            #expect(
                try Self.ip(namespace, "-o", "link", "show", "flannel.1").split(separator: ":").first.map(String.init)
                    == index,
                "the same device"
            )
            #expect(try Self.ip(namespace, "link", "show", "flannel.1").contains("link/ether 0e:00:00:00:00:01"))
            let addresses = try Self.ip(namespace, "-4", "addr", "show", "dev", "flannel.1")
            #expect(addresses.contains("10.244.1.0/32") && !addresses.contains("10.244.9.0"), "\(addresses)")
            #expect(
                result.added.map(\.route.subnet.description) == ["10.244.2.0/24"],
                "only the route is rewritten under proto 87"
            )
            let routes = try Self.ip(namespace, "route", "show", "dev", "flannel.1")
            #expect(
                routes.contains("10.244.2.0/24 via 10.244.2.0 proto 87 onlink") && !routes.contains("10.244.4.0"),
                "\(routes)"
            )
            #expect(routes.contains("10.244.200.0/24 proto static"), "an operator's route stays: \(routes)")
            #expect(!(try Self.ip(namespace, "neigh", "show", "dev", "flannel.1")).contains("10.244.4.0"))
            #expect(!(try Self.bridgeFDB(namespace)).contains("0e:00:00:00:00:04"))

            // A TUN under the name (weftd's user-space dataplane) is replaced by a vxlan device.
            _ = try Self.ip(namespace, "link", "del", "flannel.1")
            _ = try Self.ip(namespace, "tuntap", "add", "dev", "flannel.1", "mode", "tun")
            let replaced = try Self.withDevice(namespace) { device in try device.setUp() }
            #expect(replaced == .replaced("a TUN device (weftd's user-space vxlan dataplane)"))
            #expect(try Self.ip(namespace, "-d", "link", "show", "flannel.1").contains("vxlan id 1"))
        }
    }
}
