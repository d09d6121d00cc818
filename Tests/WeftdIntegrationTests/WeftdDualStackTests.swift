import Foundation
import KubeTestServer
import Status
import Testing

@testable import TestSupport

extension WeftdBeds {
    /// A dual-stack host-gw network: three weftd on one bridge with IPv4 and IPv6 underlay
    /// addresses, each lease holding an IPv4 and an IPv6 subnet, and the kernel forwarding both
    /// families along the routes weftd keeps (`<IPv6Subnet> via <PublicIPv6>`, as flannel's host-gw).
    @Suite(.serialized, .enabled(if: bedUnavailable == nil, "\(bedUnavailable ?? "")"))
    struct WeftdDualStackTests {
        /// SubnetMax keeps leases below 10.244.201.0, so the subnets the test writes itself stay free.
        static let config =
            #"{"Network":"10.244.0.0/16","SubnetLen":24,"SubnetMax":"10.244.200.0","EnableIPv6":true,"IPv6Network":"fc00:0:0::/48","Backend":{"Type":"host-gw"}}"#

        static func hostIPv6(_ index: Int) -> String { "2001:db8::\(index)" }

        /// Host N's Weft IPv6 routes (proto 87), one per line.
        static func weftIPv6Routes(_ bed: Bed, _ index: Int) -> String {
            (try? bed.exec(bed.host(index), ["/usr/sbin/ip", "-6", "route", "show", "proto", "87"])) ?? ""
        }

        /// The IPv6 lease of weftd N from subnet.env: FLANNEL_IPV6_SUBNET fc00:0:0:5::1/64 → "fc00:0:0:5::".
        static func ipv6Base(_ bed: Bed, _ index: Int) -> String? {
            guard let value = bed.subnetEnv(index)["FLANNEL_IPV6_SUBNET"], value.hasSuffix("::1/64") else { return nil }
            return String(value.dropLast("1/64".count))
        }

        /// Host N: an IPv6 underlay address beside its IPv4 one, and IPv6 forwarding.
        static func addIPv6Underlay(_ bed: Bed, _ index: Int) throws {
            try bed.exec(
                bed.host(index),
                ["/usr/sbin/ip", "-6", "addr", "add", "\(hostIPv6(index))/64", "dev", "eth0", "nodad"]
            )
            try bed.exec(bed.host(index), ["/usr/sbin/sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"])
        }

        /// Container N's IPv6 side from `base` (fc00:0:0:5::): host side ::1, container ::2.
        static func addressContainerIPv6(_ bed: Bed, _ index: Int, base: String) throws {
            try bed.exec(bed.host(index), ["/usr/sbin/ip", "-6", "addr", "add", "\(base)1/64", "dev", "c0", "nodad"])
            try bed.exec(
                bed.container(index),
                ["/usr/sbin/ip", "-6", "addr", "add", "\(base)2/64", "dev", "eth0", "nodad"]
            )
            try bed.exec(
                bed.container(index),
                ["/usr/sbin/ip", "-6", "route", "replace", "default", "via", "\(base)1"]
            )
        }

        @Test(.timeLimit(.minutes(2)))
        func threeHostsRouteBothFamiliesThroughTheKernel() throws {
            let bed = try Bed(hosts: 3)
            defer { bed.tearDown() }
            try bed.startEtcd()
            try bed.putConfig(Self.config)
            for index in 1...3 { try Self.addIPv6Underlay(bed, index) }
            // Left in host 1 by a "previous run": a Weft IPv6 route no lease accounts for.
            try bed.exec(
                bed.host(1),
                [
                    "/usr/sbin/ip", "-6", "route", "add", "fc00:0:0:ff00::/64", "via", "2001:db8::40", "dev", "eth0",
                    "proto", "87",
                ]
            )

            let cluster = try bed.startReady([1, 2, 3], extra: ["--ip-masq", "--ip-blackhole-route"])
            let daemons = cluster.daemons
            var subnets = cluster.subnets
            var bases: [Int: String] = [:]
            for index in 1...3 {
                let base = try #require(Self.ipv6Base(bed, index), "\(bed.subnetEnv(index))")
                bases[index] = base
                #expect(bed.subnetEnv(index)["FLANNEL_IPV6_NETWORK"] == "fc00::/48", "\(bed.subnetEnv(index))")
                // flanneld's lease value for a dual-stack host-gw node: PublicIPv6, no backend data.
                let key = WeftdEndToEndTests.key(subnets[index]!) + "&\(base)-64"
                let value = try bed.etcdctlMust(["get", key, "--print-value-only"])
                #expect(
                    value
                        == #"{"PublicIP":"\#(bed.hostIP(index))","PublicIPv6":"\#(Self.hostIPv6(index))","BackendType":"host-gw"}"#
                        + "\n",
                    "\(key): \(value)"
                )
                try bed.addressContainer(index, subnet: subnets[index]!)
                try Self.addressContainerIPv6(bed, index, base: base)
            }
            // Ready means the first reconcile of both families is done: the stale IPv6 route is gone.
            #expect(!Self.weftIPv6Routes(bed, 1).contains("fc00:0:0:ff00::/64"), "\(Self.weftIPv6Routes(bed, 1))")
            Self.expectIPv6Routes(bed, bases)
            for index in 1...3 {
                let blackholes = try bed.exec(
                    bed.host(index),
                    ["/usr/sbin/ip", "-6", "route", "show", "type", "blackhole"]
                )
                #expect(blackholes.contains("\(bases[index]!)/64"), "host \(index): \(blackholes)")
                let table = try bed.exec(bed.host(index), ["/usr/sbin/nft", "list", "table", "ip6", "weft"])
                #expect(table.contains("fc00::/48") && table.contains("masquerade"), "host \(index): \(table)")
            }
            WeftdEndToEndTests.pingMatrix(bed, subnets, "dual-stack host-gw, IPv4")
            Self.ping6Matrix(bed, bases, "dual-stack host-gw")
            #expect(daemons[1]!.lines(containing: "host-gw: IPv6 kernel routes via eth0").count == 1)

            // The status socket and `weft routes` show the IPv6 side: our subnet, the peers' via their PublicIPv6.
            let report = try StatusClient(path: bed.statusSocket(1)).routes()
            let ipv6 = try #require(report.ipv6, "\(report)")
            #expect(ipv6.network == "fc00::/48" && ipv6.localSubnet == "\(bases[1]!)/64", "\(ipv6)")
            #expect(ipv6.routes.map(\.subnet).sorted() == ["\(bases[2]!)/64", "\(bases[3]!)/64"].sorted(), "\(ipv6)")
            #expect(Set(ipv6.routes.map(\.publicIP)) == [Self.hostIPv6(2), Self.hostIPv6(3)], "\(ipv6)")
            let table = try run([weftPath, "routes", "--socket", bed.statusSocket(1)]).output
            #expect(table.contains("IPv6: local subnet \(bases[1]!)/64 in fc00::/48"), "\(table)")
            #expect(table.contains(Self.hostIPv6(2)) && table.contains(Self.hostIPv6(3)), "\(table)")

            // A dual-stack lease without PublicIPv6 (a peer whose interface has none): its IPv4
            // subnet is routed, its IPv6 subnet refused in one line, once.
            try bed.etcdctlMust([
                "put", WeftdEndToEndTests.subnetsPrefix + "10.244.250.0-24&fc00:0:0:fa::-64",
                #"{"PublicIP":"198.18.0.250","PublicIPv6":null,"BackendType":"host-gw"}"#,
            ])
            let refusal = "refusing peer fc00:0:0:fa::/64 at -: its lease has no PublicIPv6"
            #expect(
                waitFor(.seconds(3)) { daemons[1]!.lines(containing: refusal).count == 1 } != nil,
                "\(daemons[1]!.log.suffix(1500))"
            )
            #expect(
                waitFor(.seconds(3)) { WeftdHostGatewayTests.weftRoutes(bed, 1).contains("10.244.250.0/24") } != nil
            )
            try bed.etcdctlMust(["del", WeftdEndToEndTests.subnetsPrefix + "10.244.250.0-24&fc00:0:0:fa::-64"])

            // weft doctor with weftd's flags: the dual-stack lease, subnet.env's IPv6 lines, IPv6 forwarding.
            let doctor = try bed.execResult(
                bed.host(1),
                [
                    weftPath, "doctor", "--etcd-endpoints", bed.etcdEndpoint, "--subnet-file", bed.subnetFile(1),
                    "--iface", bed.hostIP(1), "--status-socket", bed.statusSocket(1),
                ]
            )
            for name in [
                "net.ipv6.conf.all.forwarding", "subnet.env", "lease /coreos.com/network/subnets/", "dataplane",
                "IPv6 masquerade rules",
            ] {
                let line = doctor.output.split(separator: "\n").first { $0.contains(name) }
                #expect(line?.hasPrefix("ok ") == true, "\(name): \(doctor.output)")
            }

            // Host 3 leaves and its lease is deleted: the others drop both its routes.
            #expect(daemons[3]!.stop(SIGTERM) == 0)
            try bed.etcdctlMust(["del", WeftdEndToEndTests.key(subnets[3]!) + "&\(bases[3]!)-64"])
            for index in 1...2 {
                let gone = waitFor(.seconds(3), interval: .milliseconds(10)) {
                    !Self.weftIPv6Routes(bed, index).contains(bases[3]!)
                }
                #expect(
                    gone != nil,
                    "host \(index) still routes to the departed peer: \(Self.weftIPv6Routes(bed, index))"
                )
            }
            subnets[3] = nil
            bases[3] = nil
            for index in 1...2 { #expect(daemons[index]!.stop(SIGTERM) == 0) }
        }

        /// udp: the engine carries the containers' IPv6 packets over the IPv4 underlay (flannel's udp
        /// backend carries IPv4 only): the TUN holds the IPv6 subnet's /128 and the IPv6Network's
        /// route, and /v1/routes shows each IPv6 subnet via its peer's PublicIP and port.
        @Test(.timeLimit(.minutes(2)))
        func udpCarriesIPv6OverTheIPv4Underlay() throws {
            let bed = try Bed(hosts: 3)
            defer { bed.tearDown() }
            try bed.startEtcd()
            try bed.putConfig(
                #"{"Network":"10.244.0.0/16","SubnetLen":24,"EnableIPv6":true,"IPv6Network":"fc00:0:0::/48","Backend":{"Type":"udp"}}"#
            )
            for index in 1...3 { try Self.addIPv6Underlay(bed, index) }
            let (daemons, subnets) = try bed.startReady([1, 2, 3])
            var bases: [Int: String] = [:]
            for index in 1...3 {
                let base = try #require(Self.ipv6Base(bed, index), "\(bed.subnetEnv(index))")
                bases[index] = base
                #expect(bed.subnetEnv(index)["FLANNEL_MTU"] == "1472", "\(bed.subnetEnv(index))")
                let tun = try bed.exec(bed.host(index), ["/usr/sbin/ip", "-6", "addr", "show", "dev", "flannel0"])
                #expect(tun.contains("\(base)/128"), "host \(index): \(tun)")
                try bed.addressContainer(index, subnet: subnets[index]!)
                try Self.addressContainerIPv6(bed, index, base: base)
            }
            WeftdEndToEndTests.pingMatrix(bed, subnets, "dual-stack udp, IPv4")
            Self.ping6Matrix(bed, bases, "dual-stack udp")
            let ipv6 = try #require(try StatusClient(path: bed.statusSocket(1)).routes().ipv6)
            #expect(
                Set(ipv6.routes.map { "\($0.subnet) \($0.publicIP):\($0.port ?? 0)" })
                    == ["\(bases[2]!)/64 \(bed.hostIP(2)):8285", "\(bases[3]!)/64 \(bed.hostIP(3)):8285"],
                "\(ipv6)"
            )
            for index in 1...3 { #expect(daemons[index]!.stop(SIGTERM) == 0) }
        }

        /// vxlan on the kernel dataplane, as flanneld runs a dual-stack network: flannel.1 for IPv4
        /// and flannel-v6.1 over the IPv6 underlay, its VtepMAC published as BackendV6Data.
        @Test(.timeLimit(.minutes(2)))
        func vxlanRunsFlannelV6OnTheKernelDataplane() throws {
            let bed = try Bed(hosts: 3)
            defer { bed.tearDown() }
            let stranger = try Self.prepareDualStackVXLAN(bed)
            let (daemons, subnets) = try bed.startReady([1, 2, 3], vxlanDataplane: "kernel")
            var bases: [Int: String] = [:]
            for index in 1...3 {
                let base = try #require(Self.ipv6Base(bed, index), "\(bed.subnetEnv(index))")
                bases[index] = base
                let device = try bed.exec(
                    bed.host(index),
                    ["/usr/sbin/ip", "-d", "addr", "show", "dev", "flannel-v6.1"]
                )
                #expect(
                    device.contains("mtu 1430") && device.contains("local \(Self.hostIPv6(index))")
                        && device.contains("\(base)/128"),
                    "host \(index): \(device)"
                )
                let acceptRA = try bed.exec(
                    bed.host(index),
                    ["/usr/sbin/sysctl", "-n", "net.ipv6.conf.flannel-v6/1.accept_ra"]
                )
                #expect(acceptRA.trimmingCharacters(in: .whitespacesAndNewlines) == "0", "as flanneld sets it")
                let key = WeftdEndToEndTests.key(subnets[index]!) + "&\(base)-64"
                let value = try bed.etcdctlMust(["get", key, "--print-value-only"])
                #expect(value.contains(#""PublicIPv6":"\#(Self.hostIPv6(index))""#), "\(value)")
                #expect(value.contains(#""BackendV6Data":{"VNI":1,"VtepMAC":""#), "\(value)")
                try bed.addressContainer(index, subnet: subnets[index]!)
                try Self.addressContainerIPv6(bed, index, base: base)
            }
            // The port filter (on by default) covers flannel-v6.1's port: table ip6 weft's set holds
            // the peers' PublicIPv6, which the IPv6 pings below come from.
            #expect(
                waitFor(WeftdBeds.hangGuard) {
                    WeftdPortFilterTests.peers(bed, 1, family: "ip6") == [Self.hostIPv6(2), Self.hostIPv6(3)]
                } != nil,
                "host 1's IPv6 set: \(WeftdPortFilterTests.peers(bed, 1, family: "ip6") ?? [])"
            )
            WeftdEndToEndTests.pingMatrix(bed, subnets, "dual-stack vxlan, IPv4")
            Self.ping6Matrix(bed, bases, "dual-stack vxlan, flannel-v6.1")
            let ipv6 = try #require(try StatusClient(path: bed.statusSocket(1)).routes().ipv6)
            #expect(Set(ipv6.routes.map(\.publicIP)) == [Self.hostIPv6(2), Self.hostIPv6(3)], "\(ipv6)")
            #expect(ipv6.routes.allSatisfy { $0.vtepMAC != nil && $0.backend == "vxlan" }, "\(ipv6)")

            // The stranger's VXLAN datagrams to host 1 over the IPv6 underlay: dropped before
            // flannel-v6.1 and counted apart from the IPv4 filter's; the containers still reach each other.
            let client = try Self.expectStrangerDroppedOverIPv6(bed, stranger)
            #expect(try client.stats().portFilter?.packets == 0, "the IPv4 filter saw none")
            #expect(bed.metric(1, "weft_port_filter_ipv6_dropped_packets_total") == 4)
            Self.ping6Matrix(bed, bases, "dual-stack vxlan, after the stranger")
            let doctor = try bed.execResult(
                bed.host(1),
                [
                    weftPath, "doctor", "--etcd-endpoints", bed.etcdEndpoint, "--subnet-file", bed.subnetFile(1),
                    "--iface", bed.hostIP(1), "--status-socket", bed.statusSocket(1),
                ]
            )
            let check = doctor.output.split(separator: "\n").first { $0.contains("port filter (IPv6 underlay)") }
            #expect(check?.hasPrefix("ok ") == true && check?.contains("4 datagram(s)") == true, "\(doctor.output)")
            for index in 1...3 { #expect(daemons[index]!.stop(SIGTERM) == 0) }

            // DirectRouting: the hosts share one segment, so each family's peers are routed via their
            // PublicIP(v6) on eth0, past both devices, and flannel-v6.1 keeps no route for them.
            try bed.putConfig(
                #"{"Network":"10.244.0.0/16","SubnetLen":24,"EnableIPv6":true,"IPv6Network":"fc00:0:0::/48","Backend":{"Type":"vxlan","VNI":1,"DirectRouting":true}}"#
            )
            let direct = try bed.startReady([1, 2, 3], vxlanDataplane: "kernel")
            #expect(direct.subnets == subnets, "the leases are taken again")
            // A restart keeps filtering both underlays with the sets the stopped run left.
            #expect(
                !direct.daemons[1]!.lines(
                    containing: "UDP 8472 open to the 2 peer(s) (2 over the IPv6 underlay) an earlier run left"
                )
                .isEmpty,
                "\(direct.daemons[1]!.log.suffix(1500))"
            )
            Self.expectIPv6Routes(bed, bases)
            let v6Device = try bed.exec(bed.host(1), ["/usr/sbin/ip", "-6", "route", "show", "dev", "flannel-v6.1"])
            #expect(!v6Device.contains(bases[2]!) && !v6Device.contains(bases[3]!), "\(v6Device)")
            Self.ping6Matrix(bed, bases, "dual-stack vxlan with DirectRouting")
            for index in 1...3 { #expect(direct.daemons[index]!.stop(SIGTERM) == 0) }
        }

        /// vxlan on Weft's engine (--vxlan-dataplane=weft): inner IPv6 crosses the IPv6 underlay as
        /// flannel-v6.1 carries it, so two engine hosts and a kernel-dataplane host (flannel-v6.1)
        /// reach each other over IPv6. The TUN routes the IPv6Network with MTU 1430, /v1/routes
        /// shows each IPv6 subnet via its peer's PublicIPv6, and the port filter guards the
        /// engine's IPv6 socket as it guards flannel-v6.1's.
        @Test(.timeLimit(.minutes(2)))
        func vxlanCarriesIPv6OverTheIPv6UnderlayOnTheEngine() throws {
            let bed = try Bed(hosts: 3)
            defer { bed.tearDown() }
            let stranger = try Self.prepareDualStackVXLAN(bed)
            var daemons: [Int: Started] = [:]
            for index in 1...3 {
                daemons[index] = try bed.startWeftd(index, vxlanDataplane: index == 3 ? "kernel" : "weft")
            }
            let subnets = try bed.waitReady([1, 2, 3], daemons)
            var bases: [Int: String] = [:]
            for index in 1...3 {
                let base = try #require(Self.ipv6Base(bed, index), "\(bed.subnetEnv(index))")
                bases[index] = base
                try bed.addressContainer(index, subnet: subnets[index]!)
                try Self.addressContainerIPv6(bed, index, base: base)
            }
            for index in 1...2 {
                let route = try bed.exec(bed.host(index), ["/usr/sbin/ip", "-6", "route", "show", "dev", "flannel.1"])
                #expect(route.contains("fc00::/48") && route.contains("mtu 1430"), "host \(index): \(route)")
            }
            #expect(
                waitFor(WeftdBeds.hangGuard) {
                    WeftdPortFilterTests.peers(bed, 1, family: "ip6") == [Self.hostIPv6(2), Self.hostIPv6(3)]
                } != nil,
                "host 1's IPv6 set: \(WeftdPortFilterTests.peers(bed, 1, family: "ip6") ?? [])"
            )
            WeftdEndToEndTests.pingMatrix(bed, subnets, "dual-stack vxlan on the engine, IPv4")
            Self.ping6Matrix(bed, bases, "dual-stack vxlan, engine and flannel-v6.1")
            // Host 3's IPv6 packets from the engines came through flannel-v6.1: over the IPv6 underlay.
            let v6Device = try bed.exec(bed.host(3), ["/usr/sbin/ip", "-s", "link", "show", "flannel-v6.1"])
            let lines = v6Device.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            let received = lines.firstIndex { $0.hasPrefix("RX:") }.flatMap { index in
                index + 1 < lines.count ? Int(lines[index + 1].split(separator: " ")[1]) : nil
            }
            #expect((received ?? 0) >= 8, "host 3's flannel-v6.1: \(v6Device)")
            let ipv6 = try #require(try StatusClient(path: bed.statusSocket(1)).routes().ipv6)
            #expect(
                Set(ipv6.routes.map { "[\($0.publicIP)]:\($0.port ?? 0)" })
                    == ["[\(Self.hostIPv6(2))]:8472", "[\(Self.hostIPv6(3))]:8472"],
                "\(ipv6)"
            )

            // The stranger's datagrams to the engine's IPv6 socket: dropped by the port filter.
            try Self.expectStrangerDroppedOverIPv6(bed, stranger)
            Self.ping6Matrix(bed, bases, "dual-stack vxlan on the engine, after the stranger")
            for index in 1...3 { #expect(daemons[index]!.stop(SIGTERM) == 0) }

            // DirectRouting: the engines route each family's peers via their PublicIP(v6) on eth0,
            // past the TUN, as the kernel dataplane does.
            try bed.putConfig(
                #"{"Network":"10.244.0.0/16","SubnetLen":24,"EnableIPv6":true,"IPv6Network":"fc00:0:0::/48","Backend":{"Type":"vxlan","VNI":1,"DirectRouting":true}}"#
            )
            var direct: [Int: Started] = [:]
            for index in 1...3 {
                direct[index] = try bed.startWeftd(index, vxlanDataplane: index == 3 ? "kernel" : "weft")
            }
            #expect(try bed.waitReady([1, 2, 3], direct) == subnets, "the leases are taken again")
            Self.expectIPv6Routes(bed, bases)
            Self.ping6Matrix(bed, bases, "dual-stack vxlan on the engine with DirectRouting")
            for index in 1...3 { #expect(direct[index]!.stop(SIGTERM) == 0) }
        }

        /// An IPv6-only network (EnableIPv4 false), as flanneld runs one on host-gw and on vxlan's
        /// flannel-v6.<VNI>: each lease is its IPv6 subnet alone under `0.0.0.0-0&<ipv6>-<len>`,
        /// subnet.env has only the IPv6 lines, no IPv4 route or device is made, a restarted host
        /// finds its lease by PublicIPv6, and the containers reach each other over IPv6. The udp
        /// backend, which carries the IPv4 overlay, stops with the fix.
        @Test(.timeLimit(.minutes(3)))
        func anIPv6OnlyNetworkRunsOnHostGatewayAndFlannelV6() throws {
            let bed = try Bed(hosts: 3)
            defer { bed.tearDown() }
            try bed.startEtcd()
            func ipv6Only(_ backend: String) -> String {
                #"{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00:0:0::/48","Backend":{"Type":"\#(backend)"}}"#
            }
            try bed.putConfig(ipv6Only("host-gw"))
            for index in 1...3 { try Self.addIPv6Underlay(bed, index) }
            /// Starts weftd in `hosts` and waits for each to be ready with its IPv6 subnet in subnet.env.
            func startReady(_ hosts: [Int], vxlanDataplane: String = "weft") throws -> ([Int: Started], [Int: String]) {
                var daemons: [Int: Started] = [:]
                for index in hosts {
                    daemons[index] = try bed.startWeftd(index, vxlanDataplane: vxlanDataplane, extra: ["--ip-masq"])
                }
                var bases: [Int: String] = [:]
                for index in hosts {
                    let ready = waitFor(.seconds(60), interval: .milliseconds(50)) {
                        bed.readyz(index) == 200 && Self.ipv6Base(bed, index) != nil
                    }
                    try #require(ready != nil, "weftd \(index): \(daemons[index]!.log.suffix(3000))")
                    bases[index] = Self.ipv6Base(bed, index)
                }
                return (daemons, bases)
            }

            var (daemons, bases) = try startReady([1, 2, 3])
            for index in 1...3 {
                let env = bed.subnetEnv(index)
                #expect(env["FLANNEL_NETWORK"] == nil && env["FLANNEL_SUBNET"] == nil, "\(env)")
                #expect(env["FLANNEL_IPV6_NETWORK"] == "fc00::/48" && env["FLANNEL_MTU"] == "1500", "\(env)")
                let key = WeftdEndToEndTests.subnetsPrefix + "0.0.0.0-0&\(bases[index]!)-64"
                let value = try bed.etcdctlMust(["get", key, "--print-value-only"])
                #expect(
                    value
                        == #"{"PublicIP":"0.0.0.0","PublicIPv6":"\#(Self.hostIPv6(index))","BackendType":"host-gw"}"#
                        + "\n",
                    "flanneld's value, PublicIP unset: \(key): \(value)"
                )
                try Self.addressContainerIPv6(bed, index, base: bases[index]!)
                let ipv4Routes = WeftdHostGatewayTests.weftRoutes(bed, index)
                #expect(ipv4Routes.isEmpty, "host \(index) has no IPv4 overlay: \(ipv4Routes)")
                let table = try bed.exec(bed.host(index), ["/usr/sbin/nft", "list", "table", "ip6", "weft"])
                #expect(table.contains("fc00::/48") && table.contains("masquerade"), "host \(index): \(table)")
            }
            #expect(Set(bases.values).count == 3)
            Self.expectIPv6Routes(bed, bases)
            Self.ping6Matrix(bed, bases, "IPv6-only host-gw")
            #expect(
                daemons[1]!.lines(containing: "lease \(bases[1]!)/64 (").count == 1,
                "the ready line names the IPv6 subnet: \(daemons[1]!.log.suffix(1500))"
            )

            // A restart takes the same subnet again: the lease is found by its PublicIPv6.
            #expect(daemons[1]!.stop(SIGTERM) == 0)
            let restarted = try startReady([1])
            daemons[1] = restarted.0[1]
            #expect(restarted.1[1] == bases[1], "\(daemons[1]!.log.suffix(1500))")
            for index in 1...3 { #expect(daemons[index]!.stop(SIGTERM) == 0) }

            // vxlan: flannel-v6.1 alone, its MAC published as BackendV6Data and no BackendData.
            try bed.putConfig(ipv6Only("vxlan"))
            let hostGatewayBases = bases
            (daemons, bases) = try startReady([1, 2, 3], vxlanDataplane: "kernel")
            #expect(bases == hostGatewayBases, "each host keeps its IPv6 lease across the backend change")
            for index in 1...3 {
                #expect(bed.subnetEnv(index)["FLANNEL_MTU"] == "1430", "\(bed.subnetEnv(index))")
                let links = try bed.exec(bed.host(index), ["/usr/sbin/ip", "-o", "link", "show"])
                #expect(links.contains("flannel-v6.1") && !links.contains("flannel.1"), "host \(index): \(links)")
                let key = WeftdEndToEndTests.subnetsPrefix + "0.0.0.0-0&\(bases[index]!)-64"
                let value = try bed.etcdctlMust(["get", key, "--print-value-only"])
                #expect(
                    value.contains(#""BackendV6Data":{"VNI":1,"VtepMAC":""#) && !value.contains("\"BackendData\""),
                    "\(key): \(value)"
                )
                if bases[index] != hostGatewayBases[index] {
                    try Self.addressContainerIPv6(bed, index, base: bases[index]!)
                }
            }
            Self.ping6Matrix(bed, bases, "IPv6-only vxlan, flannel-v6.1")
            let ipv6 = try #require(try StatusClient(path: bed.statusSocket(1)).routes().ipv6)
            #expect(Set(ipv6.routes.map(\.publicIP)) == [Self.hostIPv6(2), Self.hostIPv6(3)], "\(ipv6)")
            let table = try run([weftPath, "routes", "--socket", bed.statusSocket(1)]).output
            #expect(table.contains("no IPv4 overlay (IPv6-only)") && !table.contains("0.0.0.0"), "\(table)")
            #expect(table.contains("IPv6: local subnet \(bases[1]!)/64 in fc00::/48"), "\(table)")
            for index in 1...3 { #expect(daemons[index]!.stop(SIGTERM) == 0) }

            try bed.putConfig(ipv6Only("udp"))
            let udp = try bed.startWeftd(1)
            #expect(waitFor(.seconds(20), interval: .milliseconds(50)) { !udp.isRunning } != nil)
            #expect(udp.lines(containing: "cannot use the udp backend").count == 1, "\(udp.log.suffix(1500))")
        }

        /// IPv6 interop with a flanneld-style node: host 2 runs no weftd but a flannel-v6.1 made with
        /// iproute2 as flanneld makes it, its lease written as flanneld writes it (BackendV6Data);
        /// weftd on host 1 programs its entries for host 2 from that lease, host 2 gets its entries
        /// for host 1 from weftd's lease, and the containers ping each other over IPv6.
        @Test(.timeLimit(.minutes(2)))
        func weftdAndAFlanneldStyleFlannelV6NodeReachEachOther() throws {
            let bed = try Bed(hosts: 2)
            defer { bed.tearDown() }
            try bed.startEtcd()
            try bed.putConfig(
                #"{"Network":"10.244.0.0/16","SubnetLen":24,"SubnetMax":"10.244.200.0","EnableIPv6":true,"IPv6Network":"fc00:0:0::/48","Backend":{"Type":"vxlan","VNI":1}}"#
            )
            for index in 1...2 { try Self.addIPv6Underlay(bed, index) }
            let flannel = bed.host(2)
            let (flannelBase, flannelMAC6) = ("fc00:0:0:dc::", "0e:00:5e:00:00:06")
            try bed.etcdctlMust([
                "put", WeftdEndToEndTests.subnetsPrefix + "10.244.220.0-24&fc00:0:0:dc::-64",
                #"{"PublicIP":"198.18.0.2","PublicIPv6":"2001:db8::2","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:5e:00:00:04"},"BackendV6Data":{"VNI":1,"VtepMAC":"\#(flannelMAC6)"}}"#,
            ])
            for command in [
                [
                    "link", "add", "flannel-v6.1", "address", flannelMAC6, "type", "vxlan", "id", "1", "local",
                    Self.hostIPv6(2), "dev", "eth0", "dstport", "8472", "nolearning",
                ],
                ["link", "set", "flannel-v6.1", "mtu", "1430", "up"],
                ["-6", "addr", "add", "\(flannelBase)/128", "dev", "flannel-v6.1", "nodad"],
            ] {
                try bed.exec(flannel, ["/usr/sbin/ip"] + command)
            }
            let (daemons, _) = try bed.startReady([1], vxlanDataplane: "kernel")
            let weftBase = try #require(Self.ipv6Base(bed, 1), "\(bed.subnetEnv(1))")
            // The flanneld side's entries for weftd's lease, from the BackendV6Data weftd published.
            let value = try bed.etcdctlMust([
                "get", WeftdEndToEndTests.subnetsPrefix, "--prefix=true", "--print-value-only",
            ])
            let published = try #require(
                value.split(separator: "\n").first { $0.contains(#""PublicIP":"198.18.0.1""#) },
                "\(value)"
            )
            let mac6 = try #require(
                published.split(separator: "\"").drop { $0 != "BackendV6Data" }.dropFirst(6).first,
                "\(published)"
            )
            for command in [
                [
                    "-6", "neigh", "replace", weftBase, "lladdr", String(mac6), "dev", "flannel-v6.1", "nud",
                    "permanent",
                ],
                ["-6", "route", "add", "\(weftBase)/64", "via", weftBase, "dev", "flannel-v6.1", "onlink"],
            ] {
                try bed.exec(flannel, ["/usr/sbin/ip"] + command)
            }
            try bed.exec(
                flannel,
                [
                    "/usr/sbin/bridge", "fdb", "append", String(mac6), "dev", "flannel-v6.1", "dst", Self.hostIPv6(1),
                    "self", "permanent",
                ]
            )
            // weftd's entries for the flanneld node, from its lease.
            let neighbours = try bed.exec(bed.host(1), ["/usr/sbin/ip", "-6", "neigh", "show", "dev", "flannel-v6.1"])
            #expect(neighbours.contains("\(flannelBase) lladdr \(flannelMAC6) PERMANENT"), "\(neighbours)")
            try Self.addressContainerIPv6(bed, 1, base: weftBase)
            try Self.addressContainerIPv6(bed, 2, base: flannelBase)
            Self.ping6Matrix(bed, [1: weftBase, 2: flannelBase], "weftd ↔ flanneld-style flannel-v6.1")
            #expect(daemons[1]!.stop(SIGTERM) == 0)
        }

        /// A rebuilt dual-stack dataplane releases what the one before held: deleting flannel-v6.1
        /// makes weftd build both devices, their keepers and netlink sockets again, and after five
        /// rebuilds it holds as many descriptors as after the first start.
        @Test(.timeLimit(.minutes(2)))
        func rebuildsOfTheKernelDataplaneLeaveNoDescriptorsBehind() throws {
            let bed = try Bed(hosts: 2)
            defer { bed.tearDown() }
            try bed.startEtcd()
            try bed.putConfig(
                #"{"Network":"10.244.0.0/16","SubnetLen":24,"EnableIPv6":true,"IPv6Network":"fc00:0:0::/48","Backend":{"Type":"vxlan","VNI":1}}"#
            )
            for index in 1...2 { try Self.addIPv6Underlay(bed, index) }
            let (daemons, _) = try bed.startReady([1, 2], vxlanDataplane: "kernel")
            let weftd = daemons[1]!
            func descriptors() throws -> Int {
                try #require(ProcessResources(pid: weftd.pid), "weftd exited: \(weftd.log.suffix(2000))").descriptors
            }
            let before = try descriptors()
            for rebuild in 1...5 {
                try bed.exec(bed.host(1), ["/usr/sbin/ip", "link", "del", "flannel-v6.1"])
                let rebuilt = waitFor(.seconds(30), interval: .milliseconds(50)) {
                    weftd.lines(containing: "rebuilt").count == rebuild && bed.readyz(1) == 200
                }
                try #require(rebuilt != nil, "rebuild \(rebuild): \(weftd.log.suffix(2000))")
            }
            let after = try descriptors()
            print("weftd descriptors before 5 rebuilds of the dual-stack kernel dataplane: \(before), after: \(after)")
            #expect(after <= before, "\(after - before) descriptor(s) per 5 rebuilds")
            #expect(
                try bed.exec(bed.host(1), ["/usr/sbin/ip", "link", "show", "flannel-v6.1"]).contains("flannel-v6.1")
            )
        }

        /// Kubernetes mode: each Node's two podCIDRs are its lease, weftd annotates its PublicIPv6
        /// and backend-v6-data (the flannel-v6 device's VNI and MAC, "null" for host-gw) as
        /// kube-flannel does, and the IPv6
        /// podCIDRs are routed via the peers' PublicIPv6 (host-gw) or through flannel-v6.1 (vxlan).
        @Test(.timeLimit(.minutes(2)), arguments: ["host-gw", "vxlan"])
        func kubernetesNodesWithTwoPodCIDRs(backend: String) throws {
            let kube = try KubeBed(hosts: 3, backend: backend)
            defer { kube.tearDown() }
            let bed = kube.bed
            try
                #"{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"\#(backend)"}}"#
                .write(toFile: kube.netConf, atomically: true, encoding: .utf8)
            let nodes = (1...3).map { index in
                Fixtures.node(
                    bed.nodeName(index),
                    podCIDRs: ["10.244.\(index).0/24", "fc00:0:0:\(index)::/64"],
                    internalIP: bed.hostIP(index)
                )
            }
            try kube.startServer(nodes: nodes)
            for index in 1...3 { try Self.addIPv6Underlay(bed, index) }
            // On the underlay beside the hosts, holding no lease: a stranger over either family.
            let stranger = try bed.addOutsideHost(WeftdPortFilterTests.strangerIP)
            try bed.exec(stranger, ["/usr/sbin/ip", "-6", "addr", "add", "2001:db8::c8/64", "dev", "eth0", "nodad"])
            let (daemons, subnets) = try bed.startReady([1, 2, 3], vxlanDataplane: "kernel")
            var bases: [Int: String] = [:]
            for index in 1...3 {
                bases[index] = "fc00:0:0:\(index)::"
                #expect(Self.ipv6Base(bed, index) == bases[index], "\(bed.subnetEnv(index))")
                let annotations = try kube.annotations(of: bed.nodeName(index))
                #expect(
                    annotations[KubeBed.annotationPrefix + "public-ipv6"] == Self.hostIPv6(index),
                    "\(annotations)"
                )
                let v6Data = annotations[KubeBed.annotationPrefix + "backend-v6-data"]
                #expect(
                    backend == "vxlan" ? v6Data?.hasPrefix(#"{"VNI":1,"VtepMAC":""#) == true : v6Data == "null",
                    "\(annotations)"
                )
                try bed.addressContainer(index, subnet: subnets[index]!)
                try Self.addressContainerIPv6(bed, index, base: bases[index]!)
            }
            if backend == "host-gw" { Self.expectIPv6Routes(bed, bases) }
            Self.ping6Matrix(bed, bases, "kube dual-stack \(backend)")
            for index in 1...3 { #expect(daemons[index]!.stop(SIGTERM) == 0) }
        }

        /// A dual-stack network on a host whose interface has no IPv6 address at all: weftd stops with one
        /// line naming the fix, as flanneld does, before taking a lease.
        @Test(.timeLimit(.minutes(1)))
        func anInterfaceWithoutIPv6StopsStartup() throws {
            let bed = try Bed(hosts: 1)
            defer { bed.tearDown() }
            try bed.startEtcd()
            try bed.putConfig(Self.config)
            // Not even a link-local address, which flanneld (and weftd) would take as a last resort.
            try bed.exec(bed.host(1), ["/usr/sbin/sysctl", "-qw", "net.ipv6.conf.eth0.disable_ipv6=1"])
            let weftd = try bed.startWeftd(1)
            let exited = waitFor(.seconds(20), interval: .milliseconds(50)) { !weftd.isRunning }
            #expect(exited != nil, "\(weftd.log.suffix(1500))")
            #expect(
                weftd.lines(containing: "has EnableIPv6").count == 1
                    && weftd.lines(containing: "add one to eth0").count == 1,
                "\(weftd.log.suffix(1500))"
            )
            let keys = try bed.etcdctlMust(["get", WeftdEndToEndTests.subnetsPrefix, "--prefix=true", "--keys-only"])
            #expect(keys.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "no lease taken: \(keys)")
        }

        /// Etcd with a dual-stack vxlan config, the hosts' IPv6 underlay addresses, and beside them on
        /// the underlay, holding no lease, a stranger over either family (returned).
        static func prepareDualStackVXLAN(_ bed: Bed) throws -> String {
            try bed.startEtcd()
            try bed.putConfig(
                #"{"Network":"10.244.0.0/16","SubnetLen":24,"EnableIPv6":true,"IPv6Network":"fc00:0:0::/48","Backend":{"Type":"vxlan","VNI":1}}"#
            )
            for index in 1...bed.hostCount { try addIPv6Underlay(bed, index) }
            let stranger = try bed.addOutsideHost(WeftdPortFilterTests.strangerIP)
            try bed.exec(stranger, ["/usr/sbin/ip", "-6", "addr", "add", "2001:db8::c8/64", "dev", "eth0", "nodad"])
            return stranger
        }

        /// The stranger sends 4 VXLAN datagrams to host 1 over the IPv6 underlay: the port filter's
        /// IPv6 set drops them (/v1/stats). Returns host 1's status client.
        @discardableResult
        static func expectStrangerDroppedOverIPv6(_ bed: Bed, _ stranger: String) throws -> StatusClient {
            let datagram = WeftdPortFilterTests.vxlanFrame(source: "10.244.99.2", destination: "10.244.98.2")
            try WeftdPortFilterTests.send(4, datagram, from: stranger, to: hostIPv6(1), port: 8472)
            let dropped = StatsReport.Dropped(packets: 4, bytes: UInt64(4 * (48 + datagram.count)))
            let client = StatusClient(path: bed.statusSocket(1))
            #expect(
                waitFor(WeftdBeds.hangGuard, interval: .milliseconds(100)) {
                    (try? client.stats())?.portFilterIPv6 == dropped
                } != nil,
                "/v1/stats: \(String(describing: try? client.stats()))"
            )
            return client
        }

        /// Waits until no address in the hosts and containers is still tentative: until DAD has
        /// passed for the link-local addresses, the kernel holds back neighbour solicitations, and a
        /// first ping can wait two seconds for its answer.
        static func waitForSettledIPv6(_ bed: Bed, _ hosts: [Int]) {
            let namespaces = hosts.flatMap { [bed.host($0), bed.container($0)] }
            let settled = waitFor(.seconds(5), interval: .milliseconds(50)) {
                namespaces.allSatisfy {
                    ((try? bed.exec($0, ["/usr/sbin/ip", "-6", "addr", "show", "tentative"])) ?? "x").isEmpty
                }
            }
            #expect(settled != nil, "IPv6 addresses still tentative after 5 s")
        }

        static func ping6Matrix(_ bed: Bed, _ bases: [Int: String], _ label: String) {
            waitForSettledIPv6(bed, bases.keys.sorted())
            WeftdEndToEndTests.pingEach(bed, bases.mapValues { "\($0)2" }, label)
        }

        /// Waits until each host routes every other host's IPv6 subnet (`bases`) via its PublicIPv6.
        static func expectIPv6Routes(_ bed: Bed, _ bases: [Int: String]) {
            for index in bases.keys.sorted() {
                for other in bases.keys.sorted() where other != index {
                    let line = "\(bases[other]!)/64 via \(hostIPv6(other)) dev eth0"
                    #expect(
                        waitFor(.seconds(3)) { weftIPv6Routes(bed, index).contains(line) } != nil,
                        "host \(index): \(weftIPv6Routes(bed, index))"
                    )
                }
            }
        }
    }
}
