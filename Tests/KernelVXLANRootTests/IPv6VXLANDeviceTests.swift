import Addressing
import Foundation
import KernelVXLAN
import Netlink
import Routes
import TestSupport
import TestThreads
import Testing

/// IPv6VXLANDevice against the kernel: two namespaces joined by a veth pair with an IPv6 underlay
/// (2001:db8::1 and ::2), each with flannel-v6.1 set up through the API and the other as its peer,
/// and a "container" address from fc00:0:0:<n>::/64 on a veth link in each, pinged across.
@Suite(
    .ownThread,
    .enabled(if: TestNamespace.missing == nil, "\(TestNamespace.missing ?? "")"),
    .timeLimit(.minutes(1))
)
struct IPv6VXLANDeviceTests {
    static let network = IPv6Prefix("fc00::/48")!

    static func subnet(_ n: UInt16) -> IPv6Prefix {
        IPv6Prefix(IPv6Address(groups: [0xFC00, 0, 0, n, 0, 0, 0, 0]), length: 64)
    }
    static func underlay(_ n: UInt16) -> IPv6Address { IPv6Address(groups: [0x2001, 0xDB8, 0, 0, 0, 0, 0, n]) }
    static func mac(_ n: UInt16) -> MACAddress { MACAddress(0x0E00_0000_0000 | UInt64(n)) }

    /// Host `n`'s lease as its peers see it: fc00:0:0:<n>::/64 at 2001:db8::<n>, VtepMAC 0e:..:<n>.
    static func peer(_ n: UInt16, at host: UInt16? = nil) -> IPv6Peer {
        IPv6Peer(
            subnet: subnet(n),
            nextHop: NextHop(publicIP: IPv4Address(198, 18, 0, UInt8(n)), port: 8472, backend: .vxlan),
            publicIPv6: underlay(host ?? n),
            vtepMAC: mac(n)
        )
    }

    static func ip(_ namespace: TestNamespace, _ arguments: String...) throws -> String {
        let (status, output) = try TestNamespace.run(["-n", namespace.name] + arguments)
        guard status == 0 else { throw TestFailure("ip \(arguments): \(output)") }
        return output
    }

    static func exec(_ namespace: TestNamespace, _ command: String...) throws -> (Int32, String) {
        try TestNamespace.run(["netns", "exec", namespace.name] + command)
    }

    static func bridgeFDB(_ namespace: TestNamespace) throws -> String {
        let (status, output) = try exec(namespace, "/usr/sbin/bridge", "fdb", "show", "dev", "flannel-v6.1")
        guard status == 0 else { throw TestFailure("bridge fdb: \(output)") }
        return output
    }

    /// Host `n`'s underlay address on eth0 and its container address fc00:0:0:<n>::5 on c0.
    static func host(_ namespace: TestNamespace, _ n: UInt16) throws {
        _ = try ip(namespace, "link", "set", "lo", "up")
        _ = try ip(namespace, "addr", "add", "\(underlay(n))/64", "dev", "eth0", "nodad")
        _ = try ip(namespace, "link", "set", "eth0", "up")
        // A veth pair stands for the container's link (this kernel may lack the dummy driver).
        _ = try ip(namespace, "link", "add", "c0", "type", "veth", "peer", "name", "c1")
        _ = try ip(namespace, "addr", "add", "\(container(n))/64", "dev", "c0", "nodad")
        _ = try ip(namespace, "link", "set", "c1", "up")
        _ = try ip(namespace, "link", "set", "c0", "up")
    }

    static func container(_ n: UInt16) -> IPv6Address { subnet(n).host(5) }

    /// Runs `body` with host `n`'s IPv6VXLANDevice for flannel-v6.1, made inside `namespace`.
    static func withDevice<T: Sendable>(
        _ namespace: TestNamespace,
        _ n: UInt16,
        _ body: @escaping @Sendable (inout IPv6VXLANDevice) throws -> T
    ) throws -> T {
        try namespace.enter {
            let link = IPv6VXLANLink(
                name: "flannel-v6.1",
                vni: 1,
                local: underlay(n),
                underlayIndex: try RouteNetlink.interfaceIndex("eth0"),
                port: 8472,
                mac: mac(n),
                mtu: 1430
            )
            var device = try IPv6VXLANDevice(
                link: link,
                localSubnet: subnet(n),
                network: network,
                publicIP: underlay(n)
            )
            return try body(&device)
        }
    }

    /// One echo from host `from`'s container address to host `to`'s.
    static func ping(_ namespace: TestNamespace, from: UInt16, to: UInt16) throws -> Bool {
        try exec(namespace, "ping", "-6", "-c", "1", "-W", "1", "-I", "\(container(from))", "\(container(to))").0 == 0
    }

    /// Two namespaces, a veth pair between them (eth0 in each), hosts 1 and 2 on it.
    static func withTwoHosts(_ body: @Sendable (TestNamespace, TestNamespace) throws -> Void) throws {
        try TestNamespace.with { a in
            try TestNamespace.with { b in
                _ = try ip(a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", b.name)
                try host(a, 1)
                try host(b, 2)
                try body(a, b)
            }
        }
    }

    @Test func twoHostsReachEachOtherOverFlannelV6() throws {
        try Self.withTwoHosts { a, b in
            let setupA = try Self.withDevice(a, 1) { device in
                let setup = try device.setUp()
                return (setup, try device.reconcile([Self.peer(2)]))
            }
            let setupB = try Self.withDevice(b, 2) { device in
                let setup = try device.setUp()
                return (setup, try device.reconcile([Self.peer(1)]))
            }
            #expect(setupA.0 == .created && setupB.0 == .created)
            #expect(setupA.1.added.count == 1 && setupA.1.refused.isEmpty, "\(setupA.1)")
            #expect(setupB.1.added.count == 1 && setupB.1.refused.isEmpty, "\(setupB.1)")

            let link = try Self.ip(a, "-d", "link", "show", "flannel-v6.1")
            for part in [
                "mtu 1430", "link/ether 0e:00:00:00:00:01", "vxlan id 1 local 2001:db8::1 dev eth0", "dstport 8472",
                "nolearning", ",UP",
            ] {
                #expect(link.contains(part), "\(part): \(link)")
            }
            #expect(try Self.ip(a, "-6", "addr", "show", "dev", "flannel-v6.1").contains("inet6 fc00:0:0:1::/128"))
            #expect(
                try Self.ip(a, "-6", "neigh", "show", "dev", "flannel-v6.1").contains(
                    "fc00:0:0:2:: lladdr 0e:00:00:00:00:02 PERMANENT"
                )
            )
            #expect(try Self.bridgeFDB(a).contains("0e:00:00:00:00:02 dst 2001:db8::2 self permanent"))
            let routes = try Self.ip(a, "-6", "route", "show", "dev", "flannel-v6.1")
            #expect(routes.contains("fc00:0:0:2::/64 via fc00:0:0:2:: proto 87 metric 1024 onlink"), "\(routes)")

            #expect(try waitUntil(timeout: .seconds(10)) { try Self.ping(a, from: 1, to: 2) }, "ping -6 across")
            #expect(try Self.ping(b, from: 2, to: 1))

            // A restart: the device and entries are adopted as they are, and nothing is rewritten.
            let again = try Self.withDevice(a, 1) { device in
                let setup = try device.setUp()
                return (setup, try device.reconcile([Self.peer(2)]), try device.pending().isEmpty)
            }
            #expect(again.0 == .adopted)
            #expect(again.1.added.isEmpty && again.1.kept == 1, "\(again.1)")
            #expect(again.2)
        }
    }

    /// Entries no current peer accounts for go, whether left by a previous run (host 3) or by a
    /// peer that moved (host 2's new PublicIPv6) or left; the device is then in step with the kernel.
    @Test func staleEntriesAreRemoved() throws {
        try Self.withTwoHosts { a, b in
            _ = try Self.withDevice(b, 2) { device in
                _ = try device.setUp()
                return try device.reconcile([Self.peer(1)])
            }
            _ = try Self.withDevice(a, 1) { device in
                _ = try device.setUp()
                return try device.reconcile([Self.peer(2), Self.peer(3)])
            }
            #expect(try Self.ip(a, "-6", "route", "show", "dev", "flannel-v6.1").contains("fc00:0:0:3::/64"))

            // The next run knows only host 2.
            let restarted = try Self.withDevice(a, 1) { device in
                _ = try device.setUp()
                return try device.reconcile([Self.peer(2)])
            }
            #expect(restarted.removedRoutes.map(\.destination) == [Self.subnet(3)], "\(restarted)")
            #expect(restarted.removedNeighbours.map(\.address) == [Self.subnet(3).network])
            #expect(restarted.removedFDB.map(\.destination) == [Self.underlay(3)])
            #expect(restarted.kept == 1)
            #expect(!(try Self.ip(a, "-6", "route", "show", "dev", "flannel-v6.1")).contains("fc00:0:0:3::"))
            #expect(!(try Self.ip(a, "-6", "neigh", "show", "dev", "flannel-v6.1")).contains("fc00:0:0:3::"))
            #expect(!(try Self.bridgeFDB(a)).contains("2001:db8::3"))
            #expect(try waitUntil(timeout: .seconds(10)) { try Self.ping(a, from: 1, to: 2) })

            // Host 2 moves to 2001:db8::9: its remote is rewritten in place, nothing else changes.
            let moved = try Self.withDevice(a, 1) { device in
                _ = try device.setUp()
                return try device.reconcile([Self.peer(2, at: 9)])
            }
            #expect(moved.added.map(\.fdb.destination) == [Self.underlay(9)] && moved.removedFDB.isEmpty, "\(moved)")
            let fdb = try Self.bridgeFDB(a)
            #expect(fdb.contains("0e:00:00:00:00:02 dst 2001:db8::9 self permanent") && !fdb.contains("2001:db8::2 "))

            // Host 2 leaves: all three of its entries go, and the path with them.
            let gone = try Self.withDevice(a, 1) { device in
                _ = try device.setUp()
                return (try device.reconcile([]), try device.listing())
            }
            #expect(
                gone.0.removedRoutes.count == 1 && gone.0.removedNeighbours.count == 1 && gone.0.removedFDB.count == 1
            )
            #expect(gone.1.routes.isEmpty && gone.1.neighbours.isEmpty && gone.1.fdb.isEmpty, "\(gone.1)")
            #expect(!(try Self.ping(a, from: 1, to: 2)))
        }
    }

    /// A flannel-v6.1 whose IFLA_VXLAN_LOCAL6 differs from ours is read back, found incompatible and
    /// replaced; so is an IPv4 vxlan device under the name. A matching one is adopted.
    @Test func aDeviceWithAnotherLocal6IsDetectedAndReplaced() throws {
        try TestNamespace.with { namespace in
            _ = try Self.ip(namespace, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
            _ = try Self.ip(namespace, "addr", "add", "2001:db8::1/64", "dev", "eth0", "nodad")
            _ = try Self.ip(namespace, "addr", "add", "198.18.0.1/24", "dev", "eth0")
            _ = try Self.ip(namespace, "link", "set", "eth0", "up")
            func add(local: String) throws {
                _ = try Self.ip(
                    namespace,
                    "link",
                    "add",
                    "flannel-v6.1",
                    "type",
                    "vxlan",
                    "id",
                    "1",
                    "local",
                    local,
                    "dev",
                    "eth0",
                    "dstport",
                    "8472",
                    "nolearning"
                )
            }

            try add(local: "2001:db8::9")
            let found = try namespace.enter { () throws -> LinkState? in
                var netlink = try RouteNetlink()
                return try netlink.linkState(named: "flannel-v6.1")
            }
            #expect(found?.vxlan6?.local == Self.underlay(9) && found?.vxlan == nil, "\(String(describing: found))")
            let replaced = try Self.withDevice(namespace, 1) { device in try device.setUp() }
            #expect(
                replaced == .replaced("an incompatible vxlan device (local address 2001:db8::9, wanted 2001:db8::1)")
            )
            #expect(try Self.ip(namespace, "-d", "link", "show", "flannel-v6.1").contains("local 2001:db8::1 dev eth0"))

            let index = try namespace.enter { try RouteNetlink.interfaceIndex("flannel-v6.1") }
            let kept = try Self.withDevice(namespace, 1) { device in try device.setUp() }
            #expect(kept == .adopted)
            #expect(try namespace.enter { try RouteNetlink.interfaceIndex("flannel-v6.1") } == index)

            _ = try Self.ip(namespace, "link", "del", "flannel-v6.1")
            try add(local: "198.18.0.1")
            let fromIPv4 = try Self.withDevice(namespace, 1) { device in try device.setUp() }
            #expect(fromIPv4 == .replaced("a vxlan device with local address 198.18.0.1, wanted an IPv6 one"))
            #expect(try Self.ip(namespace, "-d", "link", "show", "flannel-v6.1").contains("local 2001:db8::1"))
        }
    }

    /// flanneld's flannel-v6.1 with its entries (routes under proto boot, IPv6's metric 1024) is
    /// adopted: the same device, the wanted peer's route rewritten under Weft's protocol, a departed
    /// peer's entries and an old lease's address gone, an operator's route kept.
    @Test func adoptsFlanneldsDeviceAndEntries() throws {
        try TestNamespace.with { namespace in
            _ = try Self.ip(namespace, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
            _ = try Self.ip(namespace, "addr", "add", "2001:db8::1/64", "dev", "eth0", "nodad")
            _ = try Self.ip(namespace, "link", "set", "eth0", "up")
            for arguments in [
                [
                    "link", "add", "flannel-v6.1", "address", "0e:00:00:00:00:77", "type", "vxlan", "id", "1", "local",
                    "2001:db8::1", "dev", "eth0", "dstport", "8472", "nolearning",
                ],
                ["link", "set", "flannel-v6.1", "mtu", "1430", "up"],
                ["addr", "add", "fc00:0:0:9::/128", "dev", "flannel-v6.1", "nodad"],  // an old lease's
                ["route", "add", "fc00:0:0:200::/64", "dev", "flannel-v6.1", "proto", "static"],  // an operator's
            ] {
                let (status, output) = try TestNamespace.run(["-n", namespace.name] + arguments)
                #expect(status == 0, "ip \(arguments): \(output)")
            }
            for n: UInt16 in [2, 4] {
                _ = try Self.ip(
                    namespace,
                    "-6",
                    "neigh",
                    "add",
                    "\(Self.subnet(n).network)",
                    "lladdr",
                    "\(Self.mac(n))",
                    "dev",
                    "flannel-v6.1",
                    "nud",
                    "permanent"
                )
                let (status, output) = try Self.exec(
                    namespace,
                    "/usr/sbin/bridge",
                    "fdb",
                    "append",
                    "\(Self.mac(n))",
                    "dev",
                    "flannel-v6.1",
                    "dst",
                    "\(Self.underlay(n))"
                )
                #expect(status == 0, "\(output)")
                _ = try Self.ip(
                    namespace,
                    "-6",
                    "route",
                    "add",
                    "\(Self.subnet(n))",
                    "via",
                    "\(Self.subnet(n).network)",
                    "dev",
                    "flannel-v6.1",
                    "onlink"
                )
            }
            let index = try namespace.enter { try RouteNetlink.interfaceIndex("flannel-v6.1") }

            let (setup, result) = try Self.withDevice(namespace, 1) { device in
                (try device.setUp(), try device.reconcile([Self.peer(2)]))
            }
            #expect(setup == .adopted)
            #expect(try namespace.enter { try RouteNetlink.interfaceIndex("flannel-v6.1") } == index, "the same device")
            #expect(result.added.map(\.route.subnet) == [Self.subnet(2)], "only the route is rewritten under proto 87")
            #expect(result.removedRoutes.map(\.destination) == [Self.subnet(4)], "\(result)")
            let routes = try Self.ip(namespace, "-6", "route", "show", "dev", "flannel-v6.1")
            #expect(routes.contains("fc00:0:0:2::/64 via fc00:0:0:2:: proto 87 metric 1024 onlink"), "\(routes)")
            #expect(!routes.contains("fc00:0:0:4::"), "\(routes)")
            #expect(routes.contains("fc00:0:0:200::/64 proto static"), "an operator's route stays: \(routes)")
            #expect(!(try Self.ip(namespace, "-6", "neigh", "show", "dev", "flannel-v6.1")).contains("fc00:0:0:4::"))
            #expect(!(try Self.bridgeFDB(namespace)).contains("0e:00:00:00:00:04"))
            let addresses = try Self.ip(namespace, "-6", "addr", "show", "dev", "flannel-v6.1")
            #expect(addresses.contains("fc00:0:0:1::/128") && !addresses.contains("fc00:0:0:9::"), "\(addresses)")
            #expect(try Self.ip(namespace, "link", "show", "flannel-v6.1").contains("link/ether 0e:00:00:00:00:01"))
        }
    }
}
