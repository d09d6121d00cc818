import Addressing
import Testing

@testable import Daemon

/// flanneld's interface choice on made-up hosts: no kernel involved.
@Suite struct InterfaceSelectorTests {
    static func address(_ text: String) -> IPv4Address { IPv4Address(text)! }

    // A two-NIC host: eth0 carries the default route, eth1 a second network, plus loopback and
    // an address-less, down interface.
    static let host: [HostInterface] = [
        HostInterface(name: "lo", index: 1, mtu: 65536, addresses: [address("127.0.0.1")], isLoopback: true),
        HostInterface(name: "eth0", index: 2, mtu: 1500, addresses: [address("198.18.0.2")]),
        HostInterface(
            name: "eth1",
            index: 3,
            mtu: 9000,
            addresses: [address("169.254.7.7"), address("198.19.0.2"), address("198.19.5.5")]
        ),
        HostInterface(name: "ifb0", index: 4, mtu: 1500, addresses: [], isUp: false),
    ]
    static let routes = [
        HostRoute(interface: "eth1", destination: IPv4Prefix("198.19.0.0/16")!),
        HostRoute(interface: "eth0", destination: IPv4Prefix("0.0.0.0/0")!, gateway: address("198.18.0.1")),
        HostRoute(interface: "eth1", destination: IPv4Prefix("0.0.0.0/0")!, gateway: address("198.19.0.1")),
    ]

    static func select(_ request: InterfaceRequest, reach: IPv4Address? = nil) throws -> ExternalInterface {
        try InterfaceSelector.select(request, interfaces: host, routes: routes, reachSource: reach)
    }

    struct Case: Sendable, CustomStringConvertible {
        let request: InterfaceRequest
        let name: String
        let address: String
        let reason: String
        var description: String { "\(request) → \(name)" }
    }

    static let cases: [Case] = [
        // Default: the first default route's interface (the kernel lists the lowest metric first).
        Case(request: InterfaceRequest(), name: "eth0", address: "198.18.0.2", reason: "default route via 198.18.0.1"),
        Case(
            request: InterfaceRequest(interfaces: ["eth1"]),
            name: "eth1",
            address: "198.19.0.2",
            reason: "--iface=eth1 names it"
        ),
        // By address: that very address, not the interface's first.
        Case(
            request: InterfaceRequest(interfaces: ["198.19.5.5"]),
            name: "eth1",
            address: "198.19.5.5",
            reason: "--iface=198.19.5.5 is its address"
        ),
        // The first --iface that exists wins, whatever comes after.
        Case(
            request: InterfaceRequest(interfaces: ["wlan0", "198.18.9.9", "eth1", "eth0"]),
            name: "eth1",
            address: "198.19.0.2",
            reason: "--iface=eth1"
        ),
        // --iface before --iface-regex, even when the regex is listed first on the command line.
        Case(
            request: InterfaceRequest(interfaces: ["eth0"], regexes: ["^eth1$"]),
            name: "eth0",
            address: "198.18.0.2",
            reason: "--iface=eth0"
        ),
        // A regex is tried on every address before any name: "1" matches lo's 127.0.0.1 first.
        Case(
            request: InterfaceRequest(regexes: ["^198\\.19\\."]),
            name: "eth1",
            address: "198.19.0.2",
            reason: "matches its address 198.19.0.2"
        ),
        Case(
            request: InterfaceRequest(regexes: ["eth1"]),
            name: "eth1",
            address: "198.19.0.2",
            reason: "matches its name"
        ),
        Case(
            request: InterfaceRequest(regexes: ["^nope$", "1"]),
            name: "lo",
            address: "127.0.0.1",
            reason: "--iface-regex=1 matches its address"
        ),
        Case(
            request: InterfaceRequest(interfaces: ["wlan0"], regexes: ["th0"]),
            name: "eth0",
            address: "198.18.0.2",
            reason: "--iface-regex=th0 matches its name"
        ),
        // --public-ip alone finds the interface that holds it.
        Case(
            request: InterfaceRequest(publicIP: address("198.19.5.5")),
            name: "eth1",
            address: "198.19.5.5",
            reason: "holds --public-ip=198.19.5.5"
        ),
        // With an --iface, --public-ip only changes what is advertised (NAT).
        Case(
            request: InterfaceRequest(interfaces: ["eth0"], publicIP: address("203.0.113.9")),
            name: "eth0",
            address: "198.18.0.2",
            reason: "--iface=eth0"
        ),
    ]

    @Test(arguments: cases)
    func choosesAsFlanneldDoes(_ row: Case) throws {
        let chosen = try Self.select(row.request)
        #expect(chosen.name == row.name)
        #expect(chosen.address == Self.address(row.address))
        #expect(chosen.reason.contains(row.reason), "\(chosen.reason)")
        let interface = Self.host.first { $0.name == row.name }!
        #expect(chosen.index == interface.index && chosen.mtu == interface.mtu)
        #expect(chosen.publicIP == (row.request.publicIP ?? chosen.address))
    }

    @Test func canReachUsesTheInterfaceHoldingTheSourceAddress() throws {
        let chosen = try Self.select(
            InterfaceRequest(canReach: Self.address("198.19.200.1")),
            reach: Self.address("198.19.5.5")
        )
        #expect(chosen.name == "eth1" && chosen.address == Self.address("198.19.5.5"))
        #expect(chosen.reason.contains("--iface-can-reach=198.19.200.1"))
    }

    @Test func summaryNamesTheChoiceTheReasonAndTheOthers() throws {
        let chosen = try Self.select(InterfaceRequest(publicIP: Self.address("198.18.0.2")))
        #expect(chosen.others == ["eth1 (198.19.0.2)"], "lo, down and address-less interfaces are not alternatives")
        #expect(
            chosen.summary
                == "using interface eth0 (index 2, address 198.18.0.2, MTU 1500): it holds --public-ip=198.18.0.2; also on this host: eth1 (198.19.0.2) (choose one with --iface)"
        )
        let natted = try Self.select(InterfaceRequest(interfaces: ["eth1"], publicIP: Self.address("203.0.113.9")))
        #expect(natted.summary.contains("advertising public IP 203.0.113.9"))
        let single = try InterfaceSelector.select(
            InterfaceRequest(),
            interfaces: Array(Self.host.prefix(2)),
            routes: Self.routes
        )
        #expect(single.others.isEmpty && !single.summary.contains("also on this host"))
    }

    struct Failure: Sendable, CustomStringConvertible {
        let request: InterfaceRequest
        let interfaces: [HostInterface]
        let routes: [HostRoute]
        let says: String
        var description: String { says }
    }

    static let failures: [Failure] = [
        Failure(
            request: InterfaceRequest(interfaces: ["wlan0", "198.18.9.9"], regexes: ["^tun"]),
            interfaces: host,
            routes: routes,
            says:
                "no interface matches --iface=wlan0 --iface=198.18.9.9 --iface-regex=^tun; this host has lo, eth0, eth1, ifb0"
        ),
        Failure(
            request: InterfaceRequest(interfaces: ["ifb0"]),
            interfaces: host,
            routes: routes,
            says: "interface ifb0 (--iface=ifb0 names it) has no IPv4 address"
        ),
        Failure(
            request: InterfaceRequest(),
            interfaces: host,
            routes: [routes[0]],
            says: "no IPv4 default route"
        ),
        Failure(
            request: InterfaceRequest(),
            interfaces: host,
            routes: [HostRoute(interface: "eth7", destination: IPv4Prefix("0.0.0.0/0")!)],
            says: "default route's interface eth7"
        ),
        Failure(
            request: InterfaceRequest(publicIP: address("203.0.113.9")),
            interfaces: host,
            routes: routes,
            says: "--public-ip=203.0.113.9 is not an address of any local interface"
        ),
        Failure(
            request: InterfaceRequest(canReach: address("198.20.0.1")),
            interfaces: host,
            routes: routes,
            says: "--iface-can-reach=198.20.0.1"
        ),
        Failure(
            request: InterfaceRequest(interfaces: ["eth0"]),
            interfaces: [HostInterface(name: "eth0", index: 2, mtu: 0, addresses: [address("198.18.0.2")])],
            routes: routes,
            says: "reports MTU 0"
        ),
        Failure(
            request: InterfaceRequest(regexes: ["(("]),
            interfaces: host,
            routes: routes,
            says: "is not a regular expression"
        ),
    ]

    @Test(arguments: failures)
    func refusesWithOneActionableLine(_ row: Failure) {
        do {
            let chosen = try InterfaceSelector.select(
                row.request,
                interfaces: row.interfaces,
                routes: row.routes,
                reachSource: nil
            )
            Issue.record("chose \(chosen.name)")
        } catch {
            #expect(error.description.contains(row.says), "\(error)")
            #expect(!error.description.contains("\n"))
        }
    }

    @Test func linkLocalAddressesComeLast() {
        let interface = HostInterface(
            name: "eth1",
            index: 3,
            mtu: 1500,
            addresses: [Self.address("169.254.1.1"), Self.address("198.19.0.2")]
        )
        #expect(interface.preferredAddress == Self.address("198.19.0.2"))
        let onlyLinkLocal = HostInterface(name: "eth2", index: 4, mtu: 1500, addresses: [Self.address("169.254.1.1")])
        #expect(onlyLinkLocal.preferredAddress == Self.address("169.254.1.1"))
    }

    /// /proc/net/route as this machine printed it (x86-64: each word is the network-order
    /// address read as a little-endian integer), plus a down route and junk lines.
    @Test func parsesProcNetRoute() {
        let text = """
            Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT                                                       
            eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0                                                                               
            eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0                                                                               
            veth1\t000012C6\t00000000\t0001\t0\t0\t0\t0000FEFF\t0\t0\t0
            veth2\t000013C6\t010012C6\t0002\t0\t0\t0\t0000FFFF\t0\t0\t0
            veth3\t000013C6\t00000000\t0001\t0\t0\t0\t00FF00FF\t0\t0\t0
            garbage line
            veth4\tZZ\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0

            """
        let routes = HostRoute.parseTable(text)
        #expect(
            routes == [
                HostRoute(interface: "eth0", destination: IPv4Prefix("0.0.0.0/0")!, gateway: Self.address("192.0.2.1")),
                HostRoute(interface: "eth0", destination: IPv4Prefix("192.0.2.0/24")!),
                HostRoute(interface: "veth1", destination: IPv4Prefix("198.18.0.0/15")!),
            ],
            "the route without RTF_UP and the non-contiguous mask are dropped"
        )
    }
}
