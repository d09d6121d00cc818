import Foundation
import Glibc
import Status
import TestSupport
import Testing

extension Bed {
    /// Drops, without a reply, everything between host N and etcd (a partition, a dead switch
    /// port): its connections stay ESTABLISHED and learn nothing.
    func blackholeEtcd(from index: Int) throws {
        try exec(
            host(index),
            [
                "/usr/sbin/nft",
                """
                add table inet wfblackhole
                add chain inet wfblackhole out { type filter hook output priority 0; }
                add chain inet wfblackhole in { type filter hook input priority 0; }
                add rule inet wfblackhole out ip daddr 198.18.0.254 drop
                add rule inet wfblackhole in ip saddr 198.18.0.254 drop
                """,
            ]
        )
    }

    func healEtcd(from index: Int) throws {
        try exec(host(index), ["/usr/sbin/nft", "delete table inet wfblackhole"])
    }

    /// One sample's value from weftd N's /metrics, nil when the series is absent.
    func metric(_ index: Int, _ series: String) -> Double? {
        guard
            let text = try? execResult(
                host(index),
                ["/usr/bin/curl", "-s", "-m", "2", "http://127.0.0.1:8471/metrics"]
            ).output
        else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    /// Waits until each host's route table is confirmed current: its watch is open. weftd is
    /// ready with its first publication, and the watch opens right after the list that made it,
    /// so a test that takes etcd away at once must wait for this first.
    func expectConfirmed(_ hosts: [Int], sourceLocation: SourceLocation = #_sourceLocation) {
        for index in hosts {
            #expect(
                waitFor(.seconds(10)) { metric(index, "weft_route_table_confirmed") == 1 } != nil,
                "weftd \(index)'s watch never opened",
                sourceLocation: sourceLocation
            )
        }
    }

    /// /readyz's body in host N.
    func readyzBody(_ index: Int) -> String {
        (try? execResult(host(index), ["/usr/bin/curl", "-s", "-m", "2", "http://127.0.0.1:8471/readyz"]).output) ?? ""
    }
}

extension WeftdBeds {
    /// The faults of issue 15 that concern etcd, each on its own bed of real weftd processes.
    @Suite(.serialized, .enabled(if: bedUnavailable == nil, "\(bedUnavailable ?? "")"))
    struct WeftdFaultTests {
        /// etcd unreachable from host 1 (packets dropped, no RST) while etcd crashes and restarts:
        /// host 1's watch connection stays ESTABLISHED to a process that no longer exists. It must
        /// notice within its silence limit, say so (log, metric, /readyz after 30 s), keep
        /// forwarding, and once the path heals follow the leases again: a newcomer's route arrives.
        @Test(.timeLimit(.minutes(4)))
        func etcdBlackholedWhileItCrashesAndRestarts() throws {
            let bed = try Bed(hosts: 3)
            defer { bed.tearDown() }
            try bed.startEtcd()
            try bed.putConfig(Bed.udpConfig)
            let (daemons, subnets) = try bed.startReady([1, 2])
            for index in [1, 2] { try bed.addressContainer(index, subnet: subnets[index]!) }
            bed.expectConfirmed([1, 2])

            try bed.blackholeEtcd(from: 1)
            bed.etcd?.stop(SIGKILL)
            bed.etcd = nil
            try bed.startEtcd()
            // Past the 30 s grace: not ready, with the reason, while packets still flow.
            #expect(
                waitFor(.seconds(60), interval: .milliseconds(500)) { bed.readyz(1) == 503 } != nil,
                "weftd 1 stayed ready: \(daemons[1]!.log.suffix(2000))"
            )
            #expect(bed.readyzBody(1).contains("route table not confirmed current"), "\(bed.readyzBody(1))")
            #expect(bed.metric(1, "weft_route_table_confirmed") == 0)
            #expect(
                daemons[1]!.lines(containing: "route table no longer confirmed current").count == 1,
                "\(daemons[1]!.log.suffix(3000))"
            )
            #expect(daemons[1]!.lines(containing: "no events and no progress").isEmpty == false)
            let ping = bed.ping(from: 1, "\(Bed.split(subnets[2]!).0).2", count: 2)
            #expect(ping.status == 0, "the dataplane keeps forwarding: \(ping.output)")

            try bed.healEtcd(from: 1)
            let newcomer = try bed.startWeftd(3)
            let third = try bed.waitReady([3], [3: newcomer])[3]!
            let line = "route added \(third) via \(bed.hostIP(3))"
            #expect(
                waitFor(.seconds(60)) { !daemons[1]!.lines(containing: line).isEmpty } != nil,
                "weftd 1 never saw the newcomer: \(daemons[1]!.log.suffix(3000))"
            )
            #expect(waitFor(.seconds(30)) { bed.readyz(1) == 200 } != nil)
            #expect(bed.metric(1, "weft_route_table_confirmed") == 1)
            #expect(bed.metric(1, "weft_route_table_unconfirmed_episodes_total") == 1)
            #expect(daemons[1]!.lines(containing: "route table confirmed current again").count == 1)
        }

        /// etcd restored from nothing with only the config put back: the running hosts notice,
        /// re-assert their leases on the same subnets at once (not at the renewal, 23 h away), so
        /// a joining host gets a subnet of its own and everyone sees everyone.
        @Test(.timeLimit(.minutes(4)))
        func etcdThatLostItsDataIsRefilledAndNoSubnetHasTwoOwners() throws {
            let bed = try Bed(hosts: 3)
            defer { bed.tearDown() }
            try bed.startEtcd()
            // SubnetMin/Max leave four /24s: a newcomer picking at random among free ones would
            // land on a live host's subnet often if the live ones were not re-asserted.
            let config =
                #"{"Network":"10.244.0.0/16","SubnetLen":24,"SubnetMin":"10.244.1.0","SubnetMax":"10.244.3.0","Backend":{"Type":"udp"}}"#
            try bed.putConfig(config)
            let (daemons, subnets) = try bed.startReady([1, 2])
            bed.expectConfirmed([1, 2])

            bed.stopEtcd()
            try FileManager.default.removeItem(atPath: bed.etcdDataDirectory)
            try bed.startEtcd()
            try bed.putConfig(config)
            let prefix = WeftdEndToEndTests.subnetsPrefix
            for index in [1, 2] {
                let key = WeftdEndToEndTests.key(subnets[index]!)
                #expect(
                    waitFor(.seconds(45), interval: .milliseconds(200)) {
                        (try? bed.etcdctlMust(["get", key, "--print-value-only"]))?.contains(bed.hostIP(index)) == true
                    } != nil,
                    "weftd \(index) did not re-assert \(key): \(daemons[index]!.log.suffix(3000))"
                )
                #expect(
                    daemons[index]!.lines(containing: "etcd's store went back").count == 1,
                    "\(daemons[index]!.log.suffix(3000))"
                )
            }

            let newcomer = try bed.startWeftd(3)
            let third = try bed.waitReady([3], [3: newcomer])[3]!
            #expect(third != subnets[1] && third != subnets[2], "one subnet, two owners: \(third)")
            let listing = try bed.etcdctlMust(["get", "--prefix", prefix, "--keys-only"])
            #expect(listing.split(separator: "\n").count == 3, "\(listing)")
            for index in [1, 2] {
                let line = "route added \(third) via \(bed.hostIP(3))"
                #expect(
                    waitFor(.seconds(30)) { !daemons[index]!.lines(containing: line).isEmpty } != nil,
                    "weftd \(index) never saw the newcomer: \(daemons[index]!.log.suffix(3000))"
                )
            }
            for index in 1...3 { try bed.addressContainer(index, subnet: index == 3 ? third : subnets[index]!) }
            WeftdEndToEndTests.pingMatrix(bed, [1: subnets[1]!, 2: subnets[2]!, 3: third], "after etcd lost its data")
        }

        /// A second node started with a running node's PublicIP (a cloned VM, a NAT, a typo):
        /// refused in one line naming both nodes and the fix, never ready, never writing; the first
        /// node keeps its lease untouched. flanneld (and weftd before) took it over ~6 times a second.
        @Test(.timeLimit(.minutes(3)))
        func aDuplicatePublicIPIsRefusedWithoutAFight() throws {
            let bed = try Bed(hosts: 2)
            defer { bed.tearDown() }
            try bed.startEtcd()
            try bed.putConfig(Bed.udpConfig)
            let (daemons, subnets) = try bed.startReady([1])
            let key = WeftdEndToEndTests.key(subnets[1]!)
            let before = try bed.etcdctlMust(["get", key, "-w", "fields"])

            let intruder = try bed.startWeftd(2, extra: ["--public-ip", bed.hostIP(1), "--node-id", "intruder-node"])
            #expect(
                waitFor(.seconds(30)) { !intruder.lines(containing: "already belongs to node").isEmpty } != nil,
                "\(intruder.log.suffix(2000))"
            )
            Thread.sleep(forTimeInterval: 6)
            #expect(intruder.isRunning)
            #expect(bed.readyz(2) == 503)
            #expect(intruder.lines(containing: "already belongs to node").count == 1, "\(intruder.log.suffix(3000))")
            #expect(intruder.lines(containing: "etcdctl del \(key)").count == 1)
            #expect(
                try bed.etcdctlMust(["get", key, "-w", "fields"]) == before,
                "the first node's lease was rewritten"
            )
            #expect(bed.readyz(1) == 200)
            #expect(daemons[1]!.lines(containing: "LOST").isEmpty, "\(daemons[1]!.log.suffix(2000))")
            let keys = try bed.etcdctlMust(["get", "--prefix", WeftdEndToEndTests.subnetsPrefix, "--keys-only"])
            #expect(keys.split(separator: "\n").count == 1, "\(keys)")
        }

        /// A node reboot: weftd killed, the host's namespaces deleted and made again (its
        /// subnet.env in /run gone with them), weftd started again. It must come back on its
        /// subnet (its lease is found by PublicIP, and the owner record names this same node), the
        /// other host never drops its route, and the containers reach each other again.
        @Test(.timeLimit(.minutes(3)))
        func aRebootedNodeComesBackOnItsSubnet() throws {
            let bed = try Bed(hosts: 2)
            defer { bed.tearDown() }
            try bed.startEtcd()
            try bed.putConfig(Bed.udpConfig)
            let (daemons, subnets) = try bed.startReady([1, 2])
            for index in [1, 2] { try bed.addressContainer(index, subnet: subnets[index]!) }

            daemons[1]!.stop(SIGKILL)
            for namespace in [bed.host(1), bed.container(1)] { try must(["/usr/sbin/ip", "netns", "del", namespace]) }
            // The kernel tears a deleted namespace's devices down in the background: the old veth's
            // underlay end (h1) must be gone before the host is made again.
            let gone = waitFor(.seconds(20)) {
                (try? bed.execResult(bed.underlay, ["/usr/sbin/ip", "link", "show", "h1"]))?.status != 0
            }
            #expect(gone != nil, "h1 outlived host 1's namespace")
            try FileManager.default.removeItem(atPath: bed.subnetFile(1))
            try bed.addHost(1)
            let rebooted = try bed.startWeftd(1)
            let after = try bed.waitReady([1], [1: rebooted])
            #expect(after[1] == subnets[1], "the rebooted node moved: \(rebooted.log.suffix(2000))")
            #expect(!rebooted.lines(containing: "(existing)").isEmpty, "\(rebooted.log.suffix(2000))")
            #expect(daemons[2]!.lines(containing: "route removed").isEmpty, "\(daemons[2]!.log.suffix(2000))")
            try bed.addressContainer(1, subnet: subnets[1]!)
            WeftdEndToEndTests.pingMatrix(bed, subnets, "after the reboot")
        }

        /// 5 % of host 1's underlay packets lost, both ways (nft numgen): TCP between the
        /// containers still completes, and the control plane rides it out (weftd stays ready,
        /// its lease kept).
        @Test(.timeLimit(.minutes(3)))
        func fivePercentUnderlayLossIsRiddenOut() throws {
            let bed = try Bed(hosts: 2)
            defer { bed.tearDown() }
            try bed.startEtcd()
            try bed.putConfig(Bed.udpConfig)
            let (daemons, subnets) = try bed.startReady([1, 2])
            for index in [1, 2] { try bed.addressContainer(index, subnet: subnets[index]!) }
            // Host 1 may have been ready before host 2's lease existed: its route follows the watch.
            let container2 = "\(Bed.split(subnets[2]!).0).2"
            #expect(
                waitFor(.seconds(10), interval: .milliseconds(200)) {
                    bed.ping(from: 1, container2, count: 1).status == 0
                } != nil
            )
            try bed.exec(
                bed.host(1),
                [
                    "/usr/sbin/nft",
                    """
                    add table inet wfloss
                    add chain inet wfloss out { type filter hook output priority 0; }
                    add chain inet wfloss in { type filter hook input priority 0; }
                    add rule inet wfloss out oifname "eth0" numgen random mod 100 < 5 counter drop
                    add rule inet wfloss in iifname "eth0" numgen random mod 100 < 5 counter drop
                    """,
                ]
            )
            try bed.startIPerfServer(in: 2, address: "\(Bed.split(subnets[2]!).0).2")
            // A fixed amount, not a duration: it must all arrive, however slowly.
            let iperf = try bed.execResult(
                bed.container(1),
                ["/usr/bin/iperf3", "-c", "\(Bed.split(subnets[2]!).0).2", "-n", "20M", "-J"]
            )
            #expect(iperf.status == 0, "\(iperf.output.suffix(2000))")
            #expect(WeftdEndToEndTests.receivedBitsPerSecond(iperf.output) > 0, "\(iperf.output.suffix(2000))")
            let dropped = try bed.exec(bed.host(1), ["/usr/sbin/nft", "list", "table", "inet", "wfloss"])
            #expect(
                dropped.contains("counter packets") && !dropped.contains("counter packets 0 bytes 0 drop"),
                "the loss did bite: \(dropped)"
            )
            let ping = bed.ping(from: 1, "\(Bed.split(subnets[2]!).0).2", count: 20)
            #expect(ping.output.contains(" 0% packet loss") || ping.status == 0, "\(ping.output)")
            #expect(bed.readyz(1) == 200 && bed.readyz(2) == 200)
            #expect(daemons[1]!.lines(containing: "LOST").isEmpty)
        }

        /// etcd out of space (its NOSPACE alarm refuses writes): a running host keeps forwarding
        /// and stays ready; a joining host waits, not ready, saying once what is wrong and how to
        /// free etcd; once an operator does, it joins.
        @Test(.timeLimit(.minutes(3)))
        func etcdOutOfSpaceStopsOnlyNewLeases() throws {
            let bed = try Bed(hosts: 3)
            defer { bed.tearDown() }
            try bed.startEtcd(extra: ["--quota-backend-bytes", "\(4 << 20)"])
            try bed.putConfig(Bed.udpConfig)
            let (daemons, subnets) = try bed.startReady([1, 2])
            for index in [1, 2] { try bed.addressContainer(index, subnet: subnets[index]!) }

            // Fill the backend until etcd raises its alarm (each put is 700 kB, below the 1.5 MiB request limit).
            let fill =
                "i=0; while [ $i -lt 20 ]; do head -c 700000 /dev/zero | tr '\\0' x | ETCDCTL_API=3 etcdctl --endpoints \(bed.etcdEndpoint) put /fill/$i >/dev/null 2>&1 || break; i=$((i+1)); done"
            try bed.exec(bed.underlay, ["/bin/sh", "-c", fill])
            let alarms = try bed.etcdctlMust(["alarm", "list"])
            try #require(alarms.contains("NOSPACE"), "etcd raised no alarm: \(alarms)")

            let joining = try bed.startWeftd(3)
            #expect(
                waitFor(.seconds(30)) { !joining.lines(containing: "database space exceeded").isEmpty } != nil,
                "\(joining.log.suffix(2000))"
            )
            #expect(
                joining.lines(containing: "etcdctl alarm disarm").count == 1,
                "said once: \(joining.log.suffix(3000))"
            )
            #expect(bed.readyz(3) == 503)
            #expect(bed.readyz(1) == 200 && bed.readyz(2) == 200)
            #expect(bed.ping(from: 1, "\(Bed.split(subnets[2]!).0).2", count: 2).status == 0, "forwarding goes on")

            // The operator's fix, as the line says.
            try bed.etcdctlMust(["del", "--prefix", "/fill/"])
            let status = try bed.etcdctlMust(["endpoint", "status", "-w", "fields"])
            let revision =
                status.split(separator: "\n").first { $0.contains("\"Revision\"") }?.split(separator: ":").last?
                .trimmingCharacters(in: .whitespaces) ?? ""
            try bed.etcdctlMust(["compact", revision])
            try bed.etcdctlMust(["defrag"])
            try bed.etcdctlMust(["alarm", "disarm"])
            let third = try bed.waitReady([3], [3: joining])[3]!
            #expect(third != subnets[1] && third != subnets[2])
            #expect(daemons[1]!.lines(containing: "LOST").isEmpty)
        }

        /// etcd paused longer than the leases' TTL: when it runs again it expires them, deleting
        /// the keys. Each weftd notices its own key go (its watch), takes the same subnet again,
        /// and the peers end with each other's routes, as etcd holds them.
        @Test(.timeLimit(.minutes(3)))
        func leasesExpiringWhileEtcdWasPausedAreTakenBack() throws {
            let bed = try Bed(hosts: 2)
            defer { bed.tearDown() }
            try bed.startEtcd()
            try bed.putConfig(Bed.udpConfig)
            let (daemons, subnets) = try bed.startReady(
                [1, 2],
                extra: ["--subnet-lease-ttl", "6s", "--subnet-lease-renew-margin", "3s"]
            )
            for index in [1, 2] { try bed.addressContainer(index, subnet: subnets[index]!) }
            bed.expectConfirmed([1, 2])

            let etcdPID = try #require(bed.etcd?.pid)
            kill(etcdPID, SIGSTOP)
            Thread.sleep(forTimeInterval: 10)
            kill(etcdPID, SIGCONT)
            for index in [1, 2] {
                let key = WeftdEndToEndTests.key(subnets[index]!)
                #expect(
                    waitFor(.seconds(40), interval: .milliseconds(200)) {
                        (try? bed.etcdctlMust(["get", key, "--print-value-only"]))?.contains(bed.hostIP(index)) == true
                            && bed.readyz(index) == 200
                    } != nil,
                    "weftd \(index): \(daemons[index]!.log.suffix(3000))"
                )
            }
            // Whatever happened in between, both end on their subnets with each other's route.
            for index in [1, 2] { #expect(bed.subnet(index) == subnets[index]) }
            let routes = try bed.execResult(
                bed.host(1),
                [weftPath, "routes", "--json", "--socket", bed.statusSocket(1)]
            ).output
            #expect(routes.contains(subnets[2]!), "\(routes)")
            WeftdEndToEndTests.pingMatrix(bed, subnets, "after the leases expired and came back")
        }

        /// Churn with traffic: a container pings across the whole time while etcd is killed and
        /// restarted, one peer leaves for good (stopped, its lease deleted as an operator removes
        /// a node), another crashes and comes back, and a new one joins; every round ends with
        /// each daemon's route table equal to what etcd holds, and the pings mostly arrive.
        @Test(.timeLimit(.minutes(5)))
        func churnWithTrafficEndsWithEveryTableEqualToEtcd() throws {
            let bed = try Bed(hosts: 5)
            defer { bed.tearDown() }
            try bed.startEtcd()
            try bed.putConfig(Bed.udpConfig)
            var (daemons, subnets) = try bed.startReady([1, 2, 3, 4])
            for index in [1, 2] { try bed.addressContainer(index, subnet: subnets[index]!) }
            let pings = try Started(
                [
                    "/usr/sbin/ip", "netns", "exec", bed.container(1), "/usr/bin/ping", "-n", "-i", "0.2",
                    "\(Bed.split(subnets[2]!).0).2",
                ],
                logPath: bed.directory + "/churn-ping.log"
            )
            bed.started.append(pings)

            /// Each running daemon's routes against etcd's leases (every subnet but its own).
            func tablesMatchEtcd(_ running: [Int]) -> Bool {
                guard
                    let listing = try? bed.etcdctlMust([
                        "get", "--prefix", WeftdEndToEndTests.subnetsPrefix, "--keys-only",
                    ])
                else { return false }
                let held = Set(
                    listing.split(separator: "\n").map {
                        String($0.split(separator: "/").last ?? "").replacingOccurrences(of: "-", with: "/")
                    }
                )
                for index in running {
                    guard
                        let output = try? bed.execResult(
                            bed.host(index),
                            [weftPath, "routes", "--json", "--socket", bed.statusSocket(index)]
                        ).output,
                        let report = try? JSONDecoder().decode(RoutesReport.self, from: Data(output.utf8)),
                        Set(report.routes.map(\.subnet)) == held.subtracting([report.localSubnet])
                    else { return false }
                }
                return true
            }

            for round in 1...2 {
                // etcd crashes and comes back.
                bed.etcd?.stop(SIGKILL)
                bed.etcd = nil
                try bed.startEtcd()
                // Host 3 crashes and restarts.
                daemons[3]!.stop(SIGKILL)
                daemons[3] = try bed.startWeftd(3)
                _ = try bed.waitReady([3], daemons)
                var running = [1, 2, 3]
                if round == 1 {
                    // Host 4 leaves for good; host 5 joins.
                    daemons[4]!.stop()
                    try bed.etcdctlMust(["del", WeftdEndToEndTests.key(subnets[4]!)])
                    daemons[5] = try bed.startWeftd(5)
                    subnets[5] = try bed.waitReady([5], daemons)[5]!
                }
                running.append(5)
                #expect(
                    waitFor(.seconds(45), interval: .milliseconds(500)) { tablesMatchEtcd(running) } != nil,
                    "round \(round): a daemon's table differs from etcd's"
                )
            }
            pings.stop(SIGINT)
            let summary = pings.log.split(separator: "\n").first { $0.contains("packets transmitted") } ?? ""
            let loss =
                summary.split(separator: ",").first { $0.contains("packet loss") }
                .flatMap { Double($0.trimmingCharacters(in: .whitespaces).split(separator: "%").first ?? "") } ?? 100
            print("churn: \(summary)")
            #expect(loss < 10, "container pings across the churn: \(summary)")
        }

        /// A path that drops large packets without an ICMP error (here the bridge port to host 2
        /// has MTU 1400: a bridge drops what does not fit, silently): `weft doctor` on host 1
        /// probes each peer with DF echoes, fails the path to host 2 naming 1400 and the MTU to
        /// set, and passes the path to host 3.
        @Test(.timeLimit(.minutes(3)))
        func doctorFindsAPathThatSilentlyDropsLargePackets() throws {
            let bed = try Bed(hosts: 3)
            defer { bed.tearDown() }
            try bed.startEtcd()
            try bed.putConfig(Bed.udpConfig)
            _ = try bed.startReady([1, 2, 3])
            try bed.exec(bed.underlay, ["/usr/sbin/ip", "link", "set", "h2", "mtu", "1400"])
            let doctor = try bed.execResult(
                bed.host(1),
                [
                    weftPath, "doctor", "--etcd-endpoints", bed.etcdEndpoint,
                    "--subnet-file", bed.subnetFile(1), "--iface", bed.hostIP(1), "--json",
                ]
            )
            let checks = try #require(
                try JSONSerialization.jsonObject(with: Data(doctor.output.utf8)) as? [[String: Any]],
                "\(doctor.output)"
            )
            let toHost2 = checks.first { $0["name"] as? String == "path MTU to \(bed.hostIP(2))" }
            let toHost3 = checks.first { $0["name"] as? String == "path MTU to \(bed.hostIP(3))" }
            #expect(toHost2?["status"] as? String == "FAIL", "\(doctor.output)")
            #expect((toHost2?["detail"] as? String)?.contains("above 1400 bytes") == true, "\(doctor.output)")
            #expect((toHost2?["fix"] as? String)?.contains("make the pod MTU 1372") == true, "\(doctor.output)")
            #expect(toHost3?["status"] as? String == "ok", "\(doctor.output)")
            #expect(doctor.status == 1, "a failed check fails doctor")
        }
    }
}
