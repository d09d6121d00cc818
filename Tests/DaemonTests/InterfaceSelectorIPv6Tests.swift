import Addressing
import Config
import Testing

@testable import Daemon

/// The IPv6 side of flanneld's interface choice (ipmatch.LookupExtIface) on a made-up dual-stack
/// host, and what a dual-stack lease advertises from it.
@Suite struct InterfaceSelectorIPv6Tests {
    static func v4(_ text: String) -> IPv4Address { IPv4Address(text)! }
    static func v6(_ text: String) -> IPv6Address { IPv6Address(text)! }

    // eth0 carries the default route and, in the kernel's order, a link-local, a multicast-free
    // global address and a second global one; eth1 has IPv6 only besides its IPv4.
    static let host: [HostInterface] = [
        HostInterface(
            name: "lo",
            index: 1,
            mtu: 65536,
            addresses: [v4("127.0.0.1")],
            isLoopback: true,
            ipv6Addresses: [v6("::1")]
        ),
        HostInterface(
            name: "eth0",
            index: 2,
            mtu: 1500,
            addresses: [v4("198.18.0.2")],
            ipv6Addresses: [v6("fe80::2"), v6("2001:db8::2"), v6("2001:db8::22")]
        ),
        HostInterface(
            name: "eth1",
            index: 3,
            mtu: 9000,
            addresses: [v4("198.19.0.2")],
            ipv6Addresses: [v6("fe80::3"), v6("2001:db8:1::3")]
        ),
        HostInterface(name: "eth2", index: 4, mtu: 1500, addresses: [v4("198.20.0.2")], ipv6Addresses: [v6("fe80::4")]),
    ]
    static let routes = [
        HostRoute(interface: "eth0", destination: IPv4Prefix("0.0.0.0/0")!, gateway: v4("198.18.0.1"))
    ]

    static func select(_ request: InterfaceRequest, reach: IPv6Address? = nil) throws -> ExternalInterface {
        try InterfaceSelector.select(request, interfaces: host, routes: routes, reachSourceIPv6: reach)
    }

    @Test func canReachAnIPv6TargetChoosesTheInterfaceAndTheIPv6AddressHoldingTheSource() throws {
        let request = InterfaceRequest(canReachIPv6: Self.v6("2001:db8:1:ff::1"))
        let chosen = try Self.select(request, reach: Self.v6("2001:db8:1::3"))
        #expect(chosen.name == "eth1" && chosen.address == Self.v4("198.19.0.2"))
        #expect(chosen.ipv6Address == Self.v6("2001:db8:1::3") && chosen.publicIPv6 == Self.v6("2001:db8:1::3"))
        #expect(chosen.reason.contains("--iface-can-reach=2001:db8:1:ff::1 leaves through it from 2001:db8:1::3"))
        // A source no interface holds (no route, say) is refused, naming the target.
        #expect(
            throws: InterfaceSelectionError(
                "--iface-can-reach=2001:db8:1:ff::1: no local interface holds the source address toward it; check the routes or use --iface"
            )
        ) { try Self.select(request, reach: Self.v6("2001:db8:9::9")) }
    }

    @Test func theChosenInterfacesFirstGlobalAddressIsItsIPv6Address() throws {
        let chosen = try Self.select(InterfaceRequest())
        #expect(chosen.name == "eth0")
        #expect(chosen.ipv6Address == Self.v6("2001:db8::2"))
        #expect(chosen.publicIPv6 == Self.v6("2001:db8::2"))
        #expect(chosen.summary.contains("address 198.18.0.2, IPv6 address 2001:db8::2, MTU 1500"))
        // Link-local only: that one, as flanneld's ordering leaves it last but still usable.
        #expect(try Self.select(InterfaceRequest(interfaces: ["eth2"])).ipv6Address == Self.v6("fe80::4"))
        #expect(try Self.select(InterfaceRequest(interfaces: ["lo"])).ipv6Address == nil)
    }

    @Test func ifaceByIPv6AddressSelectsThatInterfaceAndThatAddress() throws {
        let chosen = try Self.select(InterfaceRequest(interfaces: ["2001:db8::22"]))
        #expect(chosen.name == "eth0" && chosen.address == Self.v4("198.18.0.2"))
        #expect(chosen.ipv6Address == Self.v6("2001:db8::22"))
        #expect(chosen.reason.contains("--iface=2001:db8::22 is its IPv6 address"))
        // An IPv6 address no interface holds is passed over like a missing name.
        let next = try Self.select(InterfaceRequest(interfaces: ["2001:db8::99", "eth1"]))
        #expect(next.name == "eth1" && next.ipv6Address == Self.v6("2001:db8:1::3"))
    }

    @Test func ifaceRegexMatchesIPv6AddressesAfterIPv4OnesAndNamesTheMatch() throws {
        let byV6 = try Self.select(InterfaceRequest(regexes: ["^2001:db8:1::"]))
        #expect(byV6.name == "eth1" && byV6.address == Self.v4("198.19.0.2"))
        #expect(byV6.ipv6Address == Self.v6("2001:db8:1::3"))
        #expect(byV6.reason.contains("matches its IPv6 address 2001:db8:1::3"))
        // Matched by IPv4 address: the IPv6 address the same regex matches, else the first usable.
        let byV4 = try Self.select(InterfaceRequest(regexes: ["^198\\.18\\."]))
        #expect(byV4.name == "eth0" && byV4.ipv6Address == Self.v6("2001:db8::2"))
        let both = try Self.select(InterfaceRequest(regexes: ["2$"]))
        #expect(both.name == "eth0" && both.address == Self.v4("198.18.0.2"))
        #expect(both.ipv6Address == Self.v6("fe80::2"), "the first IPv6 address the regex matches")
    }

    @Test func publicIPv6IsAdvertisedAndAloneFindsItsInterface() throws {
        let natted = try Self.select(InterfaceRequest(interfaces: ["eth0"], publicIPv6: Self.v6("2001:db8:ff::9")))
        #expect(natted.ipv6Address == Self.v6("2001:db8::2") && natted.publicIPv6 == Self.v6("2001:db8:ff::9"))
        #expect(natted.summary.contains("advertising public IPv6 2001:db8:ff::9"))
        let found = try Self.select(InterfaceRequest(publicIPv6: Self.v6("2001:db8:1::3")))
        #expect(found.name == "eth1" && found.reason.contains("it holds --public-ipv6=2001:db8:1::3"))
        #expect(found.publicIP == Self.v4("198.19.0.2"))
        // --public-ip wins the search, as flanneld looks up by it first.
        let both = try Self.select(
            InterfaceRequest(publicIP: Self.v4("198.18.0.2"), publicIPv6: Self.v6("2001:db8:1::3"))
        )
        #expect(both.name == "eth0" && both.publicIPv6 == Self.v6("2001:db8:1::3"))
        #expect(throws: InterfaceSelectionError.self) {
            try Self.select(InterfaceRequest(publicIPv6: Self.v6("2001:db8:ff::9")))
        }
    }

    @Test func aDualStackLeaseCarriesPublicIPv6AndAnIPv4OneDoesNot() throws {
        let interface = try Self.select(InterfaceRequest(publicIPv6: Self.v6("2001:db8:1::3")))
        let identity = WeftdRunner.Identity(backend: .hostGateway, vni: 1, vtepMAC: MACAddress(0))
        let ipv4Only = try NetworkConfig.parse(#"{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}"#)
        let dualStack = try NetworkConfig.parse(
            #"{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"host-gw"}}"#
        )
        #expect(
            WeftdRunner.leaseAttributes(identity, interface: interface, config: dualStack).json
                == #"{"PublicIP":"198.19.0.2","PublicIPv6":"2001:db8:1::3","BackendType":"host-gw"}"#
        )
        #expect(
            WeftdRunner.leaseAttributes(identity, interface: interface, config: ipv4Only).json
                == #"{"PublicIP":"198.19.0.2","PublicIPv6":null,"BackendType":"host-gw"}"#
        )
    }
}
