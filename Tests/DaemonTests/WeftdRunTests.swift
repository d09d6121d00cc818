import Addressing
import Config
import ControlPlane
import Engine
import Etcd
import EtcdSubnets
import HostGateway
import Logging
import Routes
import Synchronization
import Testing

@testable import Daemon

/// The pieces of weftd's run that decide what is logged: one line per distinct problem, route
/// changes, config verdicts, the counters line at stop.
@Suite struct WeftdRunTests {
    /// A logger whose lines ("<level> <message>") land in `lines`.
    final class Capture: Sendable {
        let lines = Mutex<[String]>([])
        var logger: Logger {
            Logger(label: "test") { _ in Handler(capture: self) }
        }
        var all: [String] { lines.withLock { $0 } }

        struct Handler: Logging.LogHandler {
            let capture: Capture
            var metadata: Logger.Metadata = [:]
            var logLevel: Logger.Level = .trace
            subscript(metadataKey key: String) -> Logger.Metadata.Value? {
                get { metadata[key] }
                set { metadata[key] = newValue }
            }
            func log(event: LogEvent) {
                capture.lines.withLock { $0.append("\(event.level) \(event.message)") }
            }
        }
    }

    @Test func rebuildsAreImmediateThenBackOffUntilADataplaneSettles() {
        var pacing = WeftdRunner.RebuildPacing()
        let start = ContinuousClock.now
        #expect(pacing.next(now: start) == .zero, "the first rebuild starts at once")
        let second = pacing.next(now: start + .seconds(2))
        #expect(second >= .milliseconds(500) && second <= .seconds(1), "\(second)")
        var waits: [Duration] = []
        for step in 3...10 { waits.append(pacing.next(now: start + .seconds(step))) }
        #expect(waits.allSatisfy { $0 <= .seconds(30) } && waits.last! >= .seconds(15), "capped at 30 s: \(waits)")
        #expect(pacing.next(now: start + .seconds(80)) == .zero, "a dataplane that ran a minute resets the backoff")
    }

    @Test func aProblemIsLoggedOnceUntilItChangesOrClears() {
        let capture = Capture()
        let problems = ProblemLog(logger: capture.logger)
        #expect(problems.report(kind: "etcd unreachable", "etcd down (attempt 1)"))
        #expect(!problems.report(kind: "etcd unreachable", "etcd down (attempt 2)"))
        #expect(problems.report(kind: "config missing", "no config"))
        #expect(problems.report(kind: "etcd unreachable", "etcd down (attempt 3)"))
        problems.clear()
        #expect(problems.report(kind: "etcd unreachable", "etcd down (attempt 4)"))
        #expect(
            capture.all == [
                "warning etcd down (attempt 1)", "warning no config", "warning etcd down (attempt 3)",
                "warning etcd down (attempt 4)",
            ]
        )
    }

    @Test func etcdBeingAwayIsOneProblemEachConfigErrorItsOwn() {
        let refused = LeaseError(
            .etcd(
                EtcdError(
                    operation: "get",
                    endpoint: "http://198.18.0.254:2379",
                    reason: .unreachable(attempts: 3, lastError: "connection refused")
                )
            )
        )
        let reset = LeaseError(
            .etcd(
                EtcdError(
                    operation: "range",
                    endpoint: "http://198.18.0.253:2379",
                    reason: .unreachable(attempts: 1, lastError: "connection reset")
                )
            )
        )
        let slow = LeaseError(
            .etcd(EtcdError(operation: "get", endpoint: "http://198.18.0.254:2379", reason: .timedOut(seconds: 5)))
        )
        #expect(refused.problem == reset.problem)
        #expect(refused.problem == slow.problem)
        let missing = LeaseError(.configMissing(key: "/coreos.com/network/config"))
        let tooLong = LeaseError(
            .configInvalid(
                key: "/coreos.com/network/config",
                ConfigError(source: "config", field: "SubnetLen", problem: "SubnetLen 33 is larger than 30")
            )
        )
        let badJSON = LeaseError(
            .configInvalid(
                key: "/coreos.com/network/config",
                ConfigError(source: "config", field: "", problem: "invalid JSON at line 1")
            )
        )
        #expect(Set([missing, tooLong, badJSON, refused].map(\.problem)).count == 4)
    }

    @Test func thePortFilterFollowsEachPeerOnceAndSaysWhatChanged() {
        let feed = PeerAddressFeed()
        let seen = Mutex<[PeerAddresses]>([])
        let a = IPv4Address(198, 18, 0, 2)
        let b = IPv4Address(198, 18, 0, 3)
        let route = { (subnet: String, publicIP: IPv4Address) in
            Route(subnet: IPv4Prefix(subnet)!, nextHop: NextHop(publicIP: publicIP, port: 8472, backend: .vxlan))
        }
        feed.publish([route("10.244.2.0/24", a)])  // nobody follows yet: dropped
        feed.follow { peers in seen.withLock { $0.append(peers) } }
        feed.publish([route("10.244.2.0/24", a), route("10.244.3.0/24", b), route("10.244.4.0/24", b)])
        feed.publish([])
        // A dual-stack publication: each PublicIPv6 once; a lease without one adds none.
        let a6 = IPv6Address("2001:db8::2")!
        let ipv6Peer = { (subnet: String, publicIPv6: IPv6Address?) in
            IPv6Peer(
                subnet: IPv6Prefix(subnet)!,
                nextHop: NextHop(publicIP: a, port: 8472, backend: .vxlan),
                publicIPv6: publicIPv6,
                vtepMAC: nil
            )
        }
        feed.publish(
            [route("10.244.2.0/24", a)],
            ipv6: [ipv6Peer("fc00:0:0:2::/64", a6), ipv6Peer("fc00:0:0:5::/64", a6), ipv6Peer("fc00:0:0:6::/64", nil)]
        )
        #expect(
            seen.withLock { $0 } == [
                PeerAddresses(ipv4: [a, b]), PeerAddresses(ipv4: []), PeerAddresses(ipv4: [a], ipv6: [a6]),
            ],
            "one address per peer, however many subnets it routes"
        )

        #expect(
            LeaseTrafficRules.describePeers(port: 8472, before: nil, after: [a])
                == "UDP 8472 open to 1 peer(s) only (table ip weft set peers)"
        )
        #expect(
            LeaseTrafficRules.describePeers(port: 8285, before: [a], after: [b, IPv4Address(198, 18, 0, 10)])
                == "UDP 8285 open to 2 peer(s) only; added 198.18.0.3, 198.18.0.10; removed 198.18.0.2"
        )
        #expect(
            LeaseTrafficRules.describePeers(port: 8472, before: nil, after: [a6])
                == "UDP 8472 over IPv6 open to 1 peer(s) only (table ip6 weft set peers)"
        )
        #expect(
            LeaseTrafficRules.describePeers(port: 8472, before: [a6], after: [IPv6Address("2001:db8::3")!])
                == "UDP 8472 over IPv6 open to 1 peer(s) only; added 2001:db8::3; removed 2001:db8::2"
        )
    }

    @Test func hostGatewayRefusesAPublicIPTheInterfaceDoesNotHold() throws {
        let interface = IPv4Address(198, 18, 0, 1)
        #expect(WeftdRunner.hostGatewayRefusal(publicIP: interface, interfaceAddress: interface) == nil)
        let natted = IPv4Address(198, 19, 0, 7)
        let refusal = try #require(WeftdRunner.hostGatewayRefusal(publicIP: natted, interfaceAddress: interface))
        // flannel's words, so operators searching for them find this line, then both addresses and the fix.
        #expect(refusal.contains("differs from interface IP"))
        #expect(refusal.contains("meaning that probably you're on a NAT, which is not supported by host-gw backend"))
        #expect(refusal.contains("198.19.0.7") && refusal.contains("198.18.0.1"))
        #expect(refusal.contains("--public-ip") && refusal.contains("vxlan"))
        #expect(!refusal.contains("\n"))
    }

    @Test func hostGatewayRefusesAPublicIPv6TheInterfaceDoesNotHold() throws {
        let interface = try #require(IPv6Address("2001:db8::1"))
        #expect(WeftdRunner.hostGatewayRefusal(publicIP: interface, interfaceAddress: interface) == nil)
        let natted = try #require(IPv6Address("2001:db8::99"))
        let refusal = try #require(WeftdRunner.hostGatewayRefusal(publicIP: natted, interfaceAddress: interface))
        #expect(refusal.contains("your PublicIPv6 2001:db8::99 differs from interface IP 2001:db8::1"))
        #expect(refusal.contains("--public-ipv6") && !refusal.contains("--public-ip "))
    }

    /// eth0 with 198.18.0.1 and no IPv6 address.
    static let eth0 = ExternalInterface(
        name: "eth0",
        index: 2,
        mtu: 1500,
        address: IPv4Address(198, 18, 0, 1),
        publicIP: IPv4Address(198, 18, 0, 1),
        reason: "test",
        others: []
    )

    /// flanneld stops when a dual-stack network meets an interface without any IPv6 address.
    @Test func aDualStackNetworkNeedsAnIPv6AddressOnTheInterface() throws {
        let dualStack = try NetworkConfig.parse(
            #"{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"host-gw"}}"#
        )
        let ipv4Only = try NetworkConfig.parse(#"{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}"#)
        var interface = Self.eth0
        let refusal = try #require(WeftdRunner.ipv6Refusal(dualStack, interface: interface, vxlanDataplane: .weft))
        #expect(refusal.contains("EnableIPv6") && refusal.contains("fc00::/48") && refusal.contains("eth0"))
        #expect(refusal.contains("--iface") && refusal.contains("set EnableIPv6 false") && !refusal.contains("\n"))
        #expect(WeftdRunner.ipv6Refusal(ipv4Only, interface: interface, vxlanDataplane: .weft) == nil)
        interface.ipv6Address = IPv6Address("2001:db8::1")
        #expect(WeftdRunner.ipv6Refusal(dualStack, interface: interface, vxlanDataplane: .weft) == nil)
        // vxlan's IPv6 overlay crosses the IPv6 underlay on either dataplane (flannel-v6.<VNI>, or
        // the engine's IPv6 socket); without an IPv6 address it is refused like any other.
        let vxlan = try NetworkConfig.parse(
            #"{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"vxlan"}}"#
        )
        for dataplane in [DaemonOptions.VXLANDataplane.weft, .kernel] {
            #expect(WeftdRunner.ipv6Refusal(vxlan, interface: interface, vxlanDataplane: dataplane) == nil)
        }
        interface.ipv6Address = nil
        #expect(WeftdRunner.ipv6Refusal(vxlan, interface: interface, vxlanDataplane: .weft) != nil)
    }

    /// An IPv6-only network runs where flanneld runs one (host-gw, vxlan's flannel-v6.<VNI>), with
    /// etcd or in Kubernetes mode alike; the engine carries IPv4 overlays and says so in one line.
    @Test func anIPv6OnlyNetworkRunsOnHostGatewayAndTheKernelsVXLAN() throws {
        func ipv6Only(_ type: String) throws -> NetworkConfig {
            try NetworkConfig.parse(
                #"{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"\#(type)"}}"#
            )
        }
        var interface = Self.eth0
        interface.ipv6Address = IPv6Address("2001:db8::1")
        #expect(WeftdRunner.ipv6Refusal(try ipv6Only("host-gw"), interface: interface, vxlanDataplane: .weft) == nil)
        #expect(WeftdRunner.ipv6Refusal(try ipv6Only("vxlan"), interface: interface, vxlanDataplane: .kernel) == nil)
        let refusals = [
            WeftdRunner.ipv6Refusal(try ipv6Only("udp"), interface: interface, vxlanDataplane: .weft),
            WeftdRunner.ipv6Refusal(try ipv6Only("vxlan"), interface: interface, vxlanDataplane: .weft),
        ]
        for (refusal, fix) in zip(refusals, ["host-gw or vxlan", "--vxlan-dataplane=kernel"]) {
            let line = try #require(refusal)
            #expect(line.contains("IPv6-only") && line.contains(fix) && !line.contains("\n"), "\(line)")
        }
        // Without an IPv6 address on the interface an IPv6-only network cannot run at all.
        interface.ipv6Address = nil
        let missing = try #require(
            WeftdRunner.ipv6Refusal(try ipv6Only("host-gw"), interface: interface, vxlanDataplane: .weft)
        )
        #expect(missing.contains("no usable IPv6 address"), "\(missing)")
    }

    /// What an IPv6-only vxlan lease publishes: flannel-v6.<VNI>'s BackendV6Data and no BackendData,
    /// as flanneld (which makes no flannel.<VNI> then).
    @Test func anIPv6OnlyVXLANLeasePublishesBackendV6DataAlone() throws {
        let config = try NetworkConfig.parse(
            #"{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"vxlan"}}"#
        )
        var interface = Self.eth0
        interface.ipv6Address = IPv6Address("2001:db8::1")
        interface.publicIPv6 = IPv6Address("2001:db8::1")
        let identity = WeftdRunner.Identity(backend: .vxlan, vni: 1, vtepMAC: MACAddress("0a:00:00:00:00:01")!)
        let attributes = WeftdRunner.leaseAttributes(identity, interface: interface, config: config)
        #expect(attributes.backendData == nil)
        #expect(attributes.publicIP == .any, "flanneld sets PublicIP only with EnableIPv4")
        #expect(try attributes.vxlanV6Data().vtepMAC == VTEPIdentity.ipv6MAC(from: MACAddress("0a:00:00:00:00:01")!))
        #expect(attributes.publicIPv6 == "2001:db8::1")
    }

    /// Before the watcher's first publication the keeper knows no wanted routes: a resync then
    /// would remove the previous run's routes, which still carry traffic, and report weftd ready.
    @Test func aResyncBeforeTheFirstPublicationReleasesNothing() async throws {
        // Only dumps the table: no route lies in 198.19.255.0/24, so even a reconcile removes nothing.
        let network = try #require(IPv4Prefix("198.19.255.0/24"))
        for publishes in [false, true] {
            let routes = try HostGatewayRoutes(
                interfaceIndex: 1,
                address: IPv4Address(127, 0, 0, 1),
                prefixLength: 8,
                network: network
            )
            let first = FirstPublication()
            let keeper = KernelRouteKeeper(routes: routes, logger: Capture().logger, reconciled: first)
            if publishes { keeper.reconcile([]) }
            keeper.resync()
            #expect(first.hasFired == publishes, "publishes: \(publishes)")
            if publishes { #expect(await first.wait(), "a fired one releases its waiter") }
        }
    }

    @Test func theVTEPMACFileSitsBesideSubnetEnv() {
        #expect(VTEPIdentity.path(subnetFile: "/run/flannel/subnet.env") == "/run/flannel/subnet.vtep-mac")
        #expect(VTEPIdentity.path(subnetFile: "/run/weft/lease") == "/run/weft/lease.vtep-mac")
    }

    @Test func routeChangesAreLoggedAsAddedAndRemoved() throws {
        let capture = Capture()
        let log = RouteLog(logger: capture.logger)
        func route(_ subnet: String, _ ip: String) throws -> Route {
            Route(
                subnet: try #require(IPv4Prefix(subnet)),
                nextHop: NextHop(publicIP: try #require(IPv4Address(ip)), port: 8285, backend: .udp)
            )
        }
        log.record([try route("10.244.7.0/24", "198.18.0.2"), try route("10.244.3.0/24", "198.18.0.3")])
        log.record([try route("10.244.7.0/24", "198.18.0.2"), try route("10.244.3.0/24", "198.18.0.3")])
        // 3 moves to another host, 7 leaves, 9 arrives.
        log.record([try route("10.244.3.0/24", "198.18.0.4"), try route("10.244.9.0/24", "198.18.0.5")])
        #expect(
            capture.all == [
                "info route added 10.244.3.0/24 via 198.18.0.3:8285 udp",
                "info route added 10.244.7.0/24 via 198.18.0.2:8285 udp",
                "info route removed 10.244.7.0/24 (was via 198.18.0.2)",
                "info route added 10.244.3.0/24 via 198.18.0.4:8285 udp",
                "info route added 10.244.9.0/24 via 198.18.0.5:8285 udp",
            ]
        )
    }

    @Test func configVerdictsAgainstTheRunningConfig() throws {
        let running = try NetworkConfig.parse(#"{"Network":"10.244.0.0/16","SubnetLen":24,"Backend":{"Type":"udp"}}"#)
        let key = "/coreos.com/network/config"
        func kv(_ value: String) -> KeyValue {
            KeyValue(key: key, value: value, createRevision: 2, modRevision: 9, version: 3, lease: nil)
        }
        typealias Verdict = ConfigMonitor.Verdict
        // The same config written differently (defaults spelled out, keys in another case) still matches.
        #expect(
            Verdict(
                EtcdSubnetManager.reading(
                    kv(#"{"network":"10.244.0.0/16","Backend":{"Type":"UDP","Port":8285}}"#),
                    key: key
                ),
                running: running
            ) == .matches
        )
        #expect(
            Verdict(
                EtcdSubnetManager.reading(kv(#"{"Network":"10.244.0.0/16","SubnetLen":26}"#), key: key),
                running: running
            )
                == .changed(
                    "SubnetLen: 24 → 26, SubnetMin: 10.244.1.0 → 10.244.0.64, SubnetMax: 10.244.255.0 → 10.244.255.192"
                )
        )
        #expect(
            Verdict(
                EtcdSubnetManager.reading(
                    kv(#"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","DirectRouting":true}}"#),
                    key: key
                ),
                running: running
            )
                == .changed(
                    "Backend.Type: udp → vxlan, Backend.VNI: (none) → 1, Backend.Port: 8285 → 8472, Backend.DirectRouting: (none) → true"
                )
        )
        guard
            case .unusable(let garbage) = Verdict(
                EtcdSubnetManager.reading(kv("{not json"), key: key),
                running: running
            )
        else {
            Issue.record("garbage must be unusable")
            return
        }
        #expect(garbage.hasPrefix("network config at etcd key \(key) is invalid: "))
        guard case .unusable(let missing) = Verdict(EtcdSubnetManager.reading(nil, key: key), running: running) else {
            Issue.record("a deleted config must be unusable")
            return
        }
        #expect(missing.hasPrefix("network config not found at etcd key \(key)"))
    }

    @Test func theCountersLineNamesTrafficAndDrops() {
        var statistics = EngineStatistics()
        #expect(Dataplane.describe(statistics) == "no traffic; no drops")
        statistics.traffic[.wireSentPackets] = 12
        statistics.traffic[.tunReadPackets] = 14
        statistics.traffic[.icmpReplies] = 0
        statistics.drops.count(.noRoute, by: 2)
        #expect(Dataplane.describe(statistics) == "tun_read_packets=14 wire_sent_packets=12; drops: no_route=2")
    }
}
