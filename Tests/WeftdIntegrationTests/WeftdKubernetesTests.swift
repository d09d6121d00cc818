import Foundation
import Glibc
import KubeTestServer
import TestSupport
import Testing

extension WeftdBeds {
    /// weftd in Kubernetes mode (--kube-subnet-mgr) on the namespace bed, the API stand-in where
    /// etcd was: three nodes reach each other's containers with each backend, and the API's
    /// events (a node deleted, a watch expired, a token rotated, a podCIDR assigned late, the
    /// server away) reach the route tables as flannel's subnet manager would take them.
    @Suite(.serialized, .enabled(if: kubeBedUnavailable == nil, "\(kubeBedUnavailable ?? "")"))
    struct WeftdKubernetesTests {
        static let prefix = KubeBed.annotationPrefix

        /// Waits until weftd N routes exactly `expected` (its status socket's table).
        static func expectRoutes(
            _ kube: KubeBed,
            _ index: Int,
            _ expected: Set<String>,
            _ label: String,
            sourceLocation: SourceLocation = #_sourceLocation
        ) {
            let held = waitFor(WeftdBeds.hangGuard, interval: .milliseconds(20)) {
                kube.routedSubnets(index) == expected
            }
            #expect(
                held != nil,
                "\(label): weftd \(index) routes \(kube.routedSubnets(index).sorted()), expected \(expected.sorted())",
                sourceLocation: sourceLocation
            )
        }

        /// Host N's node carries flannel's four annotations as flanneld writes them for this
        /// backend, patched by weftd as flannel's service account; returns backend-data.
        @discardableResult
        static func expectFlannelAnnotations(
            _ kube: KubeBed,
            _ index: Int,
            publicIP: String? = nil,
            sourceLocation: SourceLocation = #_sourceLocation
        ) throws -> String? {
            let annotations = try kube.annotations(of: kube.bed.nodeName(index))
            let expected = [
                "kube-subnet-manager": "true", "backend-type": kube.backendTypeAnnotation,
                "public-ip": publicIP ?? kube.bed.hostIP(index),
            ]
            for (key, value) in expected {
                #expect(
                    annotations[prefix + key] == value,
                    "host\(index) \(prefix + key): \(annotations)",
                    sourceLocation: sourceLocation
                )
            }
            let data = annotations[prefix + "backend-data"]
            if kube.backend == "vxlan" {
                let mac = #/\{"VNI":1,"VtepMAC":"[0-9a-f]{2}(:[0-9a-f]{2}){5}"\}/#
                #expect(
                    data.map { $0.wholeMatch(of: mac) != nil } == true,
                    "host\(index) backend-data: \(data ?? "none")",
                    sourceLocation: sourceLocation
                )
            } else {
                #expect(data == "null", "host\(index) backend-data: \(data ?? "none")", sourceLocation: sourceLocation)
            }
            let patches = try kube.requests().filter {
                $0["method"]?.string == "PATCH"
                    && $0["path"]?.string == "/api/v1/nodes/\(kube.bed.nodeName(index))/status"
            }
            #expect(
                !patches.isEmpty
                    && patches.allSatisfy { $0["user"]?.string == User.flannel && $0["code"]?.text == "200" },
                "host\(index)'s status patches: \(patches.map(\.text))",
                sourceLocation: sourceLocation
            )
            return data
        }

        /// udp, with host 3's node registered before kube-controller-manager gave it a podCIDR:
        /// weftd 3 waits unready with flannel's line and the fix, once, then joins when the
        /// podCIDR is patched in as that line says. Host 2's operator chose its public IP with
        /// the node-public-ip annotation: a second address on its eth0, which weftd 2 binds and
        /// publishes and which its peers send to.
        @Test(.timeLimit(.minutes(2)))
        func udpWithAPodCIDRAssignedLateAndANodePublicIP() throws {
            let kube = try KubeBed(hosts: 3, backend: "udp")
            defer { kube.tearDown() }
            let bed = kube.bed
            let pinned = "198.18.0.102"
            try bed.exec(bed.host(2), ["/usr/sbin/ip", "addr", "add", "\(pinned)/24", "dev", "eth0"])
            try kube.startServer(nodes: [
                kube.node(1), kube.node(2, annotations: [Self.prefix + "node-public-ip": pinned]),
                kube.node(3, podCIDR: false),
            ])
            // No --iface for host 2: the annotation chooses, as --public-ip would.
            var daemons = [1: try bed.startWeftd(1), 2: try bed.startWeftd(2, iface: false)]
            var subnets = try bed.waitReady([1, 2], daemons)
            #expect(subnets == [1: "10.244.1.0/24", 2: "10.244.2.0/24"], "the subnets are the nodes' podCIDRs")
            #expect(
                daemons[2]!.lines(containing: "annotation \(Self.prefix)node-public-ip=\(pinned) replaces --public-ip")
                    .count == 1,
                "\(daemons[2]!.log.prefix(2000))"
            )
            #expect(
                daemons[2]!.lines(containing: "it holds --public-ip=\(pinned)").count == 1,
                "the annotation chose the interface: \(daemons[2]!.log.prefix(2000))"
            )

            daemons[3] = try bed.startWeftd(3)
            let unassigned = #"node "host3" pod cidr not assigned"#
            #expect(
                waitFor(WeftdBeds.hangGuard) { !daemons[3]!.lines(containing: unassigned).isEmpty } != nil,
                "weftd 3 never said why it waits: \(daemons[3]!.log.suffix(2000))"
            )
            // Several attempts later (a GET of its node each): still one line, still not ready.
            let retried = waitFor(WeftdBeds.hangGuard) {
                ((try? kube.requests()) ?? []).count(where: {
                    $0["method"]?.string == "GET" && $0["path"]?.string == "/api/v1/nodes/host3"
                }) >= 4
            }
            #expect(retried != nil, "weftd 3 does not retry its node")
            #expect(bed.readyz(3) == 503, "not ready without a podCIDR")
            #expect(bed.readyzBody(3).contains("pod cidr not assigned"), "\(bed.readyzBody(3))")
            let lines = daemons[3]!.lines(containing: unassigned)
            #expect(lines.count == 1, "logged once: \(lines)")
            #expect(
                lines.first?.contains("kubectl patch node host3") == true
                    && lines.first?.contains("--allocate-node-cidrs=true") == true,
                "the line names the fix: \(lines)"
            )

            try kube.request(
                "PATCH",
                "/api/v1/nodes/host3",
                body: #"{"spec":{"podCIDR":"10.244.3.0/24"}}"#,
                contentType: "application/strategic-merge-patch+json"
            )
            subnets[3] = try bed.waitReady([3], daemons)[3]
            #expect(subnets[3] == "10.244.3.0/24")

            for index in 1...3 {
                try bed.addressContainer(index, subnet: subnets[index]!)
                try Self.expectFlannelAnnotations(kube, index, publicIP: index == 2 ? pinned : nil)
            }
            for index in 1...3 {
                Self.expectRoutes(kube, index, Set(subnets.filter { $0.key != index }.values), "udp")
            }
            let routes = try kube.routes(1)
            #expect(
                routes.first { $0.subnet == subnets[2] }?.publicIP == pinned,
                "peers send to the pinned address: \(routes)"
            )
            WeftdEndToEndTests.pingMatrix(bed, subnets, "kube udp")
            for index in 1...3 {
                #expect(
                    daemons[index]!.lines(containing: "LOST").isEmpty,
                    "weftd \(index): \(daemons[index]!.log.suffix(1500))"
                )
                #expect(
                    daemons[index]!.lines(containing: "etcd").isEmpty,
                    "weftd \(index) in kube mode speaks of etcd: \(daemons[index]!.lines(containing: "etcd"))"
                )
                #expect(
                    daemons[index]!.log.contains("Kubernetes subnet manager, net config \(kube.netConf)"),
                    "\(daemons[index]!.log.prefix(1500))"
                )
                #expect(
                    daemons[index]!.lines(containing: "annotated node host\(index) ").first?.contains(
                        "backend-type empty, as flannel's udp backend writes it"
                    ) == true,
                    "\(daemons[index]!.lines(containing: "annotated node"))"
                )
            }
        }

        /// The API server away when weftd starts: before it chooses its interface weftd must read
        /// its node's node-public-ip, so it waits, alive and not ready with the reason, and a
        /// SIGTERM meanwhile stops it cleanly.
        @Test(.timeLimit(.minutes(2)))
        func anAPIServerAwayAtStartIsWaitedForAliveAndStoppable() throws {
            let kube = try KubeBed(hosts: 1, backend: "udp")
            defer { kube.tearDown() }
            let bed = kube.bed
            let weftd = try bed.startWeftd(1)
            let waiting = waitFor(WeftdBeds.hangGuard) {
                bed.readyz(1) == 503 && !weftd.lines(containing: "cannot reach the API server").isEmpty
            }
            #expect(waiting != nil, "\(weftd.log.suffix(2000))")
            #expect(
                bed.readyzBody(1).contains("198.18.0.254:6443"),
                "/readyz says what weftd waits for: \(bed.readyzBody(1))"
            )
            let healthz = try? bed.execResult(
                bed.host(1),
                [
                    "/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "2",
                    "http://127.0.0.1:8471/healthz",
                ]
            )
            #expect(healthz?.output == "200", "alive while waiting: \(healthz?.output ?? "no answer")")
            #expect(
                weftd.lines(containing: "using interface").isEmpty,
                "no interface chosen yet: \(weftd.log.suffix(2000))"
            )
            #expect(weftd.stop() == 0, "\(weftd.log.suffix(2000))")
            #expect(
                weftd.lines(containing: "received SIGTERM while waiting for the Kubernetes API, stopping").count == 1,
                "\(weftd.log.suffix(2000))"
            )
        }

        /// vxlan, then the API's harder moments on the same three nodes: a watch that expired
        /// while the server was away, a rotated token, and the server down past the readiness grace.
        @Test(.timeLimit(.minutes(3)))
        func vxlanThroughAnExpiredWatchARotatedTokenAndAnAPIOutage() throws {
            let kube = try KubeBed(hosts: 3, backend: "vxlan")
            defer { kube.tearDown() }
            let bed = kube.bed
            try kube.startServer(nodes: [kube.node(1), kube.node(2), kube.node(3)])
            let (daemons, subnets) = try bed.startReady([1, 2, 3])
            var macs: [Int: String] = [:]
            for index in 1...3 {
                try bed.addressContainer(index, subnet: subnets[index]!)
                macs[index] = try Self.expectFlannelAnnotations(kube, index)
            }
            for index in 1...3 {
                let others = Set(subnets.filter { $0.key != index }.values)
                Self.expectRoutes(kube, index, others, "vxlan")
                // Each peer's VTEP as its node's backend-data says.
                for route in try kube.routes(index) {
                    let owner = subnets.first { $0.value == route.subnet }!.key
                    #expect(
                        macs[owner]?.contains(route.vtepMAC ?? "-") == true,
                        "weftd \(index): \(route) vs host\(owner)'s \(macs[owner] ?? "")"
                    )
                }
            }
            WeftdEndToEndTests.pingMatrix(bed, subnets, "kube vxlan")
            let all = Set(subnets.values)
            func expectEveryone(_ extra: Set<String>, _ label: String) {
                for index in 1...3 {
                    Self.expectRoutes(kube, index, all.subtracting([subnets[index]!]).union(extra), label)
                }
            }

            // A watch expired: while the server is down a node (a flannel host running no weftd) is
            // deleted, another added, and the history compacted; back up, every weftd relists and
            // takes both changes.
            try kube.put(kube.peerNode("ghost", podCIDR: "10.244.200.0/24", publicIP: "198.18.0.9"))
            expectEveryone(["10.244.200.0/24"], "a node added")
            try kube.control("down")
            for index in 1...3 {
                #expect(
                    waitFor(WeftdBeds.hangGuard) {
                        !daemons[index]!.lines(containing: "route table no longer confirmed current").isEmpty
                    } != nil,
                    "weftd \(index) did not notice the server went away"
                )
            }
            try kube.deleteNode("ghost")
            try kube.put(kube.peerNode("away", podCIDR: "10.244.202.0/24", publicIP: "198.18.0.11"))
            try kube.control("compact")
            try kube.control("up")
            expectEveryone(["10.244.202.0/24"], "a node deleted and one added while the watch was away")
            for index in 1...3 {
                let relisted = daemons[index]!.lines(containing: "re-listed ")
                #expect(
                    relisted.count == 1 && relisted[0].contains("1 added, 1 removed"),
                    "weftd \(index): \(relisted)"
                )
            }

            // Token rotated: the server takes only the new token, weftd's file holds it; the closed
            // watches reconnect with it and a node added afterwards still becomes a route.
            let before = try kube.requests().count
            try kube.rotateFlannelToken(to: "flannel-token-weftd-it-2")
            #expect(try kube.statusCode(withToken: "flannel-token-weftd-it-1") == 401, "the old token still works")
            #expect(try kube.statusCode(withToken: "flannel-token-weftd-it-2") == 200)
            try kube.control("close-watches")
            try kube.put(kube.peerNode("late", podCIDR: "10.244.201.0/24", publicIP: "198.18.0.10"))
            expectEveryone(["10.244.202.0/24", "10.244.201.0/24"], "a node added after the token rotated")
            let watches = try kube.requests().dropFirst(before).filter {
                $0["query"]?.string?.contains("watch=") == true && $0["user"]?.string == User.flannel
                    && $0["code"]?.text == "200"
            }
            #expect(watches.count >= 3, "every weftd watches again with the new token: \(watches.map(\.text))")

            // The API server down past the 30 s readiness grace: packets keep flowing and the
            // route tables stay; /readyz turns 503 with the reason; all recovers after `up`.
            let target = "\(Bed.split(subnets[2]!).0).2"
            let pinger = try Started(
                [
                    "/usr/sbin/ip", "netns", "exec", bed.container(1), "/usr/bin/ping", "-n", "-q",
                    "-c", "200", "-i", "0.2", target,
                ],
                logPath: bed.directory + "/outage-ping.log"
            )
            bed.started.append(pinger)
            let tables = (1...3).map { kube.routedSubnets($0) }
            let downAt = ContinuousClock.now
            try kube.control("down")
            Thread.sleep(forTimeInterval: 10)
            for index in 1...3 { #expect(bed.readyz(index) == 200, "weftd \(index) unready within the grace") }
            for index in 1...3 {
                let unready = waitFor(.seconds(45), interval: .milliseconds(250)) { bed.readyz(index) == 503 }
                #expect(
                    unready != nil,
                    "weftd \(index) stayed ready with the API server down: \(daemons[index]!.log.suffix(1500))"
                )
                #expect(bed.readyzBody(index).contains("route table not confirmed current"), "\(bed.readyzBody(index))")
            }
            let outage = ContinuousClock.now - downAt
            #expect(outage >= .seconds(30), "unready after only \(outage)")
            #expect(
                (1...3).map { kube.routedSubnets($0) } == tables,
                "route tables changed while the API server was down"
            )
            #expect(bed.ping(from: 3, "\(Bed.split(subnets[1]!).0).2").status == 0, "container 3 → 1 during the outage")
            try kube.control("up")
            for index in 1...3 {
                // The watch's reconnect backoff has reached its 30 s cap by now.
                #expect(waitFor(.seconds(45)) { bed.readyz(index) == 200 } != nil, "weftd \(index) not ready again")
                // The server was away twice; the token's rotation was no outage.
                #expect(
                    daemons[index]!.lines(containing: "route table no longer confirmed current").count == 2
                        && daemons[index]!.lines(containing: "route table confirmed current again").count == 2,
                    "weftd \(index): \(daemons[index]!.lines(containing: "confirmed current"))"
                )
                #expect(
                    daemons[index]!.lines(containing: "LOST").isEmpty
                        && daemons[index]!.lines(containing: "engine for").isEmpty,
                    "weftd \(index) touched its dataplane: \(daemons[index]!.log.suffix(1500))"
                )
            }
            try kube.deleteNode("late")
            expectEveryone(["10.244.202.0/24"], "a node deleted after the outage")
            pinger.stop(SIGINT)
            let summary = pinger.log.split(separator: "\n").first { $0.contains("packets transmitted") } ?? "none"
            print("kube vxlan: API server down \(outage); container 1 → 2 pings meanwhile: \(summary)")
            // "N packets transmitted, M received, ...": stopped by SIGINT, the last echo may still be in flight.
            let counts = summary.split(separator: ",").prefix(2).map { Int($0.split(separator: " ").first ?? "") ?? -1 }
            #expect(
                counts.count == 2 && counts[0] >= 100 && counts[1] >= counts[0] - 1,
                "pings lost while the API server was down: \(summary)"
            )
        }

        /// host-gw: kernel routes from the nodes' annotations; a node deleted from the cluster
        /// takes its route out of the other hosts' tables.
        @Test(.timeLimit(.minutes(2)))
        func hostGatewayAndADeletedNode() throws {
            let kube = try KubeBed(hosts: 3, backend: "host-gw")
            defer { kube.tearDown() }
            let bed = kube.bed
            try kube.startServer(nodes: [kube.node(1), kube.node(2), kube.node(3)])
            let (daemons, subnets) = try bed.startReady([1, 2, 3])
            for index in 1...3 {
                try bed.addressContainer(index, subnet: subnets[index]!)
                try Self.expectFlannelAnnotations(kube, index)
            }
            func kernelRoutes(_ index: Int) -> Set<String> {
                // "<subnet> via <gateway>" of each Weft route (proto 87) in host N's main table.
                Set(
                    WeftdHostGatewayTests.weftRoutes(bed, index).split(separator: "\n").map {
                        $0.split(separator: " ").prefix(3).joined(separator: " ")
                    }
                )
            }
            func expectKernelRoutes(_ index: Int, _ peers: [Int], _ label: String) {
                let expected = Set(peers.map { "\(subnets[$0]!) via \(bed.hostIP($0))" })
                #expect(
                    waitFor(WeftdBeds.hangGuard) { kernelRoutes(index) == expected } != nil,
                    "\(label): host \(index)'s routes \(kernelRoutes(index).sorted()), expected \(expected.sorted())"
                )
            }
            for index in 1...3 { expectKernelRoutes(index, [1, 2, 3].filter { $0 != index }, "host-gw") }
            WeftdEndToEndTests.pingMatrix(bed, subnets, "kube host-gw")

            // Host 3 leaves the cluster: weftd stopped, its node deleted.
            let stopping = ContinuousClock.now
            #expect(daemons[3]!.stop(SIGTERM) == 0)
            let stopped = ContinuousClock.now - stopping
            #expect(stopped < .seconds(3), "weftd took \(stopped) to stop on SIGTERM: \(daemons[3]!.log.suffix(600))")
            try kube.deleteNode("host3")
            for index in 1...2 {
                expectKernelRoutes(index, [1, 2].filter { $0 != index }, "after host3's node was deleted")
                Self.expectRoutes(kube, index, [subnets[3 - index]!], "after host3's node was deleted")
            }
            let unreachable = bed.ping(from: 1, "\(Bed.split(subnets[3]!).0).2")
            #expect(unreachable.status != 0, "container 3 still reachable: \(unreachable.output)")
            #expect(
                bed.ping(from: 1, "\(Bed.split(subnets[2]!).0).2").status == 0,
                "container 2 unreachable after host3 left"
            )
        }
    }
}
