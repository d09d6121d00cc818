import Foundation
import Glibc
import Status
import TestSupport
import TestThreads
import Testing

extension WeftdBeds {
    /// --port-filter (on by default) with real weftd processes, etcd and nft: the backend's port
    /// takes datagrams from the peers' PublicIPs only. A namespace on the underlay that holds no
    /// lease sends well-formed datagrams posing as a peer's container: nft drops them before the
    /// socket and /metrics counts them, while the engine never sees one; the set follows peers
    /// that join and leave, the resync puts back a flushed ruleset, and a restart keeps filtering.
    @Suite(
        .serialized,
        .enabled(
            if: weftUnavailable == nil && Bed.nftPath != nil,
            "\(weftUnavailable ?? "WeftdPortFilterTests need nft (apt-get install nftables)")"
        )
    )
    struct WeftdPortFilterTests {
        static let strangerIP = "198.18.0.200"
        static let vxlanConfig = #"{"Network":"10.244.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan"}}"#
        static let packets = "weft_port_filter_dropped_packets_total"
        static let bytes = "weft_port_filter_dropped_bytes_total"

        @Test(.timeLimit(.minutes(4)))
        func vxlanPortOpenToPeersOnlyFollowingJoinsAndLeaves() throws {
            let bed = try Bed(hosts: 3)
            defer { bed.tearDown() }
            let stranger = try bed.addOutsideHost(Self.strangerIP)
            try bed.startEtcd()
            try bed.putConfig(Self.vxlanConfig)
            let flags = ["--iptables-resync", "1"]
            var (daemons, subnets) = try bed.startReady([1, 2], extra: flags)
            for index in 1...2 { try bed.addressContainer(index, subnet: subnets[index]!) }
            #expect(
                waitFor(WeftdBeds.hangGuard) { Self.peers(bed, 1) == [bed.hostIP(2)] } != nil,
                "host 1's set: \(Self.peers(bed, 1) ?? [])"
            )
            #expect(
                waitFor(WeftdBeds.hangGuard) { Self.peers(bed, 2) == [bed.hostIP(1)] } != nil,
                "host 2's set: \(Self.peers(bed, 2) ?? [])"
            )
            #expect(
                waitFor(WeftdBeds.hangGuard) {
                    !daemons[1]!.lines(containing: "port filter: UDP 8472 open to 1 peer(s) only").isEmpty
                } != nil,
                "\(daemons[1]!.log.suffix(2000))"
            )
            let container = { (index: Int) in "\(Bed.split(subnets[index]!).0).2" }
            Self.expectPath(bed, 1, container(2))
            Self.expectPath(bed, 2, container(1))

            // 1. The stranger's VXLAN datagrams (inner packet container 2 → container 1): dropped
            //    by nft and counted, bytes included; the engine reads none of them.
            let before = try WeftdFloodTests.stats(bed)
            let counted = bed.metric(1, Self.packets) ?? -1
            #expect(counted == 0, "nothing dropped yet: \(counted)")
            let datagram = Self.vxlanFrame(source: container(2), destination: container(1))
            try Self.send(10, datagram, from: stranger, to: bed.hostIP(1), port: 8472)
            #expect(
                waitFor(WeftdBeds.hangGuard, interval: .milliseconds(100)) { bed.metric(1, Self.packets) == 10 } != nil,
                "\(Self.packets) = \(bed.metric(1, Self.packets) ?? -1)"
            )
            #expect(bed.metric(1, Self.bytes) == Double(10 * (28 + datagram.count)))
            let after = try WeftdFloodTests.stats(bed)
            #expect(
                after.traffic["wire_received_packets"] == before.traffic["wire_received_packets"],
                "the engine read a datagram"
            )
            #expect(after.drops == before.drops, "the engine counted a drop: \(after.drops)")
            #expect(
                after.portFilter == StatsReport.Dropped(packets: 10, bytes: UInt64(10 * (28 + datagram.count))),
                "/v1/stats and weft stats show the filter's drops: \(String(describing: after.portFilter))"
            )
            let metrics = try bed.exec(
                bed.host(1),
                ["/usr/bin/curl", "-sf", "-m", "5", "http://127.0.0.1:8471/metrics"]
            )
            #expect(
                metrics.contains("# HELP \(Self.packets) ") && metrics.contains("# HELP \(Self.bytes) "),
                "\(metrics)"
            )
            Self.expectPath(bed, 1, container(2))

            // 2. A peer joining later is let in as soon as its lease is seen; both ways work.
            daemons[3] = try bed.startWeftd(3, extra: flags)
            subnets[3] = try bed.waitReady([3], daemons)[3]
            try bed.addressContainer(3, subnet: subnets[3]!)
            #expect(
                waitFor(WeftdBeds.hangGuard) { Self.peers(bed, 1) == [bed.hostIP(2), bed.hostIP(3)] } != nil,
                "\(Self.peers(bed, 1) ?? [])"
            )
            #expect(
                !daemons[1]!.lines(containing: "port filter: UDP 8472 open to 2 peer(s) only; added \(bed.hostIP(3))")
                    .isEmpty
            )
            Self.expectPath(bed, 3, container(1))
            Self.expectPath(bed, 1, container(3))

            // 3. A peer leaving (stopped, its lease deleted) is shut out again: its datagrams are the stranger's now.
            #expect(daemons[3]!.stop(SIGTERM) == 0)
            let key = "\(Bed.prefix)/subnets/\(subnets[3]!.replacingOccurrences(of: "/", with: "-"))"
            try bed.etcdctlMust(["del", key])
            #expect(
                waitFor(WeftdBeds.hangGuard) { Self.peers(bed, 1) == [bed.hostIP(2)] } != nil,
                "\(Self.peers(bed, 1) ?? [])"
            )
            #expect(
                !daemons[1]!.lines(containing: "removed \(bed.hostIP(3))").isEmpty,
                "\(daemons[1]!.log.suffix(1500))"
            )
            try Self.send(
                3,
                Self.vxlanFrame(source: container(3), destination: container(1)),
                from: bed.host(3),
                to: bed.hostIP(1),
                port: 8472
            )
            #expect(
                waitFor(WeftdBeds.hangGuard, interval: .milliseconds(100)) { bed.metric(1, Self.packets) == 13 } != nil,
                "\(Self.packets) = \(bed.metric(1, Self.packets) ?? -1)"
            )

            // 4. The ruleset flushed by hand: back within a resync, the count carried on, still filtering.
            try bed.exec(bed.host(1), [Bed.nftPath!, "flush", "ruleset"])
            #expect(
                waitFor(WeftdBeds.hangGuard) { Self.peers(bed, 1) == [bed.hostIP(2)] } != nil,
                "not put back: \(Self.peers(bed, 1) ?? [])"
            )
            #expect(bed.metric(1, Self.packets) == 13, "\(bed.metric(1, Self.packets) ?? -1)")
            try Self.send(2, datagram, from: stranger, to: bed.hostIP(1), port: 8472)
            #expect(
                waitFor(WeftdBeds.hangGuard, interval: .milliseconds(100)) { bed.metric(1, Self.packets) == 15 } != nil,
                "\(Self.packets) = \(bed.metric(1, Self.packets) ?? -1)"
            )
            Self.expectPath(bed, 2, container(1))
            #expect(bed.readyz(1) == 200)

            // 5. A restart keeps filtering: the set an earlier run left is in the new table before
            //    /readyz turns 200; the new process counts from zero.
            #expect(daemons[1]!.stop(SIGTERM) == 0)
            #expect(Self.peers(bed, 1) == [bed.hostIP(2)], "a stop leaves the filter, as the other rules")
            daemons[1] = try bed.startWeftd(1, extra: flags)
            _ = try bed.waitReady([1], daemons)
            #expect(Self.peers(bed, 1) == [bed.hostIP(2)], "\(WeftdTrafficRulesTests.listing(bed, 1) ?? "no table")")
            #expect(
                !daemons[1]!.lines(containing: "port filter: UDP 8472 open to the 1 peer(s) an earlier run left")
                    .isEmpty,
                "\(daemons[1]!.log.suffix(1500))"
            )
            try Self.send(1, datagram, from: stranger, to: bed.hostIP(1), port: 8472)
            #expect(
                waitFor(WeftdBeds.hangGuard, interval: .milliseconds(100)) { bed.metric(1, Self.packets) == 1 } != nil,
                "\(Self.packets) = \(bed.metric(1, Self.packets) ?? -1)"
            )
            Self.expectPath(bed, 1, container(2))
        }

        /// The udp backend's port 8285 filtered the same way on host 1, beside the engine's own
        /// check; host 2 runs with --port-filter=false and takes the stranger's datagrams into its
        /// engine (dropped there as unknown_sender), as flanneld would. --ip-masq-cleanup removes
        /// the filter with the rest of the table.
        @Test(.timeLimit(.minutes(3)))
        func udpPortFilteredUnlessTurnedOff() throws {
            let bed = try Bed(hosts: 2)
            defer { bed.tearDown() }
            let stranger = try bed.addOutsideHost(Self.strangerIP)
            try bed.startEtcd()
            try bed.putConfig(Bed.udpConfig)
            var daemons: [Int: Started] = [:]
            daemons[1] = try bed.startWeftd(1, extra: ["--ip-masq-cleanup"])
            daemons[2] = try bed.startWeftd(2, extra: ["--port-filter=false"])
            let subnets = try bed.waitReady([1, 2], daemons)
            for index in 1...2 { try bed.addressContainer(index, subnet: subnets[index]!) }
            let container = { (index: Int) in "\(Bed.split(subnets[index]!).0).2" }
            #expect(
                waitFor(WeftdBeds.hangGuard) { Self.peers(bed, 1) == [bed.hostIP(2)] } != nil,
                "host 1's set: \(Self.peers(bed, 1) ?? [])"
            )
            #expect(Self.peers(bed, 2) == nil, "host 2 keeps no filter")
            #expect(WeftdTrafficRulesTests.listing(bed, 2)?.contains("chain input") == false)
            Self.expectPath(bed, 1, container(2))
            Self.expectPath(bed, 2, container(1))

            let inner = ipv4UDPPacket(
                source: WeftdFloodTests.octets(container(2)),
                destination: WeftdFloodTests.octets(container(1)),
                port: 9999,
                payload: [UInt8](repeating: 0xAB, count: 32)
            )
            let before = try WeftdFloodTests.stats(bed)
            try Self.send(4, inner, from: stranger, to: bed.hostIP(1), port: 8285)
            #expect(
                waitFor(WeftdBeds.hangGuard, interval: .milliseconds(100)) { bed.metric(1, Self.packets) == 4 } != nil,
                "\(Self.packets) = \(bed.metric(1, Self.packets) ?? -1)"
            )
            #expect(bed.metric(1, Self.bytes) == Double(4 * (28 + inner.count)))
            let after = try WeftdFloodTests.stats(bed)
            #expect(
                after.drops == before.drops
                    && after.traffic["wire_received_packets"] == before.traffic["wire_received_packets"]
            )

            // Host 2 without the filter: the engine's own check drops them, nft counts nothing.
            let unknown = { (bed.metric(2, "weft_drops_total{reason=\"unknown_sender\"}") ?? 0) }
            let unknownBefore = unknown()
            try Self.send(4, inner, from: stranger, to: bed.hostIP(2), port: 8285)
            #expect(
                waitFor(WeftdBeds.hangGuard, interval: .milliseconds(100)) { unknown() == unknownBefore + 4 } != nil,
                "unknown_sender: \(unknown())"
            )
            #expect(bed.metric(2, Self.packets) == nil, "no filter, no series")

            #expect(daemons[1]!.stop(SIGTERM) == 0)
            #expect(
                WeftdTrafficRulesTests.listing(bed, 1) == nil,
                "--ip-masq-cleanup deletes the filter with the table"
            )
        }

        /// Container N pings `address` until one answer comes back (the peers' routes and sets
        /// arrive within the watch latency).
        static func expectPath(
            _ bed: Bed,
            _ from: Int,
            _ address: String,
            sourceLocation: SourceLocation = #_sourceLocation
        ) {
            let reached = waitFor(WeftdBeds.hangGuard, interval: .milliseconds(200)) {
                bed.ping(from: from, address).status == 0
            }
            #expect(
                reached != nil,
                "container \(from) → \(address): \(bed.ping(from: from, address).output)",
                sourceLocation: sourceLocation
            )
        }

        /// The elements of host N's `set ip weft peers` (`family` ip6: `set ip6 weft peers`),
        /// sorted; nil when there is no such set.
        static func peers(_ bed: Bed, _ index: Int, family: String = "ip") -> [String]? {
            guard
                let result = try? bed.execResult(
                    bed.host(index),
                    [Bed.nftPath!, "list", "set", family, "weft", "peers"]
                ), result.status == 0
            else {
                return nil
            }
            guard let start = result.output.range(of: "elements = {"),
                let end = result.output[start.upperBound...].firstIndex(of: "}")
            else { return [] }
            return result.output[start.upperBound..<end]
                .split(whereSeparator: { $0 == "," || $0.isWhitespace }).map(String.init)
                .sorted {
                    family == "ip"
                        ? WeftdFloodTests.octets($0).lexicographicallyPrecedes(WeftdFloodTests.octets($1)) : $0 < $1
                }
        }

        /// A VXLAN datagram's payload as flannel.1 would send it (VNI 1) carrying a UDP packet
        /// `source` → `destination`.
        static func vxlanFrame(source: String, destination: String) -> [UInt8] {
            let inner = ipv4UDPPacket(
                source: WeftdFloodTests.octets(source),
                destination: WeftdFloodTests.octets(destination),
                port: 9999,
                payload: [UInt8](repeating: 0xAB, count: 32)
            )
            let header: [UInt8] = [0x08, 0, 0, 0, 0, 0, 0x01, 0]
            let ethernet: [UInt8] = [0x0e, 0, 0, 0, 0, 0x01, 0x0e, 0, 0, 0, 0, 0x02, 0x08, 0x00]
            return header + ethernet + inner
        }

        /// Sends `datagram` `count` times from a thread in `namespace` to `host`:`port` (an IPv4
        /// or an IPv6 address).
        static func send(
            _ count: Int,
            _ datagram: [UInt8],
            from namespace: String,
            to host: String,
            port: UInt16
        ) throws {
            try inNetworkNamespace(namespace) { () throws in
                var address = sockaddr_storage()
                let length: Int
                if host.contains(":") {
                    length = MemoryLayout<sockaddr_in6>.size
                    try withUnsafeMutableBytes(of: &address) { raw in
                        let ipv6 = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in6.self)
                        ipv6.pointee.sin6_family = sa_family_t(AF_INET6)
                        ipv6.pointee.sin6_port = port.bigEndian
                        guard inet_pton(AF_INET6, host, &ipv6.pointee.sin6_addr) == 1 else {
                            throw BedFailure("not an IPv6 address: \(host)")
                        }
                    }
                } else {
                    length = MemoryLayout<sockaddr_in>.size
                    withUnsafeMutableBytes(of: &address) { raw in
                        let ipv4 = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in.self)
                        ipv4.pointee.sin_family = sa_family_t(AF_INET)
                        ipv4.pointee.sin_port = port.bigEndian
                        ipv4.pointee.sin_addr.s_addr = inet_addr(host)
                    }
                }
                let fd = socket(Int32(address.ss_family), Int32(SOCK_DGRAM.rawValue), 0)
                guard fd >= 0 else { throw BedFailure("socket: \(String(cString: strerror(errno)))") }
                defer { close(fd) }
                for _ in 0..<count {
                    let sent = withUnsafePointer(to: &address) { pointer in
                        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { destination in
                            datagram.withUnsafeBytes {
                                sendto(fd, $0.baseAddress, $0.count, 0, destination, socklen_t(length))
                            }
                        }
                    }
                    guard sent == datagram.count else {
                        throw BedFailure("sendto \(host):\(port): \(String(cString: strerror(errno)))")
                    }
                }
            }
        }
    }
}
