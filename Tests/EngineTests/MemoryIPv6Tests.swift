import Addressing
import CShims
import Engine
import Glibc
import Packets
import Routes
import TestThreads
import Testing

/// Inner IPv6 over the IPv4 underlay without root: two engines on memory TUNs carrying both
/// families, both I/O loops, both backends.
@Suite(.ownThread, .timeLimit(.minutes(1)))
struct MemoryIPv6Tests {
    static let containerA = IPv6Address("fc00:0:0:1::2")!
    static let containerB = IPv6Address("fc00:0:0:2::2")!

    /// The udp backend decrements the hop limit on each side, as it does the TTL; vxlan leaves it.
    @Test(arguments: MemoryEngineTests.kinds, MemoryEngineTests.backends)
    func anIPv6PacketCrossesBothWays(kind: EngineConfiguration.Selection, backend: Backend) throws {
        try MemoryBed.with(kind, backend: backend, ipv6: true) { bed in
            for (index, (from, to, source, destination)) in [
                (bed.tunA, bed.tunB, Self.containerA, Self.containerB),
                (bed.tunB, bed.tunA, Self.containerB, Self.containerA),
            ].enumerated() {
                let data = (0..<300).map { UInt8(truncatingIfNeeded: $0 * 7 + index) }
                let sent = udp6Packet(from: source, to: destination, hopLimit: 9, data: data)
                try from.inject(sent)
                let arrived = try #require(to.next(), "\(kind) \(backend): \(source) → \(destination) never arrived")
                #expect(arrived[7] == (backend == .udp ? 7 : 9), "hop limit \(arrived[7])")
                #expect(arrived.count == sent.count && Array(arrived[8...]) == Array(sent[8...]))
            }
            // IPv4 still crosses beside it.
            try bed.tunA.inject(
                udpPacket(from: MemoryEngineTests.containerA, to: MemoryEngineTests.containerB, payload: [1, 2, 3])
            )
            let arrived = try #require(bed.tunB.next(), "IPv4 beside IPv6 never arrived")
            #expect(arrived[0] >> 4 == 4)
            let a = bed.engineA.counters.snapshot()
            let b = bed.engineB.counters.snapshot()
            #expect(a[.tunReadPackets] == 2 && b[.tunReadPackets] == 1)
            #expect(a.drops.nonZero.isEmpty && b.drops.nonZero.isEmpty, "\(a.drops.nonZero) \(b.drops.nonZero)")
        }
    }

    /// What cannot be forwarded is answered into the TUN from A's IPv6 subnet address, with a
    /// checksum that holds: no route, hop limit spent (udp). (A TUN hands out nothing longer than
    /// its MTU, so Packet Too Big is the forwarding tests' to show.)
    @Test(arguments: MemoryEngineTests.kinds)
    func undeliverablePacketsGetICMPv6Errors(kind: EngineConfiguration.Selection) throws {
        try MemoryBed.with(kind, backend: .udp, ipv6: true) { bed in
            let cases: [(packet: [UInt8], type: UInt8, reason: DropReason)] = [
                (udp6Packet(from: Self.containerA, to: IPv6Address("fc00:0:0:99::2")!, data: [1]), 1, .noRoute),
                (udp6Packet(from: Self.containerA, to: Self.containerB, hopLimit: 1, data: [2]), 3, .hopLimitExpired),
            ]
            for (sent, type, reason) in cases {
                try bed.tunA.inject(sent)
                let reply = try #require(bed.tunA.next(), "no ICMPv6 reply for \(reason)")
                #expect(reply[6] == 58 && reply[40] == type, "type \(reply[40]) for \(reason)")
                #expect(IPv6Address(bytes: reply, at: 8) == MemoryBed.ipv6SubnetA.network)
                #expect(IPv6Address(bytes: reply, at: 24) == Self.containerA)
                #expect(Array(reply[48..<88]) == Array(sent[0..<40]), "the reply quotes the packet's header")
                let holds = reply.withUnsafeBytes {
                    let pseudo = IPv6Header(UnsafeMutableRawPointer(mutating: $0.baseAddress!))
                        .pseudoHeaderSum(nextHeader: 58, length: reply.count - 40)
                    return InternetChecksum.isValid($0.baseAddress! + 40, count: reply.count - 40, initial: pseudo)
                }
                #expect(holds, "ICMPv6 checksum for \(reason)")
                #expect(bed.engineA.counters.snapshot().drops[reason] == 1, "\(reason) counted")
            }
            #expect(bed.tunB.next(milliseconds: 200) == nil, "nothing left A")
            #expect(bed.engineA.counters.snapshot()[.icmpReplies] == 2)
        }
    }

    /// Datagrams with inner IPv6 that no peer may send: from a stranger, from a peer with a source
    /// outside its IPv6 subnet, to a destination outside ours.
    @Test(arguments: MemoryEngineTests.kinds, MemoryEngineTests.backends)
    func spoofedIPv6IsCountedAndNeverDelivered(kind: EngineConfiguration.Selection, backend: Backend) throws {
        try MemoryBed.with(kind, backend: backend, ipv6: true) { bed in
            let stranger = weft_udp_socket()
            try #require(stranger >= 0)
            defer { close(stranger) }
            // 127.0.0.2 is this host too (all of 127/8 is), but no lease names it.
            try #require(weft_bind_ipv4(stranger, IPv4Address(127, 0, 0, 2).networkOrder, 0) == 0)
            func datagram(_ source: IPv6Address, _ destination: IPv6Address) -> [UInt8] {
                let inner = udp6Packet(from: source, to: destination, data: .init(repeating: 2, count: 64))
                guard backend == .vxlan else { return inner }
                // VXLAN header (I flag, VNI 1) + inner Ethernet to B's VTEP MAC from A's, EtherType IPv6.
                return [0x08, 0, 0, 0, 0, 0, 1, 0] + [0x0a, 0, 0, 0, 0, 0x0b, 0x0a, 0, 0, 0, 0, 0x0a, 0x86, 0xDD]
                    + inner
            }
            let attempts: [(socket: Int32, payload: [UInt8], reason: DropReason)] = [
                (stranger, datagram(Self.containerA, Self.containerB), .unknownSender),
                (-1, datagram(IPv6Address("fc00:0:0:3::2")!, Self.containerB), .spoofedSource),
                (-1, datagram(Self.containerA, IPv6Address("fc00:0:0:3::9")!), .notOurSubnet),
            ]
            // The peer's own address: A's engine socket's, sent from a socket on 127.0.0.1.
            let peer = weft_udp_socket()
            try #require(peer >= 0)
            defer { close(peer) }
            try #require(weft_bind_ipv4(peer, MemoryBed.loopback.networkOrder, 0) == 0)
            for (socket, payload, reason) in attempts {
                let sent = payload.withUnsafeBytes {
                    weft_sendto_ipv4(
                        socket < 0 ? peer : socket,
                        $0.baseAddress,
                        $0.count,
                        MemoryBed.loopback.networkOrder,
                        bed.portB.bigEndian
                    )
                }
                #expect(sent == payload.count)
                var count: UInt64 = 0
                for _ in 0..<100 where count == 0 {
                    count = bed.engineB.counters.snapshot().drops[reason]
                    if count == 0 { usleep(10_000) }
                }
                #expect(count == 1, "\(reason): \(bed.engineB.counters.snapshot().drops.nonZero)")
            }
            #expect(bed.tunB.next(milliseconds: 200) == nil, "a refused packet reached B's TUN")
        }
    }
}

/// A TSO6 super-packet from A's TUN leaves as UDP_SEGMENT batches and reaches B's TUN coalesced
/// again (TCPV6), every byte in order.
@Suite(
    .ownThread,
    .timeLimit(.minutes(1)),
    .enabled(if: Engine.uringUnavailable == nil, "offloads need the io_uring engine")
)
struct MemoryIPv6OffloadTests {
    @Test(arguments: [Backend.udp, .vxlan])
    func aTCPv6SuperPacketIsSegmentedSentAndCoalescedAgain(backend: Backend) throws {
        try MemoryBed.with(.uring, backend: backend, offloads: true, ipv6: true) { bed in
            let payload = (0..<20_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) }
            let sequence: UInt32 = 0x2000_0000
            let mss = 1_280
            try bed.tunA.inject(tso6Packet(sequence: sequence, mss: mss, payload: payload))
            let (assembled, packets) = bed.tunB.receiveStream(from: sequence, length: payload.count, tcpOffset: 40) {
                packet,
                header in
                #expect(packet[0] >> 4 == 6 && packet[6] == 6, "IPv6 TCP")
                #expect(header.gsoType.kind == .none || header.gsoType.kind == .tcpV6, "\(header)")
            }
            #expect(assembled == payload, "\(assembled.count) of \(payload.count) bytes in order, \(packets) packets")
            let segments = UInt64((payload.count + mss - 1) / mss)
            var a = bed.engineA.counters.snapshot()
            for _ in 0..<200 where a[.wireSentPackets] < segments {
                usleep(10_000)
                a = bed.engineA.counters.snapshot()
            }
            let b = bed.engineB.counters.snapshot()
            #expect(a[.wireSentPackets] == segments, "\(a[.wireSentPackets]) datagrams for \(segments) segments")
            #expect(b[.coalescedSegments] > 0, "B coalesced \(b[.coalescedSegments])")
            #expect(a.drops.nonZero.isEmpty && b.drops.nonZero.isEmpty, "\(a.drops.nonZero) \(b.drops.nonZero)")
        }
    }

    /// As Linux hands a TCP super-packet to a TUN with TSO6: virtio-net header (TCPV6, NEEDS_CSUM),
    /// the TCP checksum field holding only the pseudo-header sum.
    private func tso6Packet(sequence: UInt32, mss: Int, payload: [UInt8]) -> [UInt8] {
        var tcp: [UInt8] = [0x9C, 0x40, 0x14, 0x51]  // ports 40000 → 5201
        withUnsafeBytes(of: sequence.bigEndian) { tcp += $0 }
        tcp += [0, 0, 0, 1, 0x50, 0x18, 0xFF, 0xFF, 0, 0, 0, 0]  // ack 1, data offset 5, ACK|PSH, window
        var packet = ipv6Packet(
            from: MemoryIPv6Tests.containerA,
            to: MemoryIPv6Tests.containerB,
            nextHeader: 6,
            payload: tcp + payload,
            checksumOffset: nil
        )
        packet.withUnsafeMutableBytes { bytes in
            let pseudo = IPv6Header(bytes.baseAddress!).pseudoHeaderSum(
                nextHeader: 6,
                length: tcp.count + payload.count
            )
            bytes.storeBytes(of: InternetChecksum.fold(pseudo), toByteOffset: 40 + 16, as: UInt16.self)
        }
        let header = VirtioNetHeader(
            flags: .needsChecksum,
            gsoType: .tcpV6,
            headerLength: 60,
            gsoSize: UInt16(mss),
            checksumStart: 40,
            checksumOffset: 16
        )
        var framed = [UInt8](repeating: 0, count: VirtioNetHeader.size)
        framed.withUnsafeMutableBytes { header.store(to: $0.baseAddress!) }
        return framed + packet
    }
}

extension IPv6Address {
    init(bytes: [UInt8], at offset: Int) {
        self = bytes.withUnsafeBytes { IPv6Address(loadingFrom: $0.baseAddress! + offset) }
    }
}
