import Foundation
import Glibc
import TestSupport
import Testing

extension WeftdBeds {
    /// --ip-masq and the forward rules with real weftd processes and the real nft, every rule in
    /// the bed's own namespaces: a container leaving the overlay takes its host's address, overlay
    /// traffic keeps its real one, and `table ip weft` stays one copy, repaired and (if asked) removed.
    @Suite(
        .serialized,
        .enabled(
            if: bedUnavailable == nil && Bed.nftPath != nil,
            "\(bedUnavailable ?? "WeftdTrafficRulesTests need nft (apt-get install nftables) and /usr/bin/python3")"
        )
    )
    struct WeftdTrafficRulesTests {
        /// A host on the underlay outside the overlay (not running weftd): the "internet".
        static let outsideIP = "198.18.0.200"
        static let port = 8090

        /// A one-connection-at-a-time TCP server that answers each client with the address it
        /// sees the client at, and logs it: the seeds' nginx access-log check, without nginx.
        static let echoPeer = """
            import socket, sys
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(8)
            while True:
                c, peer = s.accept(); c.sendall((peer[0] + "\\n").encode()); print(peer[0], flush=True); c.close()
            """
        static let askPeer = """
            import socket, sys
            c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
            print(c.recv(64).decode().strip())
            """

        /// The address `address:port` saw container `from` at, or the failure.
        static func seenAs(_ bed: Bed, from: Int, _ address: String) -> String {
            let result = try? bed.execResult(
                bed.container(from),
                ["/usr/bin/python3", "-c", askPeer, address, String(port)]
            )
            guard let result, result.status == 0 else { return "failed: \(result?.output ?? "no result")" }
            return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        static func listing(_ bed: Bed, _ index: Int) -> String? {
            guard let result = try? bed.execResult(bed.host(index), [Bed.nftPath!, "list", "table", "ip", "weft"]),
                result.status == 0
            else { return nil }
            return result.output
        }

        static func count(_ text: String?, _ fragment: String) -> Int {
            (text ?? "").components(separatedBy: fragment).count - 1
        }

        @Test(.timeLimit(.minutes(3)))
        func masqueradeLeavingTrafficKeepOverlayAddressesRepairAndCleanUp() throws {
            let bed = try Bed(hosts: 2)
            defer { bed.tearDown() }
            let outside = try bed.addOutsideHost(Self.outsideIP)
            try bed.startEtcd()
            try bed.putConfig(Bed.udpConfig)

            let rules = ["--ip-masq", "--iptables-resync", "1"]
            let cluster = try bed.startReady([1, 2], extra: rules)
            var daemons = cluster.daemons
            let subnets = cluster.subnets
            for index in 1...2 {
                try bed.addressContainer(index, subnet: subnets[index]!)
                let listing = Self.listing(bed, index)
                // Ready means the rules are in: flanneld's readiness waits for them too.
                #expect(
                    listing?.contains("ip saddr != 10.244.0.0/16 ip daddr \(subnets[index]!) return") == true,
                    "weftd \(index): \(listing ?? "no table")"
                )
                #expect(
                    Self.count(listing, "masquerade fully-random") == 2 && Self.count(listing, "accept\n") == 2,
                    "\(listing ?? "")"
                )
                #expect(bed.subnetEnv(index)["FLANNEL_IPMASQ"] == "true")
                #expect(daemons[index]!.lines(containing: "not install the masquerade rules").isEmpty)
            }
            let container1 = "\(Bed.split(subnets[1]!).0).2"
            let container2 = "\(Bed.split(subnets[2]!).0).2"

            // 1. Container 1 → the outside host: seen as host 1's underlay address (without the
            //    masquerade the reply would have no route back to 10.244.0.0/16 at all).
            let server = try Started(
                [
                    "/usr/sbin/ip", "netns", "exec", outside, "/usr/bin/python3", "-c", Self.echoPeer, Self.outsideIP,
                    String(Self.port),
                ],
                logPath: bed.directory + "/outside.log"
            )
            bed.started.append(server)
            #expect(
                waitFor(WeftdBeds.hangGuard, interval: .milliseconds(100)) {
                    Self.seenAs(bed, from: 1, Self.outsideIP) == bed.hostIP(1)
                } != nil,
                "container 1 → outside: \(Self.seenAs(bed, from: 1, Self.outsideIP)); \(server.log)"
            )
            #expect(Self.seenAs(bed, from: 2, Self.outsideIP) == bed.hostIP(2))
            #expect(
                server.lines(containing: container1).isEmpty,
                "the outside host never sees an overlay address: \(server.log)"
            )

            // 2. Container 1 → container 2 across the overlay: the real 10.244 address (the nginx-log check).
            let inner = try Started(
                [
                    "/usr/sbin/ip", "netns", "exec", bed.container(2), "/usr/bin/python3", "-c", Self.echoPeer,
                    container2, String(Self.port),
                ],
                logPath: bed.directory + "/container2.log"
            )
            bed.started.append(inner)
            #expect(
                waitFor(WeftdBeds.hangGuard, interval: .milliseconds(100)) {
                    Self.seenAs(bed, from: 1, container2) == container1
                } != nil,
                "container 1 → container 2 must keep its address: \(Self.seenAs(bed, from: 1, container2))"
            )
            #expect(inner.lines(containing: bed.hostIP(1)).isEmpty, "\(inner.log)")

            // 3. Idempotent: a restart (SIGTERM keeps the table, as flanneld keeps its rules) leaves one copy.
            #expect(daemons[1]!.stop(SIGTERM) == 0)
            #expect(Self.listing(bed, 1) != nil, "without --ip-masq-cleanup the table stays after a stop")
            daemons[1] = try bed.startWeftd(1, extra: rules)
            _ = try bed.waitReady([1], daemons)
            // The port filter joins the table once the peers are listed.
            _ = waitFor(WeftdBeds.hangGuard) {
                Self.listing(bed, 1)?.contains("elements = { \(bed.hostIP(2)) }") == true
            }
            let afterRestart = Self.listing(bed, 1)
            #expect(
                Self.count(afterRestart, "table ip weft") == 1 && Self.count(afterRestart, "chain postrouting") == 1
                    && Self.count(afterRestart, "masquerade fully-random") == 2
                    && Self.count(afterRestart, "accept\n") == 2,
                "one copy after a restart: \(afterRestart ?? "")"
            )

            // A rule deleted by hand is back within a few resync periods, with one warning.
            let masquerade = "ip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random"
            let annotated = try bed.exec(
                bed.host(1),
                [Bed.nftPath!, "-a", "list", "chain", "ip", "weft", "postrouting"]
            )
            let handle = try #require(
                annotated.split(separator: "\n").first { $0.contains(masquerade) }?.split(separator: " ").last
            )
            try bed.exec(
                bed.host(1),
                [Bed.nftPath!, "delete", "rule", "ip", "weft", "postrouting", "handle", String(handle)]
            )
            #expect(Self.count(Self.listing(bed, 1), masquerade) == 0)
            let warning = "traffic rules: table ip weft was not as weftd keeps it"
            #expect(
                waitFor(WeftdBeds.hangGuard) { Self.count(Self.listing(bed, 1), masquerade) == 1 } != nil,
                "the deleted rule is not back"
            )
            #expect(waitFor(WeftdBeds.hangGuard) { !daemons[1]!.lines(containing: warning).isEmpty } != nil)
            #expect(daemons[1]!.lines(containing: warning).count == 1, "\(daemons[1]!.lines(containing: warning))")
            #expect(
                daemons[1]!.lines(containing: warning).first?.contains("missing in postrouting: \(masquerade)") == true
            )
            #expect(
                waitFor(WeftdBeds.hangGuard, interval: .milliseconds(100)) {
                    Self.seenAs(bed, from: 1, Self.outsideIP) == bed.hostIP(1)
                } != nil
            )

            // The whole table deleted: back too, and one more warning naming the table.
            try bed.exec(bed.host(1), [Bed.nftPath!, "delete", "table", "ip", "weft"])
            #expect(
                waitFor(WeftdBeds.hangGuard) { Self.listing(bed, 1) == afterRestart } != nil,
                "the deleted table is not back"
            )
            #expect(waitFor(WeftdBeds.hangGuard) { daemons[1]!.lines(containing: warning).count == 2 } != nil)
            // two more resync periods: a repaired table is not re-applied or warned about again
            Thread.sleep(forTimeInterval: 2.5)
            #expect(daemons[1]!.lines(containing: warning).count == 2, "\(daemons[1]!.lines(containing: warning))")
            #expect(daemons[1]!.lines(containing: warning).last?.contains("missing table ip weft") == true)
            #expect(bed.readyz(1) == 200)

            // --ip-masq-cleanup: a SIGTERM deletes the table; host 2, without it, keeps its own.
            #expect(daemons[1]!.stop(SIGTERM) == 0)
            daemons[1] = try bed.startWeftd(1, extra: rules + ["--ip-masq-cleanup"])
            _ = try bed.waitReady([1], daemons)
            #expect(
                waitFor(WeftdBeds.hangGuard) { Self.listing(bed, 1) == afterRestart } != nil,
                "\(Self.listing(bed, 1) ?? "no table")"
            )
            #expect(daemons[1]!.stop(SIGTERM) == 0)
            #expect(
                Self.listing(bed, 1) == nil,
                "--ip-masq-cleanup must delete table ip weft: \(daemons[1]!.log.suffix(1500))"
            )
            #expect(!daemons[1]!.lines(containing: "deleted table ip weft (--ip-masq-cleanup)").isEmpty)
            #expect(daemons[2]!.stop(SIGTERM) == 0)
            #expect(Self.listing(bed, 2) != nil)
        }

        /// nft refusing (a stand-in bind-mounted over nft in weftd's own mount namespace says
        /// "Operation not permitted"): one line naming the fix, the dataplane runs, /readyz stays
        /// 503; once the real nft is back (the bind mount undone) the resync installs the table
        /// and weftd turns ready.
        @Test(.timeLimit(.minutes(2)))
        func aRefusingNftKeepsTheDataplaneButNotReadiness() throws {
            let bed = try Bed(hosts: 2)
            defer { bed.tearDown() }
            try bed.startEtcd()
            try bed.putConfig(Bed.udpConfig)
            let refusing = bed.directory + "/refusing-nft"
            try "#!/bin/sh\necho 'Error: Could not process rule: Operation not permitted' >&2\nexit 1\n".write(
                toFile: refusing,
                atomically: true,
                encoding: .utf8
            )
            chmod(refusing, 0o755)
            let nft = Bed.nftPath!
            // ip netns exec, unshare and sh each exec the next, so the pid is weftd's.
            let weftd = try Started(
                [
                    "/usr/sbin/ip", "netns", "exec", bed.host(1), "/usr/bin/unshare", "-m", "--propagation", "private",
                    "/bin/sh", "-c", "mount --bind \(refusing) \(nft) && exec \"$0\" \"$@\"", weftdPath,
                    "-etcd-endpoints=\(bed.etcdEndpoint)", "--iface", bed.hostIP(1), "--subnet-file", bed.subnetFile(1),
                    "--healthz-port", "8471", "--workers", "1", "--ip-masq", "--iptables-resync", "1",
                ],
                logPath: bed.directory + "/weftd-1-refusing.log"
            )
            bed.started.append(weftd)
            var daemons: [Int: Started] = [1: weftd]
            daemons[2] = try bed.startWeftd(2)
            let subnets2 = try bed.waitReady([2], daemons)

            let line =
                "not ready: traffic rules not in place: cannot apply table ip weft: nft says Error: Could not process rule: Operation not permitted; weftd needs CAP_NET_ADMIN"
            #expect(
                waitFor(WeftdBeds.hangGuard) { !weftd.lines(containing: line).isEmpty } != nil,
                "\(weftd.log.suffix(2000))"
            )
            let subnet1 = try #require(
                waitFor(WeftdBeds.hangGuard) { bed.subnet(1) != nil } != nil ? bed.subnet(1) : nil,
                "subnet.env is written anyway"
            )
            try bed.addressContainer(1, subnet: subnet1)
            try bed.addressContainer(2, subnet: subnets2[2]!)
            Thread.sleep(forTimeInterval: 2.5)  // two resync periods failing the same way
            #expect(bed.readyz(1) == 503)
            #expect(
                weftd.lines(containing: "traffic rules not in place").count == 1,
                "one line, not one per resync: \(weftd.lines(containing: "traffic rules"))"
            )
            #expect(Self.listing(bed, 1) == nil)
            let ping = waitFor(WeftdBeds.hangGuard, interval: .milliseconds(200)) {
                bed.ping(from: 2, "\(Bed.split(subnet1).0).2").status == 0
            }
            #expect(ping != nil, "the dataplane runs while the rules are missing")

            try must(["/usr/bin/nsenter", "-t", String(weftd.pid), "-m", "/bin/umount", nft])
            #expect(
                waitFor(WeftdBeds.hangGuard, interval: .milliseconds(100)) { bed.readyz(1) == 200 } != nil,
                "\(weftd.log.suffix(2000))"
            )
            #expect(!weftd.lines(containing: "traffic rules: table ip weft is in place now").isEmpty)
            #expect(Self.count(Self.listing(bed, 1), "masquerade fully-random") == 2)
        }

        /// Without --ip-masq only the forward chain is installed (--iptables-forward-rules defaults to
        /// true, as in flanneld) beside the port filter, and a container leaving the overlay keeps
        /// its address; with --iptables-forward-rules=false --port-filter=false too, weftd leaves
        /// nftables alone.
        @Test(.timeLimit(.minutes(2)))
        func forwardRulesAloneAndNoRules() throws {
            let bed = try Bed(hosts: 2)
            defer { bed.tearDown() }
            try bed.startEtcd()
            try bed.putConfig(Bed.udpConfig)
            var daemons: [Int: Started] = [:]
            daemons[1] = try bed.startWeftd(1)
            daemons[2] = try bed.startWeftd(2, extra: ["--iptables-forward-rules=false", "--port-filter=false"])
            _ = try bed.waitReady([1, 2], daemons)
            // The port filter (on by default) joins the table once the peers are listed.
            _ = waitFor(WeftdBeds.hangGuard) { Self.count(Self.listing(bed, 1), "chain input") == 1 }
            let listing = Self.listing(bed, 1)
            #expect(
                Self.count(listing, "chain forward") == 1 && Self.count(listing, "chain postrouting") == 0,
                "\(listing ?? "no table")"
            )
            #expect(Self.count(listing, "chain input") == 1, "\(listing ?? "no table")")
            #expect(
                Self.count(listing, "ip saddr 10.244.0.0/16 accept") == 1
                    && Self.count(listing, "ip daddr 10.244.0.0/16 accept") == 1
            )
            #expect(Self.listing(bed, 2) == nil, "no rules asked for: no table")
            #expect(bed.subnetEnv(1)["FLANNEL_IPMASQ"] == "false")
        }

        /// --ip-blackhole-route: the lease subnet's blackhole route at the highest metric, under
        /// the bridge's connected route (containers still reached both ways), put back by the
        /// resync when deleted, and removed by a weftd started without the flag.
        @Test(.timeLimit(.minutes(2)))
        func blackholeRouteForTheLeaseSubnet() throws {
            let bed = try Bed(hosts: 2)
            defer { bed.tearDown() }
            try bed.startEtcd()
            try bed.putConfig(Bed.udpConfig)
            let flags = ["--ip-blackhole-route", "--iptables-resync", "1"]
            var (daemons, subnets) = try bed.startReady([1, 2], extra: flags)
            let line = "blackhole \(subnets[1]!) proto 87 metric 4294967295"
            func blackholes() -> [String] {
                ((try? bed.exec(bed.host(1), ["/usr/sbin/ip", "route", "show", "type", "blackhole"])) ?? "")
                    .split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            }
            #expect(blackholes() == [line], "\(blackholes())")
            #expect(
                !daemons[1]!.lines(containing: "blackhole route for \(subnets[1]!) added").isEmpty,
                "\(daemons[1]!.log.suffix(1500))"
            )
            for index in 1...2 { try bed.addressContainer(index, subnet: subnets[index]!) }
            let container1 = "\(Bed.split(subnets[1]!).0).2"
            let container2 = "\(Bed.split(subnets[2]!).0).2"
            #expect(bed.ping(from: 2, container1, count: 2).status == 0, "the bridge's route wins over the blackhole")
            #expect(bed.ping(from: 1, container2, count: 2).status == 0)

            _ = try bed.exec(
                bed.host(1),
                ["/usr/sbin/ip", "route", "del", "blackhole", subnets[1]!, "proto", "87", "metric", "4294967295"]
            )
            #expect(
                waitFor(.seconds(10), interval: .milliseconds(100)) { blackholes() == [line] } != nil,
                "put back: \(blackholes())"
            )

            #expect(daemons[1]!.stop(SIGTERM) == 0)
            #expect(blackholes() == [line], "a stop leaves it, as flanneld leaves its kernel state")
            daemons[1] = try bed.startWeftd(1)
            _ = try bed.waitReady([1], daemons)
            #expect(blackholes().isEmpty, "started without the flag: \(blackholes())")
            #expect(
                !daemons[1]!.lines(containing: "removed (--ip-blackhole-route is off)").isEmpty,
                "\(daemons[1]!.log.suffix(1500))"
            )
        }
    }
}

extension Bed {
    static let nftPath: String? = ["/usr/sbin/nft", "/sbin/nft"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }
    .flatMap { FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") ? $0 : nil }

    /// A namespace on the underlay bridge at `address`/24 that runs no weftd and has no route to
    /// the overlay: only masqueraded traffic can be answered from it.
    func addOutsideHost(_ address: String) throws -> String {
        let name = "\(tag)o"
        try must(["/usr/sbin/ip", "netns", "add", name])
        namespaces.append(name)
        try exec(name, ["/usr/sbin/ip", "link", "set", "lo", "up"])
        try must([
            "/usr/sbin/ip", "link", "add", "eth0", "netns", name, "type", "veth", "peer", "name", "out", "netns",
            underlay,
        ])
        try exec(underlay, ["/usr/sbin/ip", "link", "set", "out", "master", "br0", "up"])
        try exec(name, ["/usr/sbin/ip", "addr", "add", "\(address)/24", "dev", "eth0"])
        try exec(name, ["/usr/sbin/ip", "link", "set", "eth0", "up"])
        return name
    }
}
