import Foundation
import Glibc
import Status
import TestSupport
import Testing

extension WeftdBeds {
    /// vxlan's `DirectRouting: true`, for each vxlan dataplane: hosts 1 and 2 share the bed's
    /// bridge, host 3 sits on 198.18.1.0/24 behind a router namespace. Host 1 routes host 2's
    /// subnet by a kernel route via 198.18.0.2 and host 3's through flannel.1; containers reach
    /// each other both ways; a lease whose PublicIP moves onto the shared segment and back is
    /// re-routed each time, and so is a peer whose reachability changes with no lease change.
    @Suite(.serialized, .enabled(if: bedUnavailable == nil, "\(bedUnavailable ?? "")"))
    struct WeftdDirectRoutingTests {
        static let config =
            #"{"Network":"10.244.0.0/16","SubnetLen":24,"SubnetMax":"10.244.190.0","Backend":{"Type":"vxlan","DirectRouting":true}}"#
        static let routedHost = 3
        static let routedIP = "198.18.1.3"
        /// The router's leg on the bridge and on host 3's segment.
        static let routerOnBridge = "198.18.0.253", routerOnSegment = "198.18.1.254"
        /// A lease with no host behind it, for the PublicIP move (outside SubnetMax: nobody takes it).
        static let movingSubnet = "10.244.199.0/24", movingMAC = "0e:00:5e:00:01:99"

        /// The router namespace (forwarding between the bridge and 198.18.1.0/24, no redirects, so
        /// a route through it stays a route through it) and host `index` with its container behind it.
        static func addHostBehindRouter(_ bed: Bed, _ index: Int) throws {
            let ip = "/usr/sbin/ip"
            let router = "\(bed.tag)r"
            let host = bed.host(index)
            let container = bed.container(index)
            for name in [router, host, container] {
                try must([ip, "netns", "add", name])
                bed.namespaces.append(name)
                try bed.exec(name, [ip, "link", "set", "lo", "up"])
            }
            try must([
                ip, "link", "add", "r0", "netns", router, "type", "veth", "peer", "name", "hr", "netns", bed.underlay,
            ])
            try bed.exec(bed.underlay, [ip, "link", "set", "hr", "master", "br0", "up"])
            try must([ip, "link", "add", "r1", "netns", router, "type", "veth", "peer", "name", "eth0", "netns", host])
            for command in [
                [ip, "addr", "add", "\(routerOnBridge)/24", "dev", "r0"], [ip, "link", "set", "r0", "up"],
                [ip, "addr", "add", "\(routerOnSegment)/24", "dev", "r1"], [ip, "link", "set", "r1", "up"],
                ["/usr/sbin/sysctl", "-qw", "net.ipv4.ip_forward=1"],
                ["/usr/sbin/sysctl", "-qw", "net.ipv4.conf.all.send_redirects=0"],
                ["/usr/sbin/sysctl", "-qw", "net.ipv4.conf.r0.send_redirects=0"],
            ] {
                try bed.exec(router, command)
            }
            for command in [
                [ip, "addr", "add", "\(routedIP)/24", "dev", "eth0"], [ip, "link", "set", "eth0", "up"],
                [ip, "route", "add", "default", "via", routerOnSegment],
                ["/usr/sbin/sysctl", "-qw", "net.ipv4.ip_forward=1"],
            ] {
                try bed.exec(host, command)
            }
            try must([
                ip, "link", "add", "c0", "netns", host, "type", "veth", "peer", "name", "eth0", "netns", container,
            ])
            try bed.exec(host, [ip, "link", "set", "c0", "up"])
            try bed.exec(container, [ip, "link", "set", "eth0", "up"])
            // etcd's namespace and the bridge's hosts reach 198.18.1.0/24 through the router.
            for namespace in [bed.underlay] + (1..<index).map(bed.host) {
                try bed.exec(namespace, [ip, "route", "add", "198.18.1.0/24", "via", routerOnBridge])
            }
            bed.hostCount = max(bed.hostCount, index)
        }

        static func show(_ bed: Bed, _ index: Int, _ command: [String]) -> String {
            (try? bed.exec(bed.host(index), command)) ?? ""
        }

        /// The main table's route for exactly `subnet` in host `index`, as `ip route` prints it ("" when none).
        static func route(_ bed: Bed, _ index: Int, _ subnet: String) -> String {
            show(bed, index, ["/usr/sbin/ip", "route", "show", "exact", subnet]).trimmingCharacters(
                in: .whitespacesAndNewlines
            )
        }

        /// The device the kernel of host `index` sends a packet for `address` through.
        static func device(_ bed: Bed, _ index: Int, to address: String) -> String {
            let words = show(bed, index, ["/usr/sbin/ip", "route", "get", address]).split(separator: " ")
            guard let dev = words.firstIndex(of: "dev"), dev + 1 < words.count else { return "" }
            return String(words[dev + 1])
        }

        /// Whether host `index` routes `subnet` directly via `publicIP` (Weft's protocol, on eth0)
        /// and, with the kernel dataplane, holds no flannel.1 entries for it.
        static func isDirect(_ bed: Bed, _ index: Int, _ subnet: String, via publicIP: String, kernel: Bool) -> Bool {
            guard route(bed, index, subnet) == "\(subnet) via \(publicIP) dev eth0 proto 87" else { return false }
            guard kernel else { return true }
            let base = Bed.split(subnet).0
            return !show(bed, index, ["/usr/sbin/ip", "neigh", "show", "dev", "flannel.1"]).contains("\(base).0 ")
        }

        /// Whether host `index` sends `subnet` through VXLAN: the kernel dataplane's onlink route on
        /// flannel.1, or (engine) no route of its own, so the TUN's route for the Network carries it.
        static func isTunnelled(_ bed: Bed, _ index: Int, _ subnet: String, kernel: Bool) -> Bool {
            let base = Bed.split(subnet).0
            return route(bed, index, subnet) == (kernel ? "\(subnet) via \(base).0 dev flannel.1 proto 87 onlink" : "")
                && device(bed, index, to: "\(base).2") == "flannel.1"
        }

        @Test(.timeLimit(.minutes(5)), arguments: ["kernel", "weft"])
        func directPeersGetHostGatewayRoutesTheRestVXLAN(dataplane: String) throws {
            let kernel = dataplane == "kernel"
            let bed = try Bed(hosts: 2)
            defer { bed.tearDown() }
            try Self.addHostBehindRouter(bed, Self.routedHost)
            try bed.startEtcd()
            try bed.putConfig(Self.config)

            var daemons: [Int: Started] = [:]
            for index in [1, 2] { daemons[index] = try bed.startWeftd(index, vxlanDataplane: dataplane) }
            daemons[Self.routedHost] = try bed.startWeftd(
                Self.routedHost,
                vxlanDataplane: dataplane,
                iface: false,
                extra: ["--iface", Self.routedIP]
            )
            let subnets = try bed.waitReady([1, 2, Self.routedHost], daemons)
            for index in subnets.keys { try bed.addressContainer(index, subnet: subnets[index]!) }
            let log = { (index: Int) in daemons[index]!.log.suffix(3000) }
            let ipOf = { (index: Int) in index == Self.routedHost ? Self.routedIP : bed.hostIP(index) }

            // Every host's table: direct between 1 and 2, VXLAN to and from 3.
            for (from, to, direct) in [
                (1, 2, true), (2, 1, true), (1, 3, false), (2, 3, false), (3, 1, false), (3, 2, false),
            ] {
                let settled = waitFor(WeftdBeds.hangGuard, interval: .milliseconds(20)) {
                    direct
                        ? Self.isDirect(bed, from, subnets[to]!, via: ipOf(to), kernel: kernel)
                        : Self.isTunnelled(bed, from, subnets[to]!, kernel: kernel)
                }
                #expect(
                    settled != nil,
                    "host \(from) → \(subnets[to]!) \(direct ? "direct" : "VXLAN"): \(Self.route(bed, from, subnets[to]!)); \(log(from))"
                )
            }
            #expect(Self.device(bed, 1, to: "\(Bed.split(subnets[2]!).0).2") == "eth0")
            #expect(
                daemons[1]!.log.contains(
                    "vxlan: adding direct route to subnet \(subnets[2]!) PublicIP 198.18.0.2 (directly connected)"
                ),
                "\(log(1))"
            )
            #expect(
                daemons[1]!.log.contains(
                    "vxlan: subnet \(subnets[Self.routedHost]!) PublicIP \(Self.routedIP) goes through VXLAN: reached via the router \(Self.routerOnBridge)"
                ),
                "\(log(1))"
            )
            WeftdEndToEndTests.pingMatrix(
                bed,
                subnets,
                "DirectRouting, \(dataplane) dataplane: 1 and 2 direct, 3 behind a router"
            )

            // /v1/routes and `weft routes` say which peers are routed directly.
            let report = try StatusClient(path: bed.statusSocket(1)).routes()
            let flags = Dictionary(uniqueKeysWithValues: report.routes.map { ($0.subnet, $0.direct) })
            #expect(flags == [subnets[2]!: true, subnets[Self.routedHost]!: false], "\(report.routes)")
            if kernel {
                #expect(
                    report.kernel?.routes.count == 1 && report.kernel?.differences.isEmpty == true,
                    "\(String(describing: report.kernel))"
                )
                // The kernel section lists the direct route too, through the underlay.
                #expect(
                    report.kernel?.direct == ["\(subnets[2]!) via \(bed.hostIP(2)) dev eth0 proto 87"],
                    "\(String(describing: report.kernel?.direct))"
                )
                let doctor = try bed.execResult(
                    bed.host(1),
                    [
                        weftPath, "doctor", "--etcd-endpoints", bed.etcdEndpoint, "--subnet-file", bed.subnetFile(1),
                        "--iface", bed.hostIP(1), "--status-socket", bed.statusSocket(1), "--no-path-probe",
                    ]
                )
                #expect(
                    doctor.output.contains(
                        "on flannel.1: 3 neighbour, FDB and route entries for 1 peer(s), in step with the lease table; 1 more routed directly (DirectRouting)"
                    ),
                    "\(doctor.output)"
                )
            }
            let table = try run([weftPath, "routes", "--socket", bed.statusSocket(1)]).output
            let rows = table.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
            #expect(
                !kernel || table.contains("direct routes, DirectRouting (1):\n    \(subnets[2]!) via \(bed.hostIP(2))"),
                "\(table)"
            )
            #expect(
                rows.contains { $0.first == subnets[2]! && $0.last == "direct" }
                    && rows.contains { $0.first == subnets[Self.routedHost]! && $0.last == "vxlan" },
                "\(table)"
            )

            // A lease whose PublicIP moves onto the shared segment is routed directly, and back.
            let lease = { (ip: String) in
                #"{"PublicIP":"\#(ip)","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"\#(Self.movingMAC)"}}"#
            }
            for (ip, direct) in [("198.18.1.77", false), ("198.18.0.77", true), ("198.18.1.77", false)] {
                try bed.etcdctlMust(["put", WeftdEndToEndTests.key(Self.movingSubnet), lease(ip)])
                let moved = waitFor(.seconds(2) + WeftdBeds.loadMargin, interval: .milliseconds(10)) {
                    direct
                        ? Self.isDirect(bed, 1, Self.movingSubnet, via: ip, kernel: kernel)
                        : Self.isTunnelled(bed, 1, Self.movingSubnet, kernel: kernel)
                            && (!kernel
                                || Self.show(bed, 1, ["/usr/sbin/bridge", "fdb", "show", "dev", "flannel.1"]).contains(
                                    "\(Self.movingMAC) dst \(ip) "
                                ))
                }
                #expect(
                    moved != nil,
                    "\(Self.movingSubnet) at \(ip): \(Self.route(bed, 1, Self.movingSubnet)); \(log(1))"
                )
            }
            #expect(
                daemons[1]!.log.contains(
                    "vxlan: adding direct route to subnet \(Self.movingSubnet) PublicIP 198.18.0.77 (directly connected; was through VXLAN)"
                ),
                "\(log(1))"
            )
            #expect(
                daemons[1]!.log.contains(
                    "vxlan: subnet \(Self.movingSubnet) PublicIP 198.18.1.77 goes through VXLAN: reached via the router \(Self.routerOnBridge) (was a direct route via 198.18.0.77)"
                ),
                "\(log(1))"
            )
            try bed.etcdctlMust(["del", WeftdEndToEndTests.key(Self.movingSubnet)])
            let gone = waitFor(.seconds(2) + WeftdBeds.loadMargin, interval: .milliseconds(10)) {
                Self.route(bed, 1, Self.movingSubnet).isEmpty
            }
            #expect(gone != nil, "\(Self.route(bed, 1, Self.movingSubnet))")

            // Host 2 becomes reachable only through the router with no lease change: the 10 s
            // resync moves it to VXLAN, traffic keeps flowing, and it comes back when the route goes.
            let hostRoute = ["\(bed.hostIP(2))/32", "via", Self.routerOnBridge]
            try bed.exec(bed.host(1), ["/usr/sbin/ip", "route", "add"] + hostRoute)
            let rerouted = waitFor(.seconds(10) + WeftdBeds.hangGuard, interval: .milliseconds(50)) {
                Self.isTunnelled(bed, 1, subnets[2]!, kernel: kernel)
            }
            #expect(rerouted != nil, "\(Self.route(bed, 1, subnets[2]!)); \(log(1))")
            #expect(
                daemons[1]!.log.contains(
                    "vxlan: subnet \(subnets[2]!) PublicIP 198.18.0.2 goes through VXLAN: reached via the router \(Self.routerOnBridge) (was a direct route via 198.18.0.2)"
                ),
                "\(log(1))"
            )
            #expect(
                bed.ping(from: 1, "\(Bed.split(subnets[2]!).0).2", count: 2).status == 0,
                "host 1 → 2 through VXLAN and the router"
            )
            try bed.exec(bed.host(1), ["/usr/sbin/ip", "route", "del"] + hostRoute)
            let back = waitFor(.seconds(10) + WeftdBeds.hangGuard, interval: .milliseconds(50)) {
                Self.isDirect(bed, 1, subnets[2]!, via: bed.hostIP(2), kernel: kernel)
            }
            #expect(back != nil, "\(Self.route(bed, 1, subnets[2]!)); \(log(1))")
            WeftdEndToEndTests.pingMatrix(bed, subnets, "DirectRouting, \(dataplane) dataplane, after the moves")

            for index in daemons.keys.sorted() { #expect(daemons[index]!.stop(SIGTERM) == 0, "\(log(index))") }
        }
    }
}
