import Addressing
import CShims
import Engine
import Glibc
import Packets
import Routes
import TestThreads
import Testing

/// The engine's forwarding without root: two engines on memory TUNs and loopback sockets, both
/// I/O loops, both backends. What only a kernel can show (real TUN devices, offloads against the
/// kernel's own segmentation, namespaces) is in EngineRootTests.
@Suite(.ownThread, .timeLimit(.minutes(1)))
struct MemoryEngineTests {
    static let kinds: [EngineConfiguration.Selection] = Engine.uringUnavailable == nil ? [.mmsg, .uring] : [.mmsg]

    static let containerA = IPv4Address(10, 244, 1, 2)
    static let containerB = IPv4Address(10, 244, 2, 2)

    static let backends: [Backend] = [.udp, .vxlan]

    /// flannel's udp proxy decrements the TTL on each side; a VXLAN device does not (the kernel's
    /// routing does, before and after it), and neither does Weft's vxlan.
    @Test(arguments: kinds, backends)
    func aPacketCrossesBothWaysWithItsTTLAsFlannelLeavesIt(kind: EngineConfiguration.Selection, backend: Backend) throws
    {
        try MemoryBed.with(kind, backend: backend) { bed in
            for (index, (from, to, source, destination)) in [
                (bed.tunA, bed.tunB, Self.containerA, Self.containerB),
                (bed.tunB, bed.tunA, Self.containerB, Self.containerA),
            ].enumerated() {
                let payload = (0..<300).map { UInt8(truncatingIfNeeded: $0 * 7 + index) }
                let sent = udpPacket(from: source, to: destination, ttl: 9, payload: payload)
                try from.inject(sent)
                let arrived = try #require(to.next(), "\(kind) \(backend): \(source) → \(destination) never arrived")
                let header = ipHeader(arrived)
                #expect(
                    header.ttl == (backend == .udp ? 7 : 9) && header.checksumHolds,
                    "TTL \(header.ttl), checksum holds: \(header.checksumHolds)"
                )
                #expect(
                    arrived.count == sent.count && Array(arrived[12...]) == Array(sent[12...]),
                    "the rest is the packet as sent"
                )
            }
            let a = bed.engineA.counters.snapshot()
            let b = bed.engineB.counters.snapshot()
            #expect(a[.tunReadPackets] == 1 && b[.tunReadPackets] == 1, "one packet read from each TUN")
            #expect(a.drops.nonZero.isEmpty && b.drops.nonZero.isEmpty, "\(a.drops.nonZero) \(b.drops.nonZero)")
        }
    }

    @Test(arguments: kinds)
    func anUnroutedDestinationGetsNetUnreachableFromTheTUNsAddress(kind: EngineConfiguration.Selection) throws {
        try MemoryBed.with(kind, backend: .udp) { bed in
            let unrouted = IPv4Address(10, 244, 99, 2)
            let sent = udpPacket(from: Self.containerA, to: unrouted, payload: Array(repeating: 1, count: 40))
            try bed.tunA.inject(sent)
            let reply = try #require(bed.tunA.next(), "no ICMP reply")
            // IPv4 + ICMP type 3 (destination unreachable) code 0 (net), from A's TUN address, to the sender.
            #expect(reply[9] == 1 && reply[20] == 3 && reply[21] == 0, "\(reply.prefix(28))")
            #expect(Array(reply[12..<16]) == [10, 244, 1, 0] && Array(reply[16..<20]) == [10, 244, 1, 2])
            #expect(
                Array(reply[28..<48]).enumerated().allSatisfy {
                    $0.offset == 8 || $0.offset == 10 || $0.offset == 11 || $0.element == sent[$0.offset]
                },
                "the reply quotes the dropped packet's header: \(reply[28..<48])"
            )
            #expect(bed.tunB.next(milliseconds: 200) == nil, "nothing left A")
            #expect(bed.engineA.counters.snapshot().drops[.noRoute] == 1)
        }
    }

    /// A datagram whose outer source is not the peer its inner source's subnet is leased to.
    @Test(arguments: kinds, backends)
    func aSpoofedDatagramIsCountedAndNeverDelivered(kind: EngineConfiguration.Selection, backend: Backend) throws {
        try MemoryBed.with(kind, backend: backend) { bed in
            let stranger = weft_udp_socket()
            try #require(stranger >= 0)
            defer { close(stranger) }
            // 127.0.0.2 is this host too (all of 127/8 is), but no lease names it.
            try #require(weft_bind_ipv4(stranger, IPv4Address(127, 0, 0, 2).networkOrder, 0) == 0)
            var datagram = udpPacket(
                from: Self.containerA,
                to: Self.containerB,
                payload: Array(repeating: 2, count: 64)
            )
            if backend == .vxlan {
                // VXLAN header (I flag, VNI 1) + inner Ethernet to B's VTEP MAC from A's.
                var frame: [UInt8] = [0x08, 0, 0, 0, 0, 0, 1, 0]
                frame += [0x0a, 0, 0, 0, 0, 0x0b, 0x0a, 0, 0, 0, 0, 0x0a, 0x08, 0x00]
                datagram = frame + datagram
            }
            let sent = datagram.withUnsafeBytes {
                weft_sendto_ipv4(
                    stranger,
                    $0.baseAddress,
                    $0.count,
                    MemoryBed.loopback.networkOrder,
                    bed.portB.bigEndian
                )
            }
            #expect(sent == datagram.count)
            #expect(bed.tunB.next(milliseconds: 300) == nil, "a spoofed packet reached B's TUN")
            var drops: UInt64 = 0
            for _ in 0..<100 where drops == 0 {
                let snapshot = bed.engineB.counters.snapshot().drops
                drops = snapshot[.spoofedSource] + snapshot[.unknownSender]
                if drops == 0 { usleep(10_000) }
            }
            #expect(drops == 1, "\(bed.engineB.counters.snapshot().drops.nonZero)")
        }
    }
}

/// The offload paths without root: a TSO super-packet from A's TUN (with its virtio-net header,
/// as a TUN with IFF_VNET_HDR hands it out) leaves A as UDP_SEGMENT batches on loopback and
/// reaches B's TUN coalesced again, every byte of the stream in order.
@Suite(
    .ownThread,
    .timeLimit(.minutes(1)),
    .enabled(if: Engine.uringUnavailable == nil, "offloads need the io_uring engine")
)
struct MemoryOffloadTests {
    @Test(arguments: [Backend.udp, .vxlan])
    func aTCPSuperPacketIsSegmentedSentAndCoalescedAgain(backend: Backend) throws {
        try MemoryBed.with(.uring, backend: backend, offloads: true) { bed in
            let payload = (0..<20_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) }
            let sequence: UInt32 = 0x1000_0000
            let mss = 1_300
            try bed.tunA.inject(
                tsoPacket(
                    from: MemoryEngineTests.containerA,
                    to: MemoryEngineTests.containerB,
                    sequence: sequence,
                    mss: mss,
                    payload: payload
                )
            )
            let (assembled, packets) = bed.tunB.receiveStream(from: sequence, length: payload.count, tcpOffset: 20) {
                packet,
                header in
                #expect(ipHeader(packet).checksumHolds)
                #expect(header.gsoType.kind == .none || header.gsoType.kind == .tcpV4, "\(header)")
            }
            #expect(
                assembled == payload,
                "\(assembled.count) of \(payload.count) bytes in order, in \(packets) TUN packets"
            )
            // Sends are counted as their completions are reaped, which may trail B's TUN a little.
            let segments = UInt64((payload.count + mss - 1) / mss)
            var a = bed.engineA.counters.snapshot()
            for _ in 0..<200 where a[.wireSentPackets] < segments {
                usleep(10_000)
                a = bed.engineA.counters.snapshot()
            }
            let b = bed.engineB.counters.snapshot()
            #expect(a[.tunReadPackets] == 1, "one super-packet read")
            #expect(a[.wireSentPackets] == segments, "\(a[.wireSentPackets]) datagrams for \(segments) segments")
            #expect(
                b[.coalescedSegments] > 0 && packets < (payload.count + mss - 1) / mss,
                "B wrote \(packets) packets, coalesced \(b[.coalescedSegments])"
            )
            #expect(a.drops.nonZero.isEmpty && b.drops.nonZero.isEmpty, "\(a.drops.nonZero) \(b.drops.nonZero)")
        }
    }

    /// A TCP super-packet as Linux hands it to a TUN with TSO: the virtio-net header (TCPV4,
    /// NEEDS_CSUM), the IP header with its checksum, and the TCP checksum field holding only the
    /// pseudo-header sum (CHECKSUM_PARTIAL).
    private func tsoPacket(
        from source: IPv4Address,
        to destination: IPv4Address,
        sequence: UInt32,
        mss: Int,
        payload: [UInt8]
    ) -> [UInt8] {
        let tcpLength = 20 + payload.count
        let total = 20 + tcpLength
        var packet: [UInt8] = [
            0x45, 0, UInt8(truncatingIfNeeded: total >> 8), UInt8(truncatingIfNeeded: total), 0x56, 0x78, 0x40, 0, 64,
            6, 0, 0,
        ]
        for address in [source, destination] { withUnsafeBytes(of: address.networkOrder) { packet += $0 } }
        packet += [0x9C, 0x40, 0x14, 0x51]  // ports 40000 → 5201
        withUnsafeBytes(of: sequence.bigEndian) { packet += $0 }
        packet += [0, 0, 0, 1, 0x50, 0x18, 0xFF, 0xFF, 0, 0, 0, 0]  // ack 1, data offset 5, ACK|PSH, window
        packet += payload
        packet.withUnsafeMutableBytes { bytes in
            bytes.storeBytes(
                of: InternetChecksum.checksum(bytes.baseAddress!, count: 20),
                toByteOffset: 10,
                as: UInt16.self
            )
            let pseudo = InternetChecksum.pseudoHeaderSum(
                source: source.networkOrder,
                destination: destination.networkOrder,
                protocol: 6,
                length: tcpLength
            )
            bytes.storeBytes(of: InternetChecksum.fold(pseudo), toByteOffset: 36, as: UInt16.self)
        }
        let header = VirtioNetHeader(
            flags: .needsChecksum,
            gsoType: .tcpV4,
            headerLength: 40,
            gsoSize: UInt16(mss),
            checksumStart: 20,
            checksumOffset: 16
        )
        var framed = [UInt8](repeating: 0, count: VirtioNetHeader.size)
        framed.withUnsafeMutableBytes { header.store(to: $0.baseAddress!) }
        return framed + packet
    }
}
