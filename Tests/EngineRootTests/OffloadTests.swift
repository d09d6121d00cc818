import Addressing
import CShims
import Capture
import Engine
import Foundation
import Glibc
import Packets
import Routes
import Synchronization
import TestSupport
import TestThreads
import Testing

/// Why the offload tests cannot run here (tcpdump missing), or nil.
let missingOffloadTool: String? = {
    for tool in ["/usr/bin/tcpdump"] where !FileManager.default.isExecutableFile(atPath: tool) {
        return "\(tool) is not installed (scripts/setup installs it)"
    }
    return nil
}()

/// The uring engine with offloads (TUN TSO4 + CSUM, UDP GSO sends, UDP GRO receives coalesced) on
/// the two-host bed: TCP both ways (48 MB, every byte checked), every inner checksum on the underlay verified
/// independently, super-packets split across sends, and a node with offloads talking to one without.
/// In EngineForwardingTests' serialized suite: their flood measures the process's RSS, which these
/// engines' 18 MB of buffers would disturb if both ran at once.
extension EngineForwardingTests {
    @Test(
        .enabled(if: Engine.uringUnavailable == nil, "io_uring engine: \(Engine.uringUnavailable?.description ?? "")"),
        .enabled(if: missingOffloadTool == nil, "\(missingOffloadTool ?? "")")
    )
    func offloadsOnBothHostsCarryTCPWithValidChecksums() throws {
        try OffloadBed.withMixedNodes(offloadsOnB: true) { bed, engineA, engineB in

            let there = try ping(from: bed.containerA, TwoHostBed.containerAddressB, count: 3)
            #expect(there.received == 3, "\(there.output)")
            let back = try ping(from: bed.containerB, TwoHostBed.containerAddressA, count: 3)
            #expect(back.received == 3, "\(back.output)")

            let capturePath = NSTemporaryDirectory() + "weft-offload-\(getpid()).pcap"
            defer { unlink(capturePath) }
            let capture = try startCapture(
                in: bed.hostB,
                device: "ul0",
                path: capturePath,
                filter: ["udp", "port", "8285"]
            )
            defer { OffloadBed.forceStop(capture) }

            // UDP first: under the TCP flood tcpdump falls behind, and a kill drops its backlog.
            try OffloadBed.udpDatagramsArrive(from: bed.containerA, to: bed.containerB, count: 20, size: 1000)
            let forward = try TCPTransfer.run(
                from: bed.containerA,
                to: bed.containerB,
                address: TwoHostBed.containerAddressB
            )
            #expect(forward.isComplete, "A → B: \(forward)")
            let reverse = try TCPTransfer.run(
                from: bed.containerB,
                to: bed.containerA,
                address: TwoHostBed.containerAddressA
            )
            #expect(reverse.isComplete, "B → A: \(reverse)")
            // The traffic is over and tcpdump -U wrote each packet whole as it came, so a kill
            // loses nothing (SIGTERM would not do: children inherit the test runner's blocked mask).
            Thread.sleep(forTimeInterval: 0.5)
            OffloadBed.forceStop(capture)

            let summary = try OffloadUnderlayCapture(path: capturePath)
            #expect(summary.innerTCP > 2000, "\(summary)")
            #expect(summary.innerUDP >= 20, "\(summary)")
            #expect(summary.badIPChecksums == 0, "\(summary)")
            #expect(summary.badTransportChecksums == 0, "\(summary)")
            #expect(summary.malformed == 0, "\(summary)")
            // A 64 KB super-packet of 1,432-byte payloads is 46 datagrams of 1,472 bytes; one send
            // takes at most 65,507 / 1,472 = 44 of them, so the biggest sends seen carry exactly 44
            // and the super-packet's rest went in a second send.
            #expect(
                summary.largestSend
                    == SegmentLayout(
                        count: 46,
                        gap: 0,
                        stride: 1472,
                        segmentLength: 1472,
                        lastSegmentLength: 1472
                    ).segmentsPerSend(),
                "\(summary)"
            )

            for (engine, name) in [(engineA, "A"), (engineB, "B")] {
                let statistics = engine.counters.snapshot()
                #expect(statistics.drops.nonZero.isEmpty, "\(name) dropped \(statistics.drops.nonZero)")
                #expect(statistics[.sendErrors] == 0 && statistics[.tunWriteErrors] == 0, "\(name)")
                #expect(statistics[.segmentationFallbacks] == 0, "\(name)")
                // Super-packets: many datagrams per TUN read, and many per TUN write.
                #expect(
                    statistics[.wireSentPackets] > 4 * statistics[.tunReadPackets],
                    "\(name): \(statistics[.wireSentPackets]) sent for \(statistics[.tunReadPackets]) read"
                )
                #expect(statistics[.coalescedSegments] > statistics[.tunWrittenPackets], "\(name)")
            }
            #expect(engineA.workerFailures.isEmpty && engineB.workerFailures.isEmpty)
        }
    }

    @Test(
        .enabled(if: Engine.uringUnavailable == nil, "io_uring engine: \(Engine.uringUnavailable?.description ?? "")"),
        .enabled(if: missingOffloadTool == nil, "\(missingOffloadTool ?? "")")
    )
    func nodeWithOffloadsTalksToNodeWithout() throws {
        try OffloadBed.withMixedNodes { bed, engineA, engineB in

            let there = try ping(from: bed.containerA, TwoHostBed.containerAddressB, count: 3)
            #expect(there.received == 3, "\(there.output)")
            let back = try ping(from: bed.containerB, TwoHostBed.containerAddressA, count: 3)
            #expect(back.received == 3, "\(back.output)")
            let forward = try TCPTransfer.run(
                from: bed.containerA,
                to: bed.containerB,
                address: TwoHostBed.containerAddressB
            )
            #expect(forward.isComplete, "offloads → plain: \(forward)")
            let reverse = try TCPTransfer.run(
                from: bed.containerB,
                to: bed.containerA,
                address: TwoHostBed.containerAddressA
            )
            #expect(reverse.isComplete, "plain → offloads: \(reverse)")
            try OffloadBed.udpDatagramsArrive(from: bed.containerA, to: bed.containerB, count: 10, size: 1200)
            try OffloadBed.udpDatagramsArrive(from: bed.containerB, to: bed.containerA, count: 10, size: 1200)
            for (engine, name) in [(engineA, "A"), (engineB, "B")] {
                let statistics = engine.counters.snapshot()
                #expect(statistics.drops.nonZero.isEmpty, "\(name) dropped \(statistics.drops.nonZero)")
                #expect(statistics[.sendErrors] == 0 && statistics[.tunWriteErrors] == 0, "\(name)")
            }
        }
    }

}

extension EngineForwardingTests {
    /// Small packets read from the TUN back to back leave in UDP_SEGMENT batches (one per peer,
    /// socket and length) and arrive as the datagrams they were, in order, at a node without
    /// offloads and at one with them, which writes runs of them to its TUN as UDP super-packets.
    @Test(
        .enabled(if: Engine.uringUnavailable == nil, "io_uring engine: \(Engine.uringUnavailable?.description ?? "")"),
        arguments: [false, true]
    )
    func smallPacketsLeaveInBatchesAndArriveInOrder(offloadsOnB: Bool) throws {
        try OffloadBed.withMixedNodes(offloadsOnB: offloadsOnB) { bed, engineA, engineB in
            let there = try ping(from: bed.containerA, TwoHostBed.containerAddressB, count: 1)
            #expect(there.received == 1, "\(there.output)")

            // Runs of one length, a change of length in the middle of a run, a full-size packet.
            let sizes =
                Array(repeating: 200, count: 40) + [300] + Array(repeating: 200, count: 40)
                + Array(repeating: 100, count: 18) + [1400]
            for _ in 0..<3 {
                try OffloadBed.udpDatagramsArrive(from: bed.containerA, to: bed.containerB, sizes: sizes)
            }
            let sender = engineA.counters.snapshot()
            #expect(sender[.batchedPackets] > 0, "no packet left in a batch")
            #expect(sender[.batchedPackets] <= sender[.wireSentPackets])
            #expect(sender.drops.nonZero.isEmpty && sender[.sendErrors] == 0 && sender[.segmentationFallbacks] == 0)
            let receiver = engineB.counters.snapshot()
            #expect(receiver.drops.nonZero.isEmpty && receiver[.tunWriteErrors] == 0)
            if offloadsOnB {
                #expect(receiver[.coalescedSegments] > 0, "no datagram reached the TUN coalesced")
            }
        }
    }
}

extension EngineForwardingTests {
    /// A container's UDP GSO send (UDP_SEGMENT) reaches the TUN as one super-packet (USO4) and
    /// leaves as the datagrams it stands for, each intact. A node without offloads writes them to
    /// its TUN one by one; a node with them receives them in one UDP_GRO read and writes them as
    /// one UDP super-packet (GSO_UDP_L4), which the kernel splits again for the container's socket.
    @Test(
        .enabled(if: Engine.uringUnavailable == nil, "io_uring engine: \(Engine.uringUnavailable?.description ?? "")"),
        arguments: [false, true]
    )
    func udpSegmentationSendsCrossAsTheirDatagrams(offloadsOnB: Bool) throws {
        try OffloadBed.withMixedNodes(offloadsOnB: offloadsOnB) { bed, engineA, engineB in
            let there = try ping(from: bed.containerA, TwoHostBed.containerAddressB, count: 1)
            #expect(there.received == 1, "\(there.output)")

            let inbox = try bed.containerB.enter { try openUDP(TwoHostBed.containerAddressB, port: 9998) }
            defer { close(inbox) }
            let outbox = try bed.containerA.enter { try openUDP(TwoHostBed.containerAddressA) }
            defer { close(outbox) }
            guard weft_setsockopt_int(outbox, Int32(IPPROTO_UDP), UDP_SEGMENT, 1000) == 0 else {
                throw TestFailure("UDP_SEGMENT refused in the container")
            }
            // Ten datagrams of 1,000 bytes and a last one of 500, in one send.
            let payloads = (0..<11).map { index in
                (0..<(index == 10 ? 500 : 1000)).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ index) }
            }
            let before = engineA.counters.snapshot()
            let receiverBefore = engineB.counters.snapshot()
            try sendUDP(outbox, payloads.flatMap { $0 }, to: TwoHostBed.containerAddressB, port: 9998)
            var received: [[UInt8]] = []
            while received.count < payloads.count, let datagram = receiveUDP(inbox, milliseconds: 2000) {
                received.append(datagram.payload)
            }
            #expect(
                received == payloads,
                "\(received.count) of \(payloads.count) datagrams arrived intact and in order"
            )

            // A send is counted when its completion is reaped, which may come a moment after the
            // datagrams reached the container (seen under the full suite's load).
            var after = engineA.counters.snapshot()
            _ = waitUntil(timeout: .milliseconds(2000)) {
                after = engineA.counters.snapshot()
                return after[.wireSentPackets] - before[.wireSentPackets] >= 11
            }
            // One TUN read carried all eleven.
            #expect(after[.tunReadPackets] - before[.tunReadPackets] == 1)
            #expect(after[.wireSentPackets] - before[.wireSentPackets] == 11)
            #expect(after.drops.nonZero.isEmpty && after[.sendErrors] == 0)
            // A TUN write is counted when its completion is reaped, a moment after the container
            // has the datagrams.
            var receiver = engineB.counters.snapshot()
            _ = waitUntil(timeout: .milliseconds(2000)) {
                receiver = engineB.counters.snapshot()
                return receiver[.tunWrittenPackets] - receiverBefore[.tunWrittenPackets] >= (offloadsOnB ? 1 : 11)
            }
            #expect(receiver.drops.nonZero.isEmpty && receiver[.tunWriteErrors] == 0)
            let written = receiver[.tunWrittenPackets] - receiverBefore[.tunWrittenPackets]
            let coalesced = receiver[.coalescedSegments] - receiverBefore[.coalescedSegments]
            if offloadsOnB {
                // One UDP_GRO receive of the eleven, written as one super-packet.
                #expect(written == 1 && coalesced == 10, "\(written) TUN writes, \(coalesced) datagrams coalesced")
            } else {
                #expect(written == 11 && coalesced == 0, "\(written) TUN writes, \(coalesced) datagrams coalesced")
            }
        }
    }
}

extension EngineForwardingTests {
    /// An underlay device without tx checksumming (what flannel's vxlan advice, `ethtool -K … tx
    /// off`, leaves behind): TCP crosses whole with offloads. Linux 6.18 checksums such UDP GSO
    /// sends in software; older kernels refuse them with EIO, and then the worker sends one
    /// datagram per segment and says so in one line. Either way, the counter and the log agree.
    @Test(
        .enabled(if: Engine.uringUnavailable == nil, "io_uring engine: \(Engine.uringUnavailable?.description ?? "")")
    )
    func offloadsCrossAnUnderlayWithoutChecksumOffload() throws {
        let lines = Mutex<[String]>([])
        try OffloadBed.withMixedNodes(offloadsOnB: true, logB: { line in lines.withLock { $0.append(line) } }) {
            bed,
            engineA,
            engineB in
            // Before any traffic: a send reads its device's features when it is made.
            let (status, output) = try TwoHostBed.execute(bed.hostB, ["ethtool", "-K", "ul0", "tx", "off"])
            guard status == 0 else { throw TestFailure("ethtool -K ul0 tx off in \(bed.hostB.name): \(output)") }

            let there = try ping(from: bed.containerB, TwoHostBed.containerAddressA, count: 3)
            #expect(there.received == 3, "\(there.output)")
            let transfer = try TCPTransfer.run(
                from: bed.containerB,
                to: bed.containerA,
                address: TwoHostBed.containerAddressA
            )
            #expect(transfer.isComplete, "B → A: \(transfer)")

            let statistics = engineB.counters.snapshot()
            // Super-packets from the TUN, each leaving as many datagrams.
            #expect(
                statistics[.wireSentPackets] > 4 * statistics[.tunReadPackets],
                "\(statistics[.wireSentPackets]) sent for \(statistics[.tunReadPackets]) read"
            )
            let fallbacks = lines.withLock { $0.filter { $0.contains("UDP_SEGMENT send failed with EIO") } }
            #expect(
                statistics[.segmentationFallbacks] <= 1
                    && UInt64(fallbacks.count) == statistics[.segmentationFallbacks],
                "\(statistics[.segmentationFallbacks]) fallbacks counted, logged: \(fallbacks)"
            )
            #expect(fallbacks.allSatisfy { $0.hasPrefix("worker 0: ") }, "\(fallbacks)")
            #expect(engineA.counters.snapshot().drops.nonZero.isEmpty)
        }
    }
}

/// The offload tests' tools.
enum OffloadBed {
    /// The two-host bed at the TUN's MTU with uring engines on both hosts: A with offloads, B
    /// with them only when asked; B's engine logs to `logB`.
    static func withMixedNodes(
        offloadsOnB: Bool = false,
        logB: @escaping Engine.Log = { _ in },
        _ body: (TwoHostBed, Engine, Engine) throws -> Void
    ) throws {
        try TwoHostBed.with { bed in
            try setContainerMTU(bed, 1472)
            let engineA = try bed.startEngine(in: bed.hostA, kind: .uring, offloads: true)
            defer { engineA.stop() }
            let engineB = try bed.startEngine(in: bed.hostB, kind: .uring, offloads: offloadsOnB, log: logB)
            defer { engineB.stop() }
            try body(bed, engineA, engineB)
        }
    }

    /// Container interfaces at the TUN's MTU (underlay 1500 − 28), as the harness sets them.
    static func setContainerMTU(_ bed: TwoHostBed, _ mtu: Int) throws {
        for (namespace, device) in [
            (bed.hostA, "ctr0"), (bed.hostB, "ctr0"), (bed.containerA, "eth0"), (bed.containerB, "eth0"),
        ] {
            let (status, output) = try namespace.ip("link", "set", device, "mtu", "\(mtu)")
            guard status == 0 else { throw TestFailure("mtu \(mtu) on \(device) in \(namespace.name): \(output)") }
        }
    }

    /// SIGKILL: processes started from the test runner inherit its blocked SIGTERM and SIGINT.
    static func forceStop(_ process: Process) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// `count` UDP datagrams of `size` bytes each arrive intact from one container to the other.
    static func udpDatagramsArrive(from sender: TestNamespace, to receiver: TestNamespace, count: Int, size: Int) throws
    {
        try udpDatagramsArrive(from: sender, to: receiver, sizes: Array(repeating: size, count: count))
    }

    /// UDP datagrams of `sizes`, sent back to back, arrive intact and in order.
    static func udpDatagramsArrive(from sender: TestNamespace, to receiver: TestNamespace, sizes: [Int]) throws {
        let toB = receiver.name.hasSuffix("ctrB")
        let receiverAddress = toB ? TwoHostBed.containerAddressB : TwoHostBed.containerAddressA
        let senderAddress = toB ? TwoHostBed.containerAddressA : TwoHostBed.containerAddressB
        let inbox = try receiver.enter { try openUDP(receiverAddress, port: 9999) }
        defer { close(inbox) }
        let payloads = sizes.enumerated().map { index, size in
            (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ index) }
        }
        try sender.enter {
            let outbox = try openUDP(senderAddress)
            defer { close(outbox) }
            for payload in payloads { try sendUDP(outbox, payload, to: receiverAddress, port: 9999) }
        }
        var received: [[UInt8]] = []
        while received.count < sizes.count, let datagram = receiveUDPLarge(inbox, milliseconds: 1000) {
            received.append(datagram)
        }
        #expect(received == payloads, "\(received.count) of \(sizes.count) datagrams arrived intact and in order")
    }

    private static func receiveUDPLarge(_ fd: Int32, milliseconds: Int32) -> [UInt8]? {
        guard weft_poll_readable_shim(fd, milliseconds) else { return nil }
        var bytes = [UInt8](repeating: 0, count: 65536)
        let count = bytes.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return count >= 0 ? Array(bytes[..<count]) : nil
    }
}

private func weft_poll_readable_shim(_ fd: Int32, _ milliseconds: Int32) -> Bool {
    var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    return poll(&entry, 1, milliseconds) == 1
}

/// What a capture of the udp or vxlan backend's underlay holds: every datagram split into its inner
/// packets (a GSO send crosses a veth as one super-datagram), each inner IPv4 header checksum and
/// TCP/UDP checksum recomputed here with a plain loop, independent of Packets. With `vxlan`, each
/// inner packet sits behind its own VXLAN header and inner Ethernet header, which are checked too.
struct OffloadUnderlayCapture: CustomStringConvertible {
    /// What every VXLAN segment must carry: the I flag and this VNI, EtherType IPv4, and inner
    /// Ethernet addresses that are two different MACs of `vtepMACs`.
    struct VXLANExpectation {
        let vni: UInt32
        let vtepMACs: Set<MACAddress>
    }

    /// An inner TCP flow (addresses and ports as captured).
    struct InnerFlow: Hashable, CustomStringConvertible {
        let addresses: [UInt8]
        let ports: [UInt8]
        var description: String {
            let octets = addresses.map(String.init)
            return "\(octets[0..<4].joined(separator: ".")):\(Int(ports[0]) << 8 | Int(ports[1]))>"
                + "\(octets[4..<8].joined(separator: ".")):\(Int(ports[2]) << 8 | Int(ports[3]))"
        }
    }

    var datagrams = 0
    var innerTCP = 0
    var innerUDP = 0
    var badIPChecksums = 0
    var badTransportChecksums = 0
    var malformed = 0
    /// vxlan: segments whose VXLAN or inner Ethernet header is not the expected one.
    var badEncapsulation = 0
    /// Most inner packets one captured datagram carried.
    var largestSend = 0
    /// The outer UDP source ports each inner TCP flow was sent from.
    var sourcePortsByFlow: [InnerFlow: Set<Int>] = [:]

    var description: String {
        "datagrams \(datagrams), inner TCP \(innerTCP), inner UDP \(innerUDP), bad IP checksums \(badIPChecksums), "
            + "bad TCP/UDP checksums \(badTransportChecksums), malformed \(malformed), bad encapsulation \(badEncapsulation), "
            + "largest send \(largestSend) segments, \(sourcePortsByFlow.count) TCP flows"
    }

    init(path: String, vxlan: VXLANExpectation? = nil) throws {
        let encapsulation = vxlan == nil ? 0 : 22
        var reader = try CaptureReader(path: path)
        guard reader.linkType == .ethernet else { throw TestFailure("capture link type \(reader.linkType)") }
        // One frame at a time: the capture holds hundreds of MB of 64 KB super-datagrams.
        while let frame = try reader.next() {
            let bytes = frame.bytes
            guard bytes.count >= 42, bytes[12] == 0x08, bytes[13] == 0x00, bytes[23] == 17 else { continue }
            let outerHeader = Int(bytes[14] & 0x0F) * 4
            let udp = 14 + outerHeader
            let payloadStart = udp + 8
            let payloadEnd = min(bytes.count, 14 + Self.load16(bytes, 16))
            guard payloadStart <= payloadEnd else {
                malformed += 1
                continue
            }
            datagrams += 1
            let sourcePort = Self.load16(bytes, udp)
            var segment = payloadStart
            var segments = 0
            while segment + encapsulation + 20 <= payloadEnd {
                if let vxlan, !Self.isExpected(bytes, vxlanAt: segment, vxlan) { badEncapsulation += 1 }
                let offset = segment + encapsulation
                let total = Self.load16(bytes, offset + 2)
                let ipHeader = Int(bytes[offset] & 0x0F) * 4
                guard bytes[offset] >> 4 == 4, ipHeader >= 20, total >= ipHeader, offset + total <= payloadEnd else {
                    malformed += 1
                    break
                }
                segments += 1
                if Self.sum(bytes, from: offset, count: ipHeader) != 0xFFFF { badIPChecksums += 1 }
                let transport = offset + ipHeader
                let transportLength = total - ipHeader
                let proto = bytes[offset + 9]
                if proto == 6 || proto == 17 {
                    if proto == 6 {
                        innerTCP += 1
                        guard transportLength >= 4 else {
                            malformed += 1
                            break
                        }
                        let flow = InnerFlow(
                            addresses: Array(bytes[offset + 12..<offset + 20]),
                            ports: Array(bytes[transport..<transport + 4])
                        )
                        sourcePortsByFlow[flow, default: []].insert(sourcePort)
                    } else {
                        innerUDP += 1
                    }
                    var pseudo = Self.sum(bytes, from: offset + 12, count: 8)
                    pseudo += UInt32(proto) + UInt32(transportLength)
                    let skip = proto == 17 && Self.load16(bytes, transport + 6) == 0  // UDP without checksum
                    if !skip && Self.fold(pseudo + Self.sum(bytes, from: transport, count: transportLength)) != 0xFFFF {
                        badTransportChecksums += 1
                    }
                }
                segment = offset + total
            }
            if segment != payloadEnd { malformed += 1 }
            largestSend = max(largestSend, segments)
        }
    }

    /// RFC 7348's header (I flag, VNI) and the inner Ethernet header, read byte by byte.
    static func isExpected(_ bytes: [UInt8], vxlanAt start: Int, _ vxlan: VXLANExpectation) -> Bool {
        func mac(_ offset: Int) -> MACAddress {
            MACAddress(bytes[offset..<offset + 6].reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        }
        let vni = UInt32(bytes[start + 4]) << 16 | UInt32(bytes[start + 5]) << 8 | UInt32(bytes[start + 6])
        let destination = mac(start + 8)
        let source = mac(start + 14)
        return bytes[start] == 0x08 && vni == vxlan.vni && load16(bytes, start + 20) == 0x0800
            && destination != source && vxlan.vtepMACs.contains(destination) && vxlan.vtepMACs.contains(source)
    }

    static func load16(_ bytes: [UInt8], _ offset: Int) -> Int { Int(bytes[offset]) << 8 | Int(bytes[offset + 1]) }

    /// One's-complement sum of big-endian 16-bit words, folded (odd tail padded with zero).
    static func sum(_ bytes: [UInt8], from start: Int, count: Int) -> UInt32 {
        var total: UInt32 = 0
        var index = start
        while index + 1 < start + count {
            total += UInt32(bytes[index]) << 8 | UInt32(bytes[index + 1])
            index += 2
        }
        if index < start + count { total += UInt32(bytes[index]) << 8 }
        return fold(total)
    }

    static func fold(_ value: UInt32) -> UInt32 {
        var total = value
        while total > 0xFFFF { total = (total & 0xFFFF) + (total >> 16) }
        return total
    }
}
