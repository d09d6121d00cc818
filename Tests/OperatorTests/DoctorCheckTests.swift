import Addressing
import Config
import Operator
import Testing

@Suite struct DoctorCheckTests {
    /// A healthy udp node: every check passes.
    static func healthy() throws -> DoctorFacts {
        var facts = DoctorFacts()
        facts.endpoints = [.init(endpoint: "http://198.18.0.254:2379")]
        facts.config = .valid(
            key: "/coreos.com/network/config",
            try NetworkConfig.parse(#"{"Network":"10.244.0.0/16","Backend":{"Type":"udp"}}"#)
        )
        facts.subnetFile = .parsed(
            path: "/run/flannel/subnet.env",
            SubnetEnv(
                network: IPv4Prefix("10.244.0.0/16"),
                subnet: IPv4Prefix("10.244.3.0/24"),
                mtu: 1472,
                ipMasq: false
            )
        )
        facts.ownLease = .found(
            key: "/coreos.com/network/subnets/10.244.3.0-24",
            .udp(publicIP: IPv4Address(198, 18, 0, 1)),
            expiresInSeconds: 86000
        )
        facts.interface = .success(
            .init(
                name: "eth0",
                address: "198.18.0.1",
                publicIP: "198.18.0.1",
                mtu: 1500,
                reason: "it holds --iface=198.18.0.1",
                others: ["c0 (10.244.3.1)"],
                requested: true
            )
        )
        facts.device = .init(name: "flannel0", mtu: 1472, isUp: true)
        facts.ipForward = "1"
        facts.rules = .absent
        return facts
    }

    static func check(_ checks: [DoctorCheck], _ prefix: String) -> DoctorCheck? {
        checks.first { $0.name.hasPrefix(prefix) }
    }

    @Test func healthyNodePasses() throws {
        let checks = DoctorCheck.evaluate(try Self.healthy())
        #expect(checks.allSatisfy { $0.status == .ok }, "\(checks.filter { $0.status != .ok })")
        #expect(DoctorCheck.passed(checks))
        #expect(Self.check(checks, "MTU")?.detail == "FLANNEL_MTU 1472, flannel0 MTU 1472 = eth0 MTU 1500 − 28 (udp)")
        #expect(checks.map(\.name).contains("net.ipv4.ip_forward"))
    }

    @Test func ipForwardOffFailsWithTheFix() throws {
        var facts = try Self.healthy()
        facts.ipForward = "0"
        let checks = DoctorCheck.evaluate(facts)
        let check = try #require(Self.check(checks, "net.ipv4.ip_forward"))
        #expect(check.status == .fail)
        #expect(check.fix?.contains("sysctl -w net.ipv4.ip_forward=1") == true)
        #expect(!DoctorCheck.passed(checks))
    }

    @Test func oneDeadEndpointOfTwoWarnsAllDeadFails() throws {
        var facts = try Self.healthy()
        facts.endpoints.append(.init(endpoint: "http://127.0.0.1:4001", error: "connection refused"))
        #expect(Self.check(DoctorCheck.evaluate(facts), "etcd http://127.0.0.1:4001")?.status == .warn)
        facts.endpoints[0].error = "timed out"
        facts.config = .unknown
        facts.ownLease = .unknown
        let checks = DoctorCheck.evaluate(facts)
        #expect(checks.filter { $0.name.hasPrefix("etcd ") }.allSatisfy { $0.status == .fail })
        #expect(Self.check(checks, "config")?.status == .fail)
        #expect(Self.check(checks, "lease")?.detail == "not checked: etcd did not answer")
    }

    @Test func mtuMismatchNamesBothSides() throws {
        var facts = try Self.healthy()
        facts.device = .init(name: "flannel0", mtu: 1450, isUp: true)
        let check = try #require(Self.check(DoctorCheck.evaluate(facts), "MTU"))
        #expect(check.status == .fail)
        #expect(check.detail == "flannel0 MTU 1450 but eth0 MTU 1500 − 28 (udp) is 1472")
    }

    @Test func vxlanOverheadAndBackendMTU() throws {
        var facts = try Self.healthy()
        facts.config = .valid(
            key: "k",
            try NetworkConfig.parse(#"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","MTU":1400}}"#)
        )
        facts.ownLease = .found(
            key: "l",
            .vxlan(publicIP: IPv4Address(198, 18, 0, 1), data: .init(vni: 1, vtepMAC: MACAddress(0x02_00_00_00_00_01))),
            expiresInSeconds: 5
        )
        facts.subnetFile = .parsed(
            path: "p",
            SubnetEnv(
                network: IPv4Prefix("10.244.0.0/16"),
                subnet: IPv4Prefix("10.244.3.0/24"),
                mtu: 1350,
                ipMasq: false
            )
        )
        facts.device = .init(name: "flannel0", mtu: 1350, isUp: true)
        let check = try #require(Self.check(DoctorCheck.evaluate(facts), "MTU"))
        #expect(check.status == .ok, "\(check)")
        #expect(check.detail.hasSuffix("= Backend.MTU 1400 − 50 (vxlan)"))
    }

    @Test func leaseHeldByAnotherHostOrMissing() throws {
        var facts = try Self.healthy()
        facts.ownLease = .found(key: "l", .udp(publicIP: IPv4Address(198, 18, 0, 9)), expiresInSeconds: 10)
        #expect(
            Self.check(DoctorCheck.evaluate(facts), "lease")?.detail
                == "PublicIP 198.18.0.9 is not this host's 198.18.0.1"
        )
        facts.ownLease = .missing(key: "l")
        #expect(Self.check(DoctorCheck.evaluate(facts), "lease")?.status == .fail)
    }

    @Test func subnetEnvOutsideTheNetworkFails() throws {
        var facts = try Self.healthy()
        facts.subnetFile = .parsed(
            path: "p",
            SubnetEnv(
                network: IPv4Prefix("10.200.0.0/16"),
                subnet: IPv4Prefix("10.200.3.0/24"),
                mtu: 1472,
                ipMasq: false
            )
        )
        let check = try #require(Self.check(DoctorCheck.evaluate(facts), "subnet.env"))
        #expect(check.status == .fail)
        #expect(check.detail == "FLANNEL_NETWORK 10.200.0.0/16 differs from the config's Network 10.244.0.0/16")
        facts.subnetFile = .missing(path: "/run/flannel/subnet.env")
        #expect(Self.check(DoctorCheck.evaluate(facts), "subnet.env")?.status == .fail)
    }

    @Test func multiNICHostWithoutIfaceWarnsAndSuggestsIt() throws {
        var facts = try Self.healthy()
        facts.interface = .success(
            .init(
                name: "eth0",
                address: "198.18.0.1",
                publicIP: "198.18.0.1",
                mtu: 1500,
                reason: "it carries the default route",
                others: ["eth1 (198.19.0.1)"],
                requested: false
            )
        )
        let check = try #require(Self.check(DoctorCheck.evaluate(facts), "interface"))
        #expect(check.status == .warn)
        #expect(check.detail.contains("also on this host: eth1 (198.19.0.1)"))
        #expect(check.fix?.contains("--iface=eth0") == true)
        facts.interface = .failure(InterfaceProblem("no interface named eth7"))
        #expect(Self.check(DoctorCheck.evaluate(facts), "interface")?.status == .fail)
    }

    @Test func masqueradeRulesOnlyWhenIPMasq() throws {
        var facts = try Self.healthy()
        facts.subnetFile = .parsed(
            path: "p",
            SubnetEnv(
                network: IPv4Prefix("10.244.0.0/16"),
                subnet: IPv4Prefix("10.244.3.0/24"),
                mtu: 1472,
                ipMasq: true
            )
        )
        facts.rules = .absent
        #expect(Self.check(DoctorCheck.evaluate(facts), "masquerade")?.status == .fail)
        facts.rules = .table("table ip weft {\n\tchain postrouting {\n\t}\n}\n")
        #expect(Self.check(DoctorCheck.evaluate(facts), "masquerade")?.detail == "table ip weft lacks chain forward")
        facts.rules = .table("table ip weft {\n\tchain postrouting {\n\t}\n\tchain forward {\n\t}\n}\n")
        #expect(Self.check(DoctorCheck.evaluate(facts), "masquerade")?.status == .ok)
    }

    @Test func flanneldLeftoverRulesWarnWithTheirRemoval() throws {
        var facts = try Self.healthy()
        #expect(Self.check(DoctorCheck.evaluate(facts), "flanneld's rules")?.status == .ok)
        facts.flannelLeftovers = .found(["table ip flannel-ipv4", "chain ip nat FLANNEL-POSTRTG"])
        let checks = DoctorCheck.evaluate(facts)
        let check = try #require(Self.check(checks, "flanneld's rules"))
        #expect(check.status == .warn)
        #expect(check.detail.contains("table ip flannel-ipv4, chain ip nat FLANNEL-POSTRTG"))
        #expect(check.fix?.contains("nft delete table ip flannel-ipv4") == true)
        #expect(check.fix?.contains("iptables-save | grep FLANNEL") == true)
        // A warning: the node works, doctor still passes.
        #expect(DoctorCheck.passed(checks))
        facts.flannelLeftovers = .found(["chain ip filter FLANNEL-FWD"])
        #expect(Self.check(DoctorCheck.evaluate(facts), "flanneld's rules")?.fix?.contains("nft delete") == false)
        facts.flannelLeftovers = .unavailable("nft is not installed")
        #expect(Self.check(DoctorCheck.evaluate(facts), "flanneld's rules")?.status == .warn)
    }

    /// The port filter: no check unless weftd answered; a warning when weftd runs without it, a
    /// failure when the rule is gone or a peer is missing from the set, a warning for addresses
    /// the set holds that no peer has, and the drops when all is in place.
    @Test func thePortFilterAgainstThePeers() throws {
        var facts = try Self.healthy()
        #expect(Self.check(DoctorCheck.evaluate(facts), "port filter") == nil)
        facts.portFilter = .init(port: 8472, droppedPackets: 12, droppedBytes: 960, ruleInstalled: true)
        #expect(
            Self.check(DoctorCheck.evaluate(facts), "port filter")
                == DoctorCheck(
                    "port filter",
                    .ok,
                    "UDP 8472 open to the peers only; 12 datagram(s) (960 bytes) from elsewhere dropped"
                )
        )
        facts.portFilter = .init(port: 8472, droppedPackets: nil, ruleInstalled: false)
        let off = try #require(Self.check(DoctorCheck.evaluate(facts), "port filter"))
        #expect(off.status == .warn && off.fix?.contains("--port-filter=false") == true, "\(off)")
        #expect(DoctorCheck.passed(DoctorCheck.evaluate(facts)))
        facts.portFilter = .init(port: 8285, droppedPackets: 0, ruleInstalled: false)
        let noRule = try #require(Self.check(DoctorCheck.evaluate(facts), "port filter"))
        #expect(noRule.status == .fail && noRule.detail.contains("no input rule for it"), "\(noRule)")
        let missing = (1...5).map { "198.18.0.\($0)" }
        facts.portFilter = .init(port: 8472, droppedPackets: 0, ruleInstalled: true, missing: missing)
        let lacking = try #require(Self.check(DoctorCheck.evaluate(facts), "port filter"))
        #expect(
            lacking.status == .fail && lacking.detail.contains("lacks 5 peer(s)")
                && lacking.detail.contains("198.18.0.3")
                && !lacking.detail.contains("198.18.0.4") && lacking.detail.hasSuffix("and 2 more"),
            "\(lacking)"
        )
        #expect(!DoctorCheck.passed(DoctorCheck.evaluate(facts)))
        facts.portFilter = .init(port: 8472, droppedPackets: 0, ruleInstalled: true, stale: ["198.18.0.9"])
        let stale = try #require(Self.check(DoctorCheck.evaluate(facts), "port filter"))
        #expect(stale.status == .warn && stale.detail.contains("holds 1 address(es) no peer has"), "\(stale)")
    }

    /// The IPv6 underlay's filter (dual-stack kernel vxlan) is a check of its own, naming table ip6 weft.
    @Test func thePortFilterOverTheIPv6Underlay() throws {
        var facts = try Self.healthy()
        facts.portFilter = .init(port: 8472, droppedPackets: 0, ruleInstalled: true)
        #expect(Self.check(DoctorCheck.evaluate(facts), "port filter (IPv6 underlay)") == nil, "not asked")
        facts.ipv6PortFilter = .init(
            port: 8472,
            droppedPackets: 4,
            droppedBytes: 400,
            ruleInstalled: true,
            table: "table ip6 weft"
        )
        #expect(
            Self.check(DoctorCheck.evaluate(facts), "port filter (IPv6 underlay)")
                == DoctorCheck(
                    "port filter (IPv6 underlay)",
                    .ok,
                    "UDP 8472 open to the peers only; 4 datagram(s) (400 bytes) from elsewhere dropped"
                )
        )
        facts.ipv6PortFilter = .init(port: 8472, droppedPackets: 0, ruleInstalled: false, table: "table ip6 weft")
        let noRule = try #require(Self.check(DoctorCheck.evaluate(facts), "port filter (IPv6 underlay)"))
        #expect(noRule.status == .fail && noRule.detail.contains("table ip6 weft has no input rule"), "\(noRule)")
        facts.ipv6PortFilter = .init(port: 8472, droppedPackets: 0, ruleInstalled: true, missing: ["2001:db8::2"])
        let lacking = try #require(Self.check(DoctorCheck.evaluate(facts), "port filter (IPv6 underlay)"))
        #expect(lacking.status == .fail && lacking.detail.contains("2001:db8::2"), "\(lacking)")
        #expect(Self.check(DoctorCheck.evaluate(facts), "port filter")?.status == .ok, "the IPv4 check stands apart")
    }

    /// The running weftd's dataplane: named when it answers, the kernel's entries judged against
    /// the lease table, a warning when its socket does not answer, no check when not asked.
    @Test func theRunningDataplaneAndTheKernelsEntries() throws {
        var facts = try Self.healthy()
        #expect(Self.check(DoctorCheck.evaluate(facts), "dataplane") == nil)
        facts.dataplane = .running(.init(dataplane: "weft", backend: "udp", peers: 2))
        #expect(
            Self.check(DoctorCheck.evaluate(facts), "dataplane")
                == DoctorCheck("dataplane", .ok, "udp, weft dataplane, 2 peer(s)")
        )
        facts.dataplane = .running(
            .init(dataplane: "kernel", backend: "vxlan", peers: 2, kernelDevice: "flannel.1", kernelEntries: 6)
        )
        #expect(
            Self.check(DoctorCheck.evaluate(facts), "dataplane")?.detail
                == "vxlan, kernel dataplane on flannel.1: 6 neighbour, FDB and route entries for 2 peer(s), in step with the lease table"
        )
        facts.dataplane = .running(
            .init(
                dataplane: "kernel",
                backend: "vxlan",
                peers: 1,
                directPeers: 1,
                kernelDevice: "flannel.1",
                kernelEntries: 3
            )
        )
        #expect(
            Self.check(DoctorCheck.evaluate(facts), "dataplane")?.detail
                == "vxlan, kernel dataplane on flannel.1: 3 neighbour, FDB and route entries for 1 peer(s), in step with the lease table; 1 more routed directly (DirectRouting)"
        )
        let differences = (1...5).map {
            "missing neighbour 10.244.\($0).0 dev flannel.1 lladdr 0e:00:00:00:00:0\($0) PERMANENT"
        }
        facts.dataplane = .running(
            .init(
                dataplane: "kernel",
                backend: "vxlan",
                peers: 5,
                kernelDevice: "flannel.1",
                kernelEntries: 10,
                kernelDifferences: differences
            )
        )
        let differing = try #require(Self.check(DoctorCheck.evaluate(facts), "dataplane"))
        #expect(
            differing.status == .warn && differing.detail.contains("5 entr(ies) differ")
                && differing.detail.contains("10.244.3.0")
                && !differing.detail.contains("10.244.4.0") && differing.detail.hasSuffix("and 2 more"),
            "\(differing)"
        )
        facts.dataplane = .running(
            .init(
                dataplane: "kernel",
                backend: "vxlan",
                peers: 0,
                kernelDevice: "flannel.1",
                kernelError: "RTM_GETNEIGH dump: ..."
            )
        )
        #expect(Self.check(DoctorCheck.evaluate(facts), "dataplane")?.status == .fail)
        facts.dataplane = .unreachable(socket: "/run/flannel/weftd.sock", problem: "connect: No such file or directory")
        let away = try #require(Self.check(DoctorCheck.evaluate(facts), "dataplane"))
        #expect(away.status == .warn && away.fix?.contains("--status-socket") == true)
        #expect(DoctorCheck.passed(DoctorCheck.evaluate(facts)), "a weftd not running is not doctor's failure here")
    }

    /// The kernel vxlan device is weftd's default vxlan dataplane (and flanneld's), the TUN its engine's: both are fine.
    @Test func aKernelVXLANDeviceAndATUNAreBothWeftds() throws {
        var facts = try Self.healthy()
        facts.device = .init(name: "flannel.1", mtu: 1450, isUp: true, kind: "vxlan")
        let check = try #require(Self.check(DoctorCheck.evaluate(facts), "overlay device"))
        #expect(
            check.status == .ok
                && check.detail == "a kernel vxlan device (--vxlan-dataplane=kernel, or flanneld's), up, MTU 1450"
        )
        facts.device?.kind = "tun"
        #expect(Self.check(DoctorCheck.evaluate(facts), "overlay device")?.detail == "weftd's TUN, up, MTU 1450")
        facts.device?.isUp = false
        #expect(Self.check(DoctorCheck.evaluate(facts), "overlay device")?.status == .fail)
    }

    @Test func deviceMissingOrDownFailsExceptForHostGateway() throws {
        var facts = try Self.healthy()
        facts.device = .init(name: "flannel0", mtu: 1472, isUp: false)
        #expect(Self.check(DoctorCheck.evaluate(facts), "overlay device")?.detail == "down")
        facts.device = nil
        #expect(Self.check(DoctorCheck.evaluate(facts), "overlay device")?.detail == "flannel0 does not exist")
        facts.config = .valid(
            key: "k",
            try NetworkConfig.parse(#"{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}"#)
        )
        facts.ownLease = .found(key: "l", .hostGateway(publicIP: IPv4Address(198, 18, 0, 1)), expiresInSeconds: 10)
        facts.subnetFile = .parsed(
            path: "p",
            SubnetEnv(
                network: IPv4Prefix("10.244.0.0/16"),
                subnet: IPv4Prefix("10.244.3.0/24"),
                mtu: 1500,
                ipMasq: false
            )
        )
        let checks = DoctorCheck.evaluate(facts)
        #expect(checks.allSatisfy { $0.status == .ok }, "\(checks.filter { $0.status != .ok })")
    }
}

@Suite struct DoctorPathTests {
    static func with(_ paths: [PathProbe]?) throws -> [DoctorCheck] {
        var facts = try DoctorCheckTests.healthy()
        facts.paths = paths
        return DoctorCheck.evaluate(facts).filter { $0.name.hasPrefix("path MTU") }
    }

    @Test func aPathThatCarriesTheOverlayPassesAndNoProbeSaysNothing() throws {
        #expect(try Self.with(nil).isEmpty)
        #expect(try Self.with([]).map(\.status) == [.ok])
        let checks = try Self.with([PathProbe(peer: "198.18.0.2", needed: 1500, largest: 1500)])
        #expect(checks == [DoctorCheck("path MTU to 198.18.0.2", .ok, "1500-byte packets with DF get through")])
    }

    /// The path drops what the overlay sends without an ICMP error: FAIL, with the MTU that fits.
    @Test func aSilentlySmallerPathFailsAndNamesTheMTUToSet() throws {
        let checks = try Self.with([
            PathProbe(peer: "198.18.0.2", needed: 1500, largest: 1400),
            PathProbe(peer: "198.18.0.3", needed: 1500, largest: nil),
        ])
        #expect(checks.map(\.status) == [.fail, .warn])
        #expect(
            checks[0].detail
                == "packets above 1400 bytes with DF vanish without an ICMP error, but the overlay sends up to 1500 (FLANNEL_MTU 1472 + 28)"
        )
        #expect(checks[0].fix?.hasPrefix("make the pod MTU 1372: set the underlay interface MTU to 1400") == true)
        #expect(checks[1].detail.contains("no answer to ICMP echo"))
        #expect(!DoctorCheck.passed(checks))
    }
}

/// A dual-stack config adds what only its IPv6 side needs: IPv6 forwarding and subnet.env's IPv6 lines.
@Suite struct DoctorDualStackTests {
    static func dualStack(
        ipv6Subnet: String? = "fc00:0:0:3::/64",
        ipv6Network: String? = "fc00::/48"
    ) throws
        -> DoctorFacts
    {
        var facts = try DoctorCheckTests.healthy()
        facts.config = .valid(
            key: "/coreos.com/network/config",
            try NetworkConfig.parse(
                #"{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"host-gw"}}"#
            )
        )
        facts.subnetFile = .parsed(
            path: "/run/flannel/subnet.env",
            SubnetEnv(
                network: IPv4Prefix("10.244.0.0/16"),
                subnet: IPv4Prefix("10.244.3.0/24"),
                ipv6Network: ipv6Network.flatMap { IPv6Prefix($0) },
                ipv6Subnet: ipv6Subnet.flatMap { IPv6Prefix($0) },
                mtu: 1500,
                ipMasq: false
            )
        )
        facts.ipv6Forward = "1"
        return facts
    }

    @Test func ipv6ForwardingIsCheckedOnlyWithEnableIPv6() throws {
        let ipv4Only = DoctorCheck.evaluate(try DoctorCheckTests.healthy())
        #expect(DoctorCheckTests.check(ipv4Only, "net.ipv6") == nil)

        var facts = try Self.dualStack()
        #expect(DoctorCheckTests.check(DoctorCheck.evaluate(facts), "net.ipv6.conf.all.forwarding")?.status == .ok)
        facts.ipv6Forward = "0"
        let off = try #require(DoctorCheckTests.check(DoctorCheck.evaluate(facts), "net.ipv6.conf.all.forwarding"))
        #expect(off.status == .fail && off.detail.contains("IPv6 traffic"), "\(off)")
        #expect(off.fix?.contains("sysctl -w net.ipv6.conf.all.forwarding=1") == true)
        facts.ipv6Forward = nil
        let unreadable = try #require(
            DoctorCheckTests.check(DoctorCheck.evaluate(facts), "net.ipv6.conf.all.forwarding")
        )
        #expect(unreadable.status == .fail && unreadable.detail.contains("/proc/sys/net/ipv6/conf/all/forwarding"))
    }

    @Test func ipMasqNeedsTableIP6WeftToo() throws {
        var facts = try Self.dualStack()
        #expect(DoctorCheckTests.check(DoctorCheck.evaluate(facts), "IPv6 masquerade") == nil, "FLANNEL_IPMASQ false")
        if case .parsed(let path, var env) = facts.subnetFile {
            env.ipMasq = true
            facts.subnetFile = .parsed(path: path, env)
        }
        facts.rules = .table("table ip weft {\n\tchain postrouting {\n\tchain forward {\n")
        let absent = try #require(DoctorCheckTests.check(DoctorCheck.evaluate(facts), "IPv6 masquerade rules"))
        #expect(absent.status == .fail && absent.detail.contains("no table ip6 weft"), "\(absent)")
        facts.ipv6Rules = .table("table ip6 weft {\n\tchain postrouting {\n")
        let partial = try #require(DoctorCheckTests.check(DoctorCheck.evaluate(facts), "IPv6 masquerade rules"))
        #expect(partial.status == .fail && partial.detail.contains("lacks chain forward"), "\(partial)")
        facts.ipv6Rules = .table("table ip6 weft {\n\tchain postrouting {\n\tchain forward {\n")
        #expect(DoctorCheckTests.check(DoctorCheck.evaluate(facts), "IPv6 masquerade rules")?.status == .ok)
        #expect(DoctorCheckTests.check(DoctorCheck.evaluate(facts), "masquerade rules")?.status == .ok)
    }

    @Test func subnetEnvMustCarryTheIPv6LeaseInTheIPv6Network() throws {
        func subnetEnvCheck(_ facts: DoctorFacts) -> DoctorCheck? {
            DoctorCheckTests.check(DoctorCheck.evaluate(facts), "subnet.env")
        }
        #expect(subnetEnvCheck(try Self.dualStack())?.status == .ok)
        let missing = try #require(subnetEnvCheck(try Self.dualStack(ipv6Subnet: nil)))
        #expect(missing.status == .fail && missing.detail.contains("no FLANNEL_IPV6_SUBNET"), "\(missing)")
        let outside = try #require(subnetEnvCheck(try Self.dualStack(ipv6Subnet: "fd00:0:0:3::/64")))
        #expect(outside.status == .fail && outside.detail.contains("outside the config's IPv6Network"), "\(outside)")
        let other = try #require(subnetEnvCheck(try Self.dualStack(ipv6Network: "fc00:1::/48")))
        #expect(other.status == .fail && other.detail.contains("FLANNEL_IPV6_NETWORK fc00:1::/48 differs"), "\(other)")
    }
}
