import Addressing
import Engine
import Glibc
import Netlink
import Testing

/// Configuration arithmetic and refusals: no kernel needed (start() validates before any syscall).
struct EngineConfigurationTests {
    let network = IPv4Prefix(IPv4Address(10, 244, 0, 0), length: 16)
    let subnet = IPv4Prefix(IPv4Address(10, 244, 1, 0), length: 24)

    func configuration(_ change: (inout EngineConfiguration) -> Void = { _ in }) -> EngineConfiguration {
        var configuration = EngineConfiguration(
            network: network,
            localSubnet: subnet,
            publicIP: IPv4Address(198, 18, 0, 1)
        )
        change(&configuration)
        return configuration
    }

    @Test func defaultsAreFlannelsUDPBackend() {
        let defaults = configuration()
        #expect(defaults.tunName == "flannel0")
        #expect(defaults.port == 8285)
        #expect(defaults.subnetLength == 24)
        #expect(defaults.engine == .auto)
        #expect(defaults.offloads == false)
        #expect(defaults.busyPoll == .zero)
        // flannel: TUN MTU = external MTU − 28 (udp); vxlan devices get − 50.
        #expect(defaults.tunMTU == 1472)
        #expect(configuration { $0.backend = .vxlan }.tunMTU == 1450)
        #expect(configuration { $0.underlayMTU = 9001 }.tunMTU == 8973)
    }

    /// The TUN's setup comes from the same fields the engine runs with, its MTU from `tunMTU`.
    @Test func theLinkIsTheTUNsNameMTUSubnetsAndNetworks() {
        let vxlan = configuration {
            $0.tunName = "flannel.1"
            $0.backend = .vxlan
        }.link
        #expect(vxlan.name == "flannel.1")
        #expect(vxlan.mtu == 1450)
        #expect(vxlan.network == network && vxlan.subnet == subnet)
        #expect(vxlan.ipv6 == nil)

        let ipv6Network = IPv6Prefix("fc00::/48")!
        let ipv6Subnet = IPv6Prefix("fc00:0:0:1::/64")!
        let dualStack = configuration {
            $0.ipv6Network = ipv6Network
            $0.ipv6Subnet = ipv6Subnet
        }.link
        #expect(dualStack.ipv6?.network == ipv6Network && dualStack.ipv6?.subnet == ipv6Subnet)
        // Half an IPv6 configuration (refused by start) puts nothing IPv6 on the TUN.
        #expect(configuration { $0.ipv6Subnet = ipv6Subnet }.link.ipv6 == nil)
    }

    struct Refusal: Sendable, CustomTestStringConvertible {
        let expected: String
        let change: @Sendable (inout EngineConfiguration) -> Void
        init(_ expected: String, _ change: @escaping @Sendable (inout EngineConfiguration) -> Void) {
            self.expected = expected
            self.change = change
        }
        var testDescription: String { expected }
    }

    static let refusals = [
        Refusal("workers 0: run at least 1") { $0.workers = 0 },
        Refusal("batch size 0: use 1 to 1024") { $0.batchSize = 0 },
        Refusal("batch size 1025: use 1 to 1024") { $0.batchSize = 1025 },
        Refusal("underlay MTU 95: leaves a TUN MTU below 68 (IPv4's minimum)") { $0.underlayMTU = 95 },
        Refusal("backend host-gw: forwards in the kernel, it needs no engine") { $0.backend = .hostGateway },
        Refusal("offloads with engine mmsg: only the uring engine has them; use --engine uring") {
            $0.offloads = true
            $0.engine = .mmsg
        },
        Refusal("busy poll 100001 µs: use 0 (off) to 100000 µs") { $0.busyPoll = .microseconds(100_001) },
        Refusal("busy poll -1 µs: use 0 (off) to 100000 µs") { $0.busyPoll = .microseconds(-1) },
        Refusal("subnet 10.245.1.0/24 lies outside the network 10.244.0.0/16") {
            $0.localSubnet = IPv4Prefix(IPv4Address(10, 245, 1, 0), length: 24)
        },
        Refusal(
            "VTEP MAC 00:00:00:00:00:00: give the VTEP a unicast MAC (flannel picks a random locally administered one)"
        ) {
            $0.backend = .vxlan
        },
        Refusal(
            "VTEP MAC 01:00:5e:00:00:01: give the VTEP a unicast MAC (flannel picks a random locally administered one)"
        ) {
            $0.backend = .vxlan
            $0.vtepMAC = MACAddress(0x0100_5E00_0001)
        },
        Refusal("VNI 16777216: a VXLAN VNI has 24 bits, use 0 to 16777215") {
            $0.backend = .vxlan
            $0.vtepMAC = MACAddress(0x0200_C612_0001)
            $0.vni = 1 << 24
        },
        Refusal("source ports 257: use 0 (send from port 8472) to 256") {
            $0.backend = .vxlan
            $0.vtepMAC = MACAddress(0x0200_C612_0001)
            $0.port = 8472
            $0.sourcePortCount = 257
        },
        Refusal("IPv6 subnet fc00:0:0:1::/64 alone: give the IPv6 network and this host's IPv6 subnet together") {
            $0.ipv6Subnet = IPv6Prefix("fc00:0:0:1::/64")!
        },
        Refusal("IPv6 subnet fc01:0:0:1::/64 lies outside the IPv6 network fc00::/48") {
            $0.ipv6Network = IPv6Prefix("fc00::/48")!
            $0.ipv6Subnet = IPv6Prefix("fc01:0:0:1::/64")!
        },
        Refusal("underlay MTU 1300: leaves a TUN MTU of 1272, below IPv6's minimum of 1280") {
            $0.ipv6Network = IPv6Prefix("fc00::/48")!
            $0.ipv6Subnet = IPv6Prefix("fc00:0:0:1::/64")!
            $0.underlayMTU = 1300
        },
    ]

    @Test(arguments: refusals)
    func refusalsNameTheFieldAndTheFix(_ refusal: Refusal) {
        let expected = refusal.expected
        let engine = Engine(configuration: configuration(refusal.change))
        do throws(EngineError) {
            try engine.start()
            Issue.record("started with \(expected)")
            engine.stop()
        } catch {
            #expect(error.operation == "engine configuration")
            #expect(error.subject == expected)
            #expect(error.code == EINVAL)
        }
        #expect(engine.kind == nil)
    }

    @Test func underlayMTU96IsTheSmallestAccepted() {
        #expect(configuration { $0.underlayMTU = 96 }.tunMTU == 68)
    }
}
