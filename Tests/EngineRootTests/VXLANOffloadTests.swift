import Addressing
import CShims
import Capture
import Engine
import Foundation
import Glibc
import Packets
import TestThreads
import Testing

/// Why the vxlan offload tests cannot run here, or nil.
let vxlanOffloadsUnavailable: String? = {
    if let missing = vxlanToolsMissing { return missing }
    return Engine.uringUnavailable.map { "io_uring engine: \($0)" }
}()

/// The vxlan backend with offloads on the two-host bed: TUN super-packets leave as VXLAN datagrams
/// in UDP GSO sends, UDP GRO receives are decapsulated datagram by datagram and coalesced. Against
/// a Weft node with offloads, one without, and the kernel's flannel.1; and a GRO batch holding bad
/// datagrams. Transfers are checked for completion (every byte sent arrived), never for speed.
/// In EngineForwardingTests' serialized suite, as the udp offload tests are (their buffers would
/// disturb the flood test's RSS measurement).
extension EngineForwardingTests {
    static let vxlanTransferBytes = 32 << 20

    @Test(.enabled(if: vxlanOffloadsUnavailable == nil, "\(vxlanOffloadsUnavailable ?? "")"))
    func vxlanOffloadsOnBothHostsCarryTCPWithValidFrames() throws {
        try TwoHostBed.with { bed in
            try bed.useVXLANMTU()
            let engineA = try bed.startVXLANEngine(in: bed.hostA, kind: .uring, offloads: true)
            defer { engineA.stop() }
            let engineB = try bed.startVXLANEngine(in: bed.hostB, kind: .uring, offloads: true)
            defer { engineB.stop() }
            try pingsCross(bed)

            let capturePath = NSTemporaryDirectory() + "weft-vxlan-offload-\(getpid()).pcap"
            defer { unlink(capturePath) }
            let capture = try startCapture(
                in: bed.hostB,
                device: "ul0",
                path: capturePath,
                filter: ["udp", "port", "8472"]
            )
            defer { OffloadBed.forceStop(capture) }

            try OffloadBed.udpDatagramsArrive(from: bed.containerA, to: bed.containerB, count: 20, size: 1000)
            try transfersComplete(bed, bytes: Self.vxlanTransferBytes)
            // tcpdump -U wrote each packet whole as it came; SIGKILL loses nothing once traffic is over.
            Thread.sleep(forTimeInterval: 0.5)
            OffloadBed.forceStop(capture)

            let summary = try OffloadUnderlayCapture(
                path: capturePath,
                vxlan: .init(vni: 1, vtepMACs: [TwoHostBed.macA, TwoHostBed.macB])
            )
            #expect(summary.innerTCP > 2000, "\(summary)")
            #expect(summary.innerUDP >= 20, "\(summary)")
            #expect(summary.badEncapsulation == 0, "\(summary)")
            #expect(summary.badIPChecksums == 0, "\(summary)")
            #expect(summary.badTransportChecksums == 0, "\(summary)")
            #expect(summary.malformed == 0, "\(summary)")
            // 1,450-byte inner segments behind 22 bytes of VXLAN + Ethernet are 1,472-byte datagrams:
            // one send takes 65,507 / 1,472 = 44 of a super-packet's segments.
            #expect(
                summary.largestSend
                    == SegmentLayout(
                        count: 46,
                        gap: VXLAN.overhead,
                        stride: 1472,
                        segmentLength: 1450,
                        lastSegmentLength: 1450
                    ).segmentsPerSend(),
                "\(summary)"
            )
            // iperf3's control and data connections, each way; every one from a single outer port
            // (super-packets and lone packets of a flow hash to the same source-port socket).
            #expect(summary.sourcePortsByFlow.count >= 4, "\(summary.sourcePortsByFlow)")
            #expect(summary.sourcePortsByFlow.values.allSatisfy { $0.count == 1 }, "\(summary.sourcePortsByFlow)")

            for (engine, name) in [(engineA, "A"), (engineB, "B")] {
                let statistics = engine.counters.snapshot()
                #expect(statistics.drops.nonZero.isEmpty, "\(name) dropped \(statistics.drops.nonZero)")
                #expect(statistics[.sendErrors] == 0 && statistics[.tunWriteErrors] == 0, "\(name)")
                #expect(statistics[.segmentationFallbacks] == 0, "\(name)")
                #expect(
                    statistics[.wireSentPackets] > 4 * statistics[.tunReadPackets],
                    "\(name): \(statistics[.wireSentPackets]) sent for \(statistics[.tunReadPackets]) read"
                )
                #expect(statistics[.coalescedSegments] > statistics[.tunWrittenPackets], "\(name)")
            }
            #expect(engineA.workerFailures.isEmpty && engineB.workerFailures.isEmpty)
        }
    }

    @Test(.enabled(if: vxlanOffloadsUnavailable == nil, "\(vxlanOffloadsUnavailable ?? "")"))
    func vxlanNodeWithOffloadsTalksToNodeWithout() throws {
        try TwoHostBed.with { bed in
            try bed.useVXLANMTU()
            let engineA = try bed.startVXLANEngine(in: bed.hostA, kind: .uring, offloads: true)
            defer { engineA.stop() }
            let engineB = try bed.startVXLANEngine(in: bed.hostB, kind: .uring, offloads: false)
            defer { engineB.stop() }
            try pingsCross(bed)
            try transfersComplete(bed, bytes: Self.vxlanTransferBytes / 2)
            try OffloadBed.udpDatagramsArrive(from: bed.containerA, to: bed.containerB, count: 10, size: 1200)
            try OffloadBed.udpDatagramsArrive(from: bed.containerB, to: bed.containerA, count: 10, size: 1200)
            for (engine, name) in [(engineA, "A"), (engineB, "B")] {
                let statistics = engine.counters.snapshot()
                #expect(statistics.drops.nonZero.isEmpty, "\(name) dropped \(statistics.drops.nonZero)")
                #expect(statistics[.sendErrors] == 0 && statistics[.tunWriteErrors] == 0, "\(name)")
            }
            let sender = engineA.counters.snapshot()
            #expect(sender[.wireSentPackets] > sender[.tunReadPackets], "A segmented no super-packet")
        }
    }

    /// Host A is flannel.1 as flannel configures it; B is Weft with offloads. The underlay finishes
    /// checksums in software (see `finishChecksumsOnTheUnderlay`), so B's GSO sends are cut into
    /// datagrams by its veth, and flannel.1 gets them one by one, as from any other VTEP.
    @Test(.enabled(if: vxlanOffloadsUnavailable == nil, "\(vxlanOffloadsUnavailable ?? "")"))
    func vxlanOffloadsInteroperateWithKernelFlannel() throws {
        try TwoHostBed.with { bed in
            try bed.useVXLANMTU()
            try bed.finishChecksumsOnTheUnderlay()
            try bed.addKernelVTEPOnA()
            let engine = try bed.startVXLANEngine(in: bed.hostB, kind: .uring, offloads: true)
            defer { engine.stop() }
            try pingsCross(bed)
            try transfersComplete(bed, bytes: Self.vxlanTransferBytes / 2)
            try OffloadBed.udpDatagramsArrive(from: bed.containerA, to: bed.containerB, count: 10, size: 1200)
            try OffloadBed.udpDatagramsArrive(from: bed.containerB, to: bed.containerA, count: 10, size: 1200)
            let statistics = engine.counters.snapshot()
            #expect(statistics.drops.nonZero.isEmpty, "dropped \(statistics.drops.nonZero)")
            #expect(statistics[.sendErrors] == 0 && statistics[.tunWriteErrors] == 0)
            #expect(statistics[.segmentationFallbacks] == 0)
            #expect(statistics[.wireSentPackets] > statistics[.tunReadPackets], "B segmented no super-packet")
            #expect(engine.workerFailures.isEmpty, "\(engine.workerFailures)")
        }
    }

    /// One UDP GSO send from A's address (a peer) crosses the veth whole and reaches B's UDP_GRO
    /// socket as one receive of equal-sized datagrams (the last shorter). The bad ones among them
    /// are dropped and counted, each for its own reason; the good ones around them are delivered,
    /// coalesced into one UDP super-packet (they are one flow).
    @Test(.enabled(if: vxlanOffloadsUnavailable == nil, "\(vxlanOffloadsUnavailable ?? "")"))
    func badDatagramsInsideAGROBatchAreDroppedAlone() throws {
        try TwoHostBed.with { bed in
            try bed.useVXLANMTU()
            let engine = try bed.startVXLANEngine(in: bed.hostB, kind: .uring, offloads: true)
            defer { engine.stop() }
            let receiver = try bed.containerB.enter { try openUDP(TwoHostBed.containerAddressB, port: 9999) }
            defer { close(receiver) }
            let sender = try bed.hostA.enter { try openUDP(TwoHostBed.publicA) }
            defer { close(sender) }

            // Equal payloads, so every frame but the last has the same size, as UDP_SEGMENT needs.
            func payload(_ tag: String) -> [UInt8] {
                Array(tag.utf8) + [UInt8](repeating: 0x2E, count: 48 - tag.utf8.count)
            }
            func inner(
                _ tag: String,
                source: IPv4Address = TwoHostBed.containerAddressA,
                destination: IPv4Address = TwoHostBed.containerAddressB
            ) -> [UInt8] {
                ipv4UDPPacket(source: source, destination: destination, port: 9999, payload: payload(tag))
            }
            var wrongVersion = inner("bad")
            wrongVersion[0] = 0x65
            let batch: [(frame: [UInt8], reason: DropReason?)] = [
                (vxlanFrame(inner("ok-first")), nil),
                (vxlanFrame(inner("bad"), vni: 2), .wrongVNI),
                (vxlanFrame(inner("ok-second")), nil),
                (vxlanFrame(inner("bad", source: IPv4Address(10, 244, 3, 5))), .spoofedSource),
                (vxlanFrame(inner("bad", destination: TwoHostBed.publicStranger)), .notOurSubnet),
                (vxlanFrame(inner("bad"), destination: MACAddress(0x0200_C612_0099)), .notOurMAC),
                (vxlanFrame(inner("bad"), flags: 0x00), .vxlanFlagClear),
                (vxlanFrame(wrongVersion), .wrongVersion),
                (vxlanFrame(inner("ok-third")), nil),
                (Array(vxlanFrame(inner("bad")).prefix(20)), .truncated),
            ]
            let size = batch[0].frame.count
            #expect(batch.dropLast().allSatisfy { $0.frame.count == size })
            let datagram = batch.flatMap(\.frame)

            let capturePath = NSTemporaryDirectory() + "weft-vxlan-gro-\(getpid()).pcap"
            defer { unlink(capturePath) }
            let capture = try startCapture(
                in: bed.hostB,
                device: "ul0",
                path: capturePath,
                filter: ["udp", "port", "8472"]
            )
            defer { OffloadBed.forceStop(capture) }

            let before = engine.counters.snapshot()
            guard weft_setsockopt_int(sender, Int32(IPPROTO_UDP), UDP_SEGMENT, Int32(size)) == 0 else {
                throw TestFailure("UDP_SEGMENT \(size) refused")
            }
            try sendUDP(sender, datagram, to: TwoHostBed.publicB, port: TwoHostBed.vxlanPort)
            var delivered: [String] = []
            while delivered.count < 3, let received = receiveUDP(receiver, milliseconds: 2000) {
                delivered.append(String(decoding: received.payload.prefix { $0 != 0x2E }, as: UTF8.self))
            }
            #expect(delivered.sorted() == ["ok-first", "ok-second", "ok-third"])
            #expect(receiveUDP(receiver, milliseconds: 300) == nil, "a bad datagram reached container B")
            Thread.sleep(forTimeInterval: 0.3)
            OffloadBed.forceStop(capture)

            // The batch crossed the underlay as one frame: the kernel handed B's socket one receive.
            let frames = try capturedPayloadLengths(capturePath, from: TwoHostBed.publicA)
            #expect(frames == [datagram.count], "frames from A: \(frames)")

            let after = engine.counters.snapshot()
            var expected: [DropReason: UInt64] = [:]
            for case let reason? in batch.map(\.reason) { expected[reason, default: 0] += 1 }
            for reason in DropReason.allCases {
                #expect(after.drops[reason] - before.drops[reason] == expected[reason] ?? 0, "\(reason)")
            }
            #expect(after[.wireReceivedPackets] - before[.wireReceivedPackets] == UInt64(batch.count))
            // The three good datagrams are one flow: around the dropped ones, one UDP super-packet.
            #expect(after[.tunWrittenPackets] - before[.tunWrittenPackets] == 1)
            #expect(after[.coalescedSegments] - before[.coalescedSegments] == 2)
            #expect(engine.workerFailures.isEmpty)
        }
    }

    private func pingsCross(_ bed: TwoHostBed) throws {
        let there = try ping(from: bed.containerA, TwoHostBed.containerAddressB, count: 3)
        #expect(there.received == 3, "\(there.output)")
        let back = try ping(from: bed.containerB, TwoHostBed.containerAddressA, count: 3)
        #expect(back.received == 3, "\(back.output)")
    }

    /// iperf3 TCP from container A to B and back (it ran and moved data), then `bytes` each way
    /// over one TCP connection with every byte checked: each transfer completes.
    private func transfersComplete(_ bed: TwoHostBed, bytes: Int) throws {
        let paths = [
            (bed.containerA, bed.containerB, TwoHostBed.containerAddressB, "A → B"),
            (bed.containerB, bed.containerA, TwoHostBed.containerAddressA, "B → A"),
        ]
        for (client, server, address, label) in paths {
            // Bounded (a stalled path fails here); iperf3's receiver stops counting at the sender's
            // test-end message, so its numbers are no completion check.
            let rate = try iperf3(from: client, to: server, address: address, seconds: 1)
            #expect(rate > 0, "iperf3 \(label)")
        }
        for (client, server, address, label) in paths {
            let moved = try TCPTransfer.run(from: client, to: server, address: address, byteCount: bytes, timeout: 20)
            #expect(moved.isComplete, "TCP \(label): \(moved)")
        }
    }

    /// The UDP payload length of each captured IPv4/UDP frame from `source`, in capture order.
    private func capturedPayloadLengths(_ path: String, from source: IPv4Address) throws -> [Int] {
        var reader = try CaptureReader(path: path)
        var lengths: [Int] = []
        let octets = [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: source.value >> $0) }
        while let frame = try reader.next() {
            let bytes = frame.bytes
            guard bytes.count >= 42, bytes[12] == 0x08, bytes[13] == 0x00, bytes[23] == 17,
                Array(bytes[26..<30]) == octets
            else { continue }
            lengths.append(bytes.count - 14 - Int(bytes[14] & 0x0F) * 4 - 8)
        }
        return lengths
    }
}
