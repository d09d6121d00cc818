import Addressing
import CShims
import Engine
import Foundation
import Glibc
import Packets
import TestSupport
import TestThreads
import Testing

/// Tools the vxlan bed needs beyond ip and ping.
let vxlanToolsMissing: String? = {
    if let missing = TestNamespace.missing { return missing }
    for tool in ["/usr/sbin/bridge", "/usr/sbin/ethtool", "/usr/bin/tcpdump", "/usr/bin/tshark", "/usr/bin/iperf3"]
    where !FileManager.default.isExecutableFile(atPath: tool) {
        return "\(tool) is not installed (scripts/setup installs the test bed's tools)"
    }
    return nil
}()

/// The vxlan backend end to end: a Weft node and a kernel flannel.1 node interoperate both ways
/// (ping, TCP, frames as tshark dissects them), two Weft nodes talk, and every malformed or
/// unwelcome VXLAN datagram is dropped and counted by its reason.
@Suite(
    .ownThread,
    .enabled(if: vxlanToolsMissing == nil, "\(vxlanToolsMissing ?? "")"),
    .serialized,
    .timeLimit(.minutes(2))
)
struct VXLANEngineTests {
    @Test(
        .enabled(if: Engine.uringUnavailable == nil, "io_uring engine: \(Engine.uringUnavailable?.description ?? "")")
    )
    func uringNodeInteroperatesWithKernelFlannel() throws {
        try interoperate(.uring)
    }

    @Test func mmsgNodeInteroperatesWithKernelFlannel() throws {
        try interoperate(.mmsg)
    }

    /// Host A is flannel.1 exactly as flannel configures it; host B is Weft with A as its peer.
    private func interoperate(_ kind: EngineKind) throws {
        try TwoHostBed.with { bed in
            try bed.useVXLANMTU()
            try bed.finishChecksumsOnTheUnderlay()
            try bed.addKernelVTEPOnA()
            let engine = try bed.startVXLANEngine(in: bed.hostB, kind: kind)
            defer { engine.stop() }
            let (_, link) = try TwoHostBed.execute(bed.hostB, ["ip", "link", "show", "flannel0"])
            #expect(link.contains("mtu 1450"), "underlay 1500 − 50: \(link)")

            let capture = try UnderlayCapture(bed.hostB, device: "ul0")
            let there = try ping(from: bed.containerA, TwoHostBed.containerAddressB, count: 5)
            #expect(there.received == 5, "\(there.output)")
            let back = try ping(from: bed.containerB, TwoHostBed.containerAddressA, count: 5)
            #expect(back.received == 5, "\(back.output)")
            // Several flows from B, so the capture shows how outer source ports follow flows; slow
            // ones, so tshark has a few thousand frames to read rather than gigabytes.
            _ = try iperf3(
                from: bed.containerB,
                to: bed.containerA,
                address: TwoHostBed.containerAddressA,
                seconds: 1,
                streams: 4,
                bitsPerSecondPerStream: "5M"
            )
            _ = try iperf3(
                from: bed.containerA,
                to: bed.containerB,
                address: TwoHostBed.containerAddressB,
                seconds: 1,
                bitsPerSecondPerStream: "5M"
            )
            let frames = try capture.finish()
            let kernelToWeft = try iperf3(
                from: bed.containerA,
                to: bed.containerB,
                address: TwoHostBed.containerAddressB
            )
            let weftToKernel = try iperf3(
                from: bed.containerB,
                to: bed.containerA,
                address: TwoHostBed.containerAddressA
            )
            #expect(kernelToWeft > 0 && weftToKernel > 0)
            print(
                "vxlan \(kind.rawValue) ↔ kernel flannel.1: ping RTT A→B \(there.averageRTT ?? -1) ms, B→A \(back.averageRTT ?? -1) ms; "
                    + "TCP kernel→Weft \(String(format: "%.2f", kernelToWeft / 1e9)) Gbit/s, Weft→kernel "
                    + "\(String(format: "%.2f", weftToKernel / 1e9)) Gbit/s"
            )

            let ephemeral = try localPortRange(bed.hostB)
            let fromWeft = frames.filter { $0.outerSource == "\(TwoHostBed.publicB)" }
            let fromKernel = frames.filter { $0.outerSource == "\(TwoHostBed.publicA)" }
            #expect(
                fromWeft.count > 100 && fromKernel.count > 100,
                "\(fromWeft.count) frames from Weft, \(fromKernel.count) from flannel.1"
            )
            func expectEvery(_ frames: [VXLANFrame], _ what: String, _ holds: (VXLANFrame) -> Bool) {
                let failing = frames.filter { !holds($0) }
                #expect(
                    failing.isEmpty,
                    "\(what): \(failing.count) of \(frames.count) frames fail, e.g. \(failing.first.map(\.description) ?? "")"
                )
            }
            expectEvery(fromWeft, "VNI 1 to port 8472") { $0.vni == 1 && $0.destinationPort == 8472 }
            expectEvery(fromWeft, "inner Ethernet from B's VtepMAC to A's") {
                $0.innerEthernetSource == "\(TwoHostBed.macB)" && $0.innerEthernetDestination == "\(TwoHostBed.macA)"
            }
            // The underlay finishes checksums in software here, so the capture shows the real one.
            expectEvery(fromWeft, "outer UDP checksum present and good") {
                $0.checksumStatus == 1 && $0.checksum != "0x0000"
            }
            expectEvery(fromWeft, "source port in \(ephemeral), not 8472") {
                $0.sourcePort.map { ephemeral.contains($0) && $0 != 8472 } ?? false
            }
            var portsByFlow: [String: Set<Int>] = [:]
            for frame in fromWeft {
                if let flow = frame.innerTCPFlow, let port = frame.sourcePort {
                    portsByFlow[flow, default: []].insert(port)
                }
            }
            #expect(portsByFlow.count >= 6, "iperf3's control and data flows, each way: \(portsByFlow)")
            #expect(portsByFlow.values.allSatisfy { $0.count == 1 }, "one flow, one source port: \(portsByFlow)")
            #expect(Set(portsByFlow.values.flatMap { $0 }).count >= 2, "flows spread over source ports: \(portsByFlow)")
            expectEvery(fromKernel, "flannel.1's frames: VNI 1 to B's VtepMAC") {
                $0.vni == 1 && $0.innerEthernetDestination == "\(TwoHostBed.macB)"
            }
            expectEvery(fromKernel, "flannel.1 checksums by default (udpcsum)") { $0.checksumStatus == 1 }
            let statistics = engine.counters.snapshot()
            #expect(statistics.drops.total == 0, "\(statistics.drops.nonZero)")
            #expect(engine.workerFailures.isEmpty, "\(engine.workerFailures)")
        }
    }

    /// flannel's netlink device may send no outer checksum (`noudpcsum`, zero in the UDP header):
    /// Weft takes those datagrams as the kernel does.
    @Test func zeroChecksumDatagramsFromAKernelNodeAreAccepted() throws {
        try TwoHostBed.with { bed in
            try bed.useVXLANMTU()
            try bed.finishChecksumsOnTheUnderlay()
            try bed.addKernelVTEPOnA(udpChecksum: false)
            let engine = try bed.startVXLANEngine(in: bed.hostB, kind: Engine.uringUnavailable == nil ? .uring : .mmsg)
            defer { engine.stop() }
            let capture = try UnderlayCapture(bed.hostB, device: "ul0")
            let there = try ping(from: bed.containerA, TwoHostBed.containerAddressB, count: 3)
            #expect(there.received == 3, "\(there.output)")
            let back = try ping(from: bed.containerB, TwoHostBed.containerAddressA, count: 3)
            #expect(back.received == 3, "\(back.output)")
            #expect(
                try iperf3(
                    from: bed.containerA,
                    to: bed.containerB,
                    address: TwoHostBed.containerAddressB,
                    seconds: 1,
                    bitsPerSecondPerStream: "5M"
                ) > 0
            )
            let fromKernel = try capture.finish().filter { $0.outerSource == "\(TwoHostBed.publicA)" }
            #expect(fromKernel.count >= 6)
            #expect(fromKernel.allSatisfy { $0.checksum == "0x0000" }, "\(fromKernel.prefix(3))")
            #expect(engine.counters.snapshot().drops.total == 0)
        }
    }

    /// Two Weft nodes, one per I/O loop: pings cross both ways. Then, at B, one datagram per way a
    /// VXLAN frame can be wrong, sent from A's address (a peer) with a plain socket: each is dropped
    /// for its own reason and counted once; well-formed ones (also with a zero outer checksum, and
    /// to the broadcast MAC) reach container B; a well-formed frame from a host with no lease is
    /// dropped as unknown_sender, though a kernel vxlan device would take it.
    @Test func twoWeftNodesTalkAndEveryBadFrameIsCountedByReason() throws {
        try TwoHostBed.with { bed in
            try bed.useVXLANMTU()
            let kindA: EngineKind = Engine.uringUnavailable == nil ? .uring : .mmsg
            let engineA = try bed.startVXLANEngine(in: bed.hostA, kind: kindA)
            defer { engineA.stop() }
            let engineB = try bed.startVXLANEngine(in: bed.hostB, kind: .mmsg)
            defer { engineB.stop() }
            let there = try ping(from: bed.containerA, TwoHostBed.containerAddressB, count: 5)
            #expect(there.received == 5, "\(there.output)")
            let back = try ping(from: bed.containerB, TwoHostBed.containerAddressA, count: 5)
            #expect(back.received == 5, "\(back.output)")
            print(
                "vxlan Weft \(kindA.rawValue) ↔ Weft mmsg: ping RTT A→B \(there.averageRTT ?? -1) ms, B→A \(back.averageRTT ?? -1) ms"
            )

            let receiver = try bed.containerB.enter { try openUDP(TwoHostBed.containerAddressB, port: 9999) }
            defer { close(receiver) }
            let fromA = try bed.hostA.enter { try openUDP(TwoHostBed.publicA) }
            defer { close(fromA) }
            let zeroChecksum = try bed.hostA.enter { () throws -> Int32 in
                let fd = try openUDP(TwoHostBed.publicA)
                // SO_NO_CHECK: the kernel sends this socket's IPv4 datagrams with checksum 0.
                guard weft_setsockopt_int(fd, SOL_SOCKET, SO_NO_CHECK, 1) == 0 else {
                    close(fd)
                    throw TestFailure("SO_NO_CHECK")
                }
                return fd
            }
            defer { close(zeroChecksum) }
            let fromStranger = try bed.stranger.enter { try openUDP(TwoHostBed.publicStranger) }
            defer { close(fromStranger) }

            func inner(
                _ tag: String,
                source: IPv4Address = TwoHostBed.containerAddressA,
                destination: IPv4Address = TwoHostBed.containerAddressB
            ) -> [UInt8] {
                ipv4UDPPacket(source: source, destination: destination, port: 9999, payload: Array(tag.utf8))
            }
            let before = engineB.counters.snapshot()

            // Delivered: plain, zero outer checksum, broadcast inner destination.
            for (fd, frame, tag) in [
                (fromA, vxlanFrame(inner("ok-plain")), "ok-plain"),
                (zeroChecksum, vxlanFrame(inner("ok-zero-checksum")), "ok-zero-checksum"),
                (fromA, vxlanFrame(inner("ok-broadcast"), destination: .broadcast), "ok-broadcast"),
            ] {
                try sendUDP(fd, frame, to: TwoHostBed.publicB, port: TwoHostBed.vxlanPort)
                let received = receiveUDP(receiver, milliseconds: 2000)
                #expect(received.map { String(decoding: $0.payload, as: UTF8.self) } == tag, "\(tag) not delivered")
            }

            var wrongVersion = inner("x")
            wrongVersion[0] = 0x65
            var badIHL = inner("x")
            badIHL[0] = 0x44
            var longTotal = inner("x")
            longTotal[3] &+= 10
            let dropped: [(Int32, [UInt8], DropReason)] = [
                (fromA, vxlanFrame(inner("x"), flags: 0x00), .vxlanFlagClear),
                (fromA, vxlanFrame(inner("x"), vni: 2), .wrongVNI),
                (fromA, vxlanFrame(inner("x"), destination: MACAddress(0x0200_C612_0099)), .notOurMAC),
                (fromA, vxlanFrame(inner("x"), destination: MACAddress(0x0100_5E00_0001)), .notOurMAC),
                (fromA, vxlanFrame(inner("x"), etherType: EtherType.arp), .notIPv4),
                (fromA, vxlanFrame(inner("x"), etherType: EtherType.ipv6), .notIPv4),
                (fromA, Array(vxlanFrame(inner("x")).prefix(20)), .truncated),
                (fromA, vxlanFrame(Array(inner("x").prefix(12))), .truncated),
                (fromA, vxlanFrame(wrongVersion), .wrongVersion),
                (fromA, vxlanFrame(badIHL), .badIHL),
                (fromA, vxlanFrame(longTotal), .badTotalLength),
                (fromA, vxlanFrame(inner("x", source: IPv4Address(10, 244, 3, 5))), .spoofedSource),
                (fromA, vxlanFrame(inner("x", destination: TwoHostBed.publicStranger)), .notOurSubnet),
                (fromA, vxlanFrame(inner("x", destination: TwoHostBed.containerAddressA)), .notOurSubnet),
                (fromStranger, vxlanFrame(inner("x")), .unknownSender),
            ]
            for (fd, frame, _) in dropped { try sendUDP(fd, frame, to: TwoHostBed.publicB, port: TwoHostBed.vxlanPort) }
            #expect(receiveUDP(receiver, milliseconds: 500) == nil, "a dropped frame reached container B")

            let after = engineB.counters.snapshot()
            var expected: [DropReason: UInt64] = [:]
            for (_, _, reason) in dropped { expected[reason, default: 0] += 1 }
            for reason in DropReason.allCases {
                #expect(after.drops[reason] - before.drops[reason] == expected[reason] ?? 0, "\(reason)")
            }
            #expect(after[.wireReceivedPackets] - before[.wireReceivedPackets] == UInt64(3 + dropped.count))
            #expect(after[.tunWrittenPackets] - before[.tunWrittenPackets] == 3)
            #expect(engineA.workerFailures.isEmpty && engineB.workerFailures.isEmpty)
        }
    }

    /// ip_local_port_range of `namespace`: where the kernel picks the source-port sockets' ports.
    private func localPortRange(_ namespace: TestNamespace) throws -> ClosedRange<Int> {
        let (_, text) = try TwoHostBed.execute(namespace, ["cat", "/proc/sys/net/ipv4/ip_local_port_range"])
        let numbers = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).compactMap { Int($0) }
        guard numbers.count == 2 else { throw TestFailure("ip_local_port_range: \(text)") }
        return numbers[0]...numbers[1]
    }
}

/// TestSupport's VXLAN frame builder, for MACs as this target holds them (B's device by default).
func vxlanFrame(
    _ inner: [UInt8],
    flags: UInt8 = 0x08,
    vni: UInt32 = 1,
    destination: MACAddress = TwoHostBed.macB,
    source: MACAddress = TwoHostBed.macA,
    etherType: UInt16 = 0x0800
) -> [UInt8] {
    vxlanFrame(
        inner,
        flags: flags,
        vni: vni,
        destination: destination.bytes,
        source: source.bytes,
        etherType: etherType
    )
}
