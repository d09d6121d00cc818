/// Receive-side coalescing (software GRO) of inner IPv4 and IPv6 TCP segments, and of UDP
/// datagrams, into super-packets for a TUN opened with IFF_VNET_HDR (DESIGN.md §3): one write of
/// up to 64 KB instead of dozens of writes.
///
/// Design: nothing is moved. A super-packet is a gather list for one writev: its virtio-net header
/// (written into caller-provided room), the first segment of the flow (the head) whole, then the
/// payload of each segment appended to it, where each was received. Only the head's own IP and TCP
/// headers are rewritten (total length, checksums, PSH). So segments may lie back to back in one
/// receive buffer, as a UDP_GRO receive hands them in, and a head needs neither headroom nor
/// tailroom; the memory must stay untouched until the writes have been done.
///
/// A segment is appended to the latest head of its flow (same addresses and ports) only when:
/// the IP headers are equal apart from total length, ID and checksum (so same TOS/ECN, TTL, DF,
/// options) and neither is a fragment; its sequence number follows the head's data; its ACK number,
/// TCP header length, flags and option bytes equal the head's, except that it may add PSH (which
/// then ends the super-packet) and may not carry SYN, FIN, RST, URG or CWR; its payload is non-empty
/// and no larger than the head's first payload (a shorter one ends the super-packet); the result
/// stays within 65,535 bytes; and both its IPv4 header checksum and its TCP checksum verify. The
/// last rule matters because the super-packet goes to the kernel as CHECKSUM_PARTIAL, which the
/// local TCP stack trusts without verifying, so a segment corrupted on the wire would otherwise be
/// delivered. The head's checksums are verified once, the first time something could be appended.
///
/// UDP (only when asked: the TUN must take USO, Linux ≥ 6.2): a datagram is appended to the latest
/// head of its flow when the IP headers are equal as above, its UDP length field agrees with the IP
/// total length, its payload is non-empty and no larger than the head's first payload (a shorter
/// one ends the super-packet), the head holds fewer than 64 datagrams (the kernel's UDP_GRO_CNT_MAX)
/// and the result stays within 65,535 bytes, and both checksums verify (a UDP checksum of 0, "none",
/// passes). The kernel splits the super-packet again (GSO_UDP_L4) where it is delivered or sent on,
/// so a receiving socket reads the same datagrams, with fresh IP IDs and computed UDP checksums.
///
/// IPv6 follows the same rules, with the fixed header in the IPv4 header's place: version,
/// traffic class, flow label, next header, hop limit and addresses equal (as Linux's
/// ipv6_gro_receive compares them), TCP or UDP right behind the fixed header. A packet with
/// extension headers passes through uncoalesced (and closes its flow's head). Its super-packet is
/// TCPV6 or UDP_L4, and a UDP checksum of 0 does not pass: over IPv6 it is invalid (RFC 8200 §8.1)
/// and the kernel would drop the datagram, so it is left alone for the kernel to drop.
///
/// Any segment of a flow that is not appended closes that flow's head (and becomes the new head if
/// it can be one), so packets of one flow keep their order; packets of different flows may leave
/// in a different order. Packets that are not TCP or UDP, or are malformed, pass through
/// untouched; one that still names a flow's addresses and ports (a first fragment, a UDP length
/// that disagrees, a TCP data offset out of range, IPv6 extension headers) closes that flow's head
/// too.
///
/// Fixed capacity and allocation-free per batch: the flow table and per-packet state are allocated
/// once, at `init`. One coalescer per worker; it is Sendable so a worker can be handed its own,
/// and being noncopyable, its storage always has exactly one owner.
public struct Coalescer: ~Copyable, @unchecked Sendable {
    /// Most packets one `coalesce` call accepts.
    public let batchCapacity: Int
    /// UDP datagrams are coalesced too (into GSO_UDP_L4 super-packets).
    public let coalescesUDP: Bool
    private let states: UnsafeMutablePointer<CoalescingState>
    private let slots: UnsafeMutablePointer<CoalescingFlowSlot>
    private let slotMask: Int
    /// Slots stamped with an older generation are empty: a new batch costs no clearing.
    private var generation: UInt32 = 0

    /// Most datagrams in one UDP super-packet (the kernel's UDP_GRO_CNT_MAX).
    public static let udpSegmentLimit = 64

    public init(batchCapacity: Int, udp: Bool = false) {
        precondition(batchCapacity > 0, "Coalescer: batchCapacity \(batchCapacity) must be positive")
        self.batchCapacity = batchCapacity
        coalescesUDP = udp
        // At most one flow per packet, so the table is never more than half full.
        var slotCount = 16
        while slotCount < 2 * batchCapacity { slotCount *= 2 }
        states = .allocate(capacity: batchCapacity)
        states.initialize(repeating: CoalescingState(), count: batchCapacity)
        slots = .allocate(capacity: slotCount)
        slots.initialize(repeating: CoalescingFlowSlot(), count: slotCount)
        slotMask = slotCount - 1
    }

    deinit {
        states.deallocate()
        slots.deallocate()
    }

    /// Coalesces a batch of inner IPv4 and IPv6 packets into TUN writes, in the order to write them;
    /// returns how many there are. Write `w` is `writes[w].pieceCount` pieces from `pieces[writes[w].firstPiece]`
    /// on: first its virtio-net header, stored at `headers + w * VirtioNetHeader.size`, then its
    /// bytes. A super-packet's header describes it (TCPV4, TCPV6 or UDP_L4, NEEDS_CSUM, its TCP or UDP
    /// checksum field holding the pseudo-header sum as Linux expects for CHECKSUM_PARTIAL); anything
    /// else gets `.plain` and is written as it came. `headers` needs room for `packets.count`
    /// headers, `writes` for `packets.count` writes and `pieces` for `2 * packets.count` pieces.
    public mutating func coalesce(
        _ packets: UnsafeMutableBufferPointer<PacketBuffer>,
        headers: UnsafeMutableRawPointer,
        into writes: UnsafeMutableBufferPointer<CoalescedWrite>,
        pieces: UnsafeMutableBufferPointer<GatherPiece>
    ) -> Int {
        precondition(
            packets.count <= batchCapacity && writes.count >= packets.count && pieces.count >= 2 * packets.count,
            "coalesce: \(packets.count) packets need batchCapacity (\(batchCapacity)), writes (\(writes.count)) at least as large and twice as many pieces (\(pieces.count))"
        )
        startBatch()
        for index in packets.indices {
            states[index] = CoalescingState()
            guard let segment = CoalescingSegment(packets[index], udp: coalescesUDP) else {
                closeFlow(of: packets[index])
                continue
            }
            let slot = findSlot(segment.key)
            let head = Int(slots[slot].head)
            var corrupt = false
            if head >= 0 {
                switch append(segment, index: index, to: head, packets) {
                case .appended: continue
                case .rejected: break
                case .corrupt: corrupt = true
                }
            }
            slots[slot].head = !corrupt && startHead(segment, index: index) ? Int32(index) : -1
        }
        var count = 0
        var piece = 0
        for index in packets.indices where states[index].role != .appended {
            let header = headers + count * VirtioNetHeader.size
            writes[count] = finish(packets, index: index, header: header, pieces: pieces, from: piece)
            piece += writes[count].pieceCount
            count += 1
        }
        return count
    }

    private mutating func startBatch() {
        generation &+= 1
        if generation == 0 {
            for slot in 0...slotMask { slots[slot].generation = 0 }
            generation = 1
        }
    }

    /// The slot holding `key` in this batch, claimed if new.
    private func findSlot(_ key: CoalescingFlowKey) -> Int {
        let (slot, found) = probe(key)
        if !found { slots[slot] = CoalescingFlowSlot(generation: generation, head: -1, key: key) }
        return slot
    }

    /// Where `key` sits in this batch's table, or the empty slot it would take.
    private func probe(_ key: CoalescingFlowKey) -> (slot: Int, found: Bool) {
        var slot = key.hashSlot & slotMask
        while slots[slot].generation == generation {
            if slots[slot].key == key { return (slot, true) }
            slot = (slot + 1) & slotMask
        }
        return (slot, false)
    }

    /// Closes the open head of the flow a passed-through packet names, if it has one, so the flow's
    /// later segments cannot be written ahead of it. Packets without the ports (later fragments,
    /// runts) name no flow.
    private mutating func closeFlow(of packet: PacketBuffer) {
        typealias F = GSOFields
        let ip = packet.start
        guard packet.length >= F.ipMinimumHeader else { return }
        let versionIHL = F.load8(ip, F.ipVersionIHL)
        if versionIHL >> 4 == 6 {
            // Behind extension headers, a first fragment's ports are still the flow's.
            guard let (offset, proto, fragmentOffset) = IPv6.upperLayer(ip, length: packet.length),
                fragmentOffset == 0, offset + 4 <= packet.length,
                proto == F.protocolTCP || (coalescesUDP && proto == F.protocolUDP)
            else { return }
            let key = CoalescingFlowKey(ip: ip, transport: ip + offset, isUDP: proto == F.protocolUDP, isIPv6: true)
            let (slot, found) = probe(key)
            if found { slots[slot].head = -1 }
            return
        }
        let ipHeaderLength = Int(versionIHL & 0x0F) * 4
        let proto = F.load8(ip, F.ipProtocol)
        guard versionIHL >> 4 == 4, ipHeaderLength >= F.ipMinimumHeader, ipHeaderLength + 4 <= packet.length,
            proto == F.protocolTCP || (coalescesUDP && proto == F.protocolUDP),
            F.load16(ip, F.ipFlagsFragment) & F.ipFragmentOffset == 0
        else { return }
        let (slot, found) = probe(
            CoalescingFlowKey(
                ip: ip,
                transport: ip + ipHeaderLength,
                isUDP: proto == F.protocolUDP,
                isIPv6: false
            )
        )
        if found { slots[slot].head = -1 }
    }

    /// Makes packet `index` a head if more segments could follow it; false if it cannot be one.
    private func startHead(_ segment: CoalescingSegment, index: Int) -> Bool {
        typealias F = GSOFields
        guard segment.payloadLength > 0 else { return false }
        var nextSequence: UInt32 = 0
        if !segment.isUDP {
            let flags = F.load8(segment.transport, F.tcpFlags)
            guard flags & (F.tcpSYN | F.tcpFIN | F.tcpRST | F.tcpURG | F.tcpPSH) == 0 else { return false }
            nextSequence = F.load32(segment.transport, F.tcpSequence) &+ UInt32(segment.payloadLength)
        }
        states[index] = CoalescingState(
            role: .head,
            isUDP: segment.isUDP,
            isIPv6: segment.isIPv6,
            ipHeaderLength: segment.ipHeaderLength,
            transportHeaderLength: segment.transportHeaderLength,
            totalLength: segment.totalLength,
            segmentPayload: segment.payloadLength,
            segmentCount: 1,
            nextSequence: nextSequence,
            isClosed: false,
            checksumVerified: false,
            headLength: segment.totalLength,
            last: Int32(index)
        )
        return true
    }

    private enum AppendOutcome { case appended, rejected, corrupt }

    private func append(
        _ segment: CoalescingSegment,
        index: Int,
        to head: Int,
        _ packets: UnsafeMutableBufferPointer<PacketBuffer>
    ) -> AppendOutcome {
        typealias F = GSOFields
        var state = states[head]
        let headIP = packets[head].start
        let headTransport = headIP + state.ipHeaderLength
        let ip = segment.ip
        guard !state.isClosed,
            segment.isIPv6 == state.isIPv6,
            segment.ipHeaderLength == state.ipHeaderLength,
            segment.transportHeaderLength == state.transportHeaderLength,
            segment.payloadLength > 0, segment.payloadLength <= state.segmentPayload
        else { return .rejected }

        var pushes = false
        if state.isUDP {
            guard state.segmentCount < Self.udpSegmentLimit else { return .rejected }
        } else {
            let tcp = segment.transport
            guard F.load32(tcp, F.tcpSequence) == state.nextSequence,
                F.loadRaw32(tcp, F.tcpAcknowledgment) == F.loadRaw32(headTransport, F.tcpAcknowledgment)
            else { return .rejected }
            let flags = F.load8(tcp, F.tcpFlags)
            guard flags & (F.tcpSYN | F.tcpFIN | F.tcpRST | F.tcpURG | F.tcpCWR) == 0,
                flags & ~F.tcpPSH == F.load8(headTransport, F.tcpFlags) & ~F.tcpCWR,
                memoryEqual(
                    tcp + F.tcpMinimumHeader,
                    headTransport + F.tcpMinimumHeader,
                    state.transportHeaderLength - F.tcpMinimumHeader
                )
            else { return .rejected }
            pushes = flags & F.tcpPSH != 0
        }

        if state.isIPv6 {
            // Version, traffic class and flow label; next header and hop limit; addresses.
            guard F.loadRaw32(ip, F.ip6VersionClassFlow) == F.loadRaw32(headIP, F.ip6VersionClassFlow),
                F.load16(ip, F.ip6NextHeader) == F.load16(headIP, F.ip6NextHeader),
                memoryEqual(ip + F.ip6Source, headIP + F.ip6Source, F.ip6Header - F.ip6Source)
            else { return .rejected }
        } else {
            // Version/IHL and TOS; flags/fragment, TTL and protocol; addresses and options.
            guard F.load16(ip, 0) == F.load16(headIP, 0),
                F.loadRaw32(ip, F.ipFlagsFragment) == F.loadRaw32(headIP, F.ipFlagsFragment),
                memoryEqual(ip + F.ipSource, headIP + F.ipSource, state.ipHeaderLength - F.ipSource)
            else { return .rejected }
        }

        let newTotalLength = state.totalLength + segment.payloadLength
        guard newTotalLength <= 65_535 else { return .rejected }

        if !state.checksumVerified {
            guard let headSegment = CoalescingSegment(packets[head], udp: coalescesUDP), headSegment.checksumsVerify()
            else {
                states[head].isClosed = true
                return .rejected
            }
            state.checksumVerified = true
        }
        guard segment.checksumsVerify() else {
            states[head] = state
            return .corrupt
        }

        // Chained behind the head's last piece; its payload is gathered from where it lies.
        if Int(state.last) == head { state.next = Int32(index) } else { states[Int(state.last)].next = Int32(index) }
        state.last = Int32(index)
        states[index] = CoalescingState(role: .appended, segmentPayload: segment.payloadLength)
        state.totalLength = newTotalLength
        state.segmentCount += 1
        state.nextSequence &+= UInt32(segment.payloadLength)
        if segment.payloadLength < state.segmentPayload { state.isClosed = true }
        if pushes {
            headTransport.storeBytes(
                of: F.load8(headTransport, F.tcpFlags) | F.tcpPSH,
                toByteOffset: F.tcpFlags,
                as: UInt8.self
            )
            state.isClosed = true
        }
        states[head] = state
        return .appended
    }

    /// Fixes a super-packet's headers, stores the write's virtio header at `header` and lays out
    /// its pieces from `pieces[first]` on.
    private func finish(
        _ packets: UnsafeMutableBufferPointer<PacketBuffer>,
        index: Int,
        header: UnsafeMutableRawPointer,
        pieces: UnsafeMutableBufferPointer<GatherPiece>,
        from first: Int
    ) -> CoalescedWrite {
        typealias F = GSOFields
        let state = states[index]
        let packet = packets[index]
        pieces[first] = GatherPiece(start: header, count: VirtioNetHeader.size)
        guard state.role == .head && state.segmentCount > 1 else {
            VirtioNetHeader.plain.store(to: header)
            pieces[first + 1] = GatherPiece(start: packet.start, count: packet.length)
            return CoalescedWrite(
                packet: index,
                firstPiece: first,
                pieceCount: 2,
                byteCount: VirtioNetHeader.size + packet.length
            )
        }
        let ip = packet.start
        let transport = ip + state.ipHeaderLength
        let transportLength = state.totalLength - state.ipHeaderLength
        F.storeIPLength(ip, isIPv6: state.isIPv6, length: state.totalLength, ipHeaderLength: state.ipHeaderLength)
        let gsoType: VirtioNetHeader.GSOType
        let checksumOffset: Int
        if state.isUDP {
            F.store16(transport, F.udpLength, UInt16(transportLength))
            gsoType = .udpL4
            checksumOffset = F.udpChecksum
        } else {
            gsoType = (state.isIPv6 ? VirtioNetHeader.GSOType.tcpV6 : .tcpV4)
                .withECN(F.load8(transport, F.tcpFlags) & F.tcpCWR != 0)
            checksumOffset = F.tcpChecksum
        }
        let pseudo = F.pseudoHeaderSum(
            ip,
            isIPv6: state.isIPv6,
            protocol: state.isUDP ? F.protocolUDP : F.protocolTCP,
            length: transportLength
        )
        F.storeChecksum(transport, checksumOffset, InternetChecksum.fold(pseudo))
        VirtioNetHeader(
            flags: .needsChecksum,
            gsoType: gsoType,
            headerLength: UInt16(state.ipHeaderLength + state.transportHeaderLength),
            gsoSize: UInt16(state.segmentPayload),
            checksumStart: UInt16(state.ipHeaderLength),
            checksumOffset: UInt16(checksumOffset)
        ).store(to: header)
        pieces[first + 1] = GatherPiece(start: ip, count: state.headLength)
        let headers = state.ipHeaderLength + state.transportHeaderLength
        var count = 2
        var next = Int(state.next)
        while next >= 0 {
            pieces[first + count] = GatherPiece(
                start: packets[next].start + headers,
                count: states[next].segmentPayload
            )
            count += 1
            next = Int(states[next].next)
        }
        return CoalescedWrite(
            packet: index,
            firstPiece: first,
            pieceCount: count,
            byteCount: VirtioNetHeader.size + state.totalLength
        )
    }
}

@inline(__always)
private func memoryEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ count: Int) -> Bool {
    var offset = 0
    while offset + 4 <= count {
        if a.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
            != b.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
        {
            return false
        }
        offset += 4
    }
    while offset < count {
        if a.load(fromByteOffset: offset, as: UInt8.self) != b.load(fromByteOffset: offset, as: UInt8.self) {
            return false
        }
        offset += 1
    }
    return true
}

/// What the coalescer knows of one packet of the batch.
struct CoalescingState {
    enum Role { case passThrough, head, appended }
    var role: Role = .passThrough
    /// A UDP head (no sequence numbers or flags to follow); TCP otherwise.
    var isUDP = false
    var isIPv6 = false
    var ipHeaderLength = 0
    var transportHeaderLength = 0
    /// IP total length of the super-packet so far.
    var totalLength = 0
    /// Payload of the first segment: the gso_size of the super-packet.
    var segmentPayload = 0
    var segmentCount = 0
    /// TCP: the sequence number the next segment must carry.
    var nextSequence: UInt32 = 0
    /// No further segment may be appended (a short one or one with PSH came, or the head is corrupt).
    var isClosed = false
    var checksumVerified = false
    /// The head's own IP total length, before anything was appended.
    var headLength = 0
    /// The head's last appended packet (the head itself until one is), and each chained packet's
    /// successor, or -1.
    var last: Int32 = -1
    var next: Int32 = -1
}

/// `count` bytes at `start`: one piece of a gathered write.
public struct GatherPiece: Equatable {
    public var start: UnsafeRawPointer
    public var count: Int

    @inlinable public init(start: UnsafeRawPointer, count: Int) {
        self.start = start
        self.count = count
    }
}

/// One TUN write of a coalesced batch: `pieceCount` pieces from `firstPiece` on, `byteCount` bytes
/// in all, the first piece its virtio-net header; `packet` is the batch index of its first packet.
public struct CoalescedWrite: Equatable, Sendable {
    public var packet: Int
    public var firstPiece: Int
    public var pieceCount: Int
    public var byteCount: Int

    @inlinable public init(packet: Int, firstPiece: Int, pieceCount: Int, byteCount: Int) {
        self.packet = packet
        self.firstPiece = firstPiece
        self.pieceCount = pieceCount
        self.byteCount = byteCount
    }
}

/// Addresses and ports as they sit in memory, and the protocol and IP version.
///
/// An IPv6 address is folded to 32 bits (its four words XORed), so the key stays as small as
/// IPv4's: two IPv6 flows may then share a key, which costs coalescing, never correctness.
/// `append` compares the whole headers, so a segment of the other flow is not appended; it
/// closes the head and takes the slot, as any segment that is not appended does.
struct CoalescingFlowKey: Equatable {
    var source: UInt32 = 0
    var destination: UInt32 = 0
    var ports: UInt32 = 0
    /// Bit 0: UDP (TCP otherwise); bit 1: IPv6.
    var kind: UInt8 = 0

    init() {}

    /// The key of the packet whose IP header is at `ip` and transport header at `transport`.
    init(ip: UnsafeRawPointer, transport: UnsafeRawPointer, isUDP: Bool, isIPv6: Bool) {
        typealias F = GSOFields
        if isIPv6 {
            source = Self.fold(ip + F.ip6Source)
            destination = Self.fold(ip + F.ip6Source + 16)
        } else {
            source = F.loadRaw32(ip, F.ipSource)
            destination = F.loadRaw32(ip, F.ipDestination)
        }
        ports = F.loadRaw32(transport, 0)
        kind = (isUDP ? 1 : 0) | (isIPv6 ? 2 : 0)
    }

    static func fold(_ address: UnsafeRawPointer) -> UInt32 {
        typealias F = GSOFields
        return F.loadRaw32(address, 0) ^ F.loadRaw32(address, 4) ^ F.loadRaw32(address, 8) ^ F.loadRaw32(address, 12)
    }

    var hashSlot: Int {
        var mixed = (UInt64(source) << 32 | UInt64(destination)) &* 0x9E37_79B9_7F4A_7C15
        mixed ^= (UInt64(ports) | UInt64(kind) << 32) &* 0xC2B2_AE3D_27D4_EB4F
        mixed ^= mixed >> 29
        return Int(truncatingIfNeeded: mixed)
    }
}

struct CoalescingFlowSlot {
    var generation: UInt32 = 0
    /// Index of the flow's open head in the batch, or -1.
    var head: Int32 = -1
    var key = CoalescingFlowKey()
}

/// A well-formed, unfragmented IPv4 TCP packet of the batch, or IPv6 TCP packet without extension
/// headers, or such a UDP datagram when UDP is coalesced; `nil` for anything else.
struct CoalescingSegment {
    let ip: UnsafeMutableRawPointer
    let transport: UnsafeMutableRawPointer
    let isUDP: Bool
    let isIPv6: Bool
    let ipHeaderLength: Int
    let transportHeaderLength: Int
    /// IP total length; bytes past it in the buffer (link-layer padding) are not the packet's.
    let totalLength: Int
    var payloadLength: Int { totalLength - ipHeaderLength - transportHeaderLength }
    var key: CoalescingFlowKey { CoalescingFlowKey(ip: ip, transport: transport, isUDP: isUDP, isIPv6: isIPv6) }

    init?(_ packet: PacketBuffer, udp: Bool) {
        typealias F = GSOFields
        let ip = packet.start
        // An extension header in front of TCP or UDP fails the protocol test.
        guard case .valid(let header) = CheckedIPHeader.read(packet),
            header.proto == F.protocolTCP || (udp && header.proto == F.protocolUDP), !header.isFragment(ip),
            case .valid(let transportHeaderLength) = header.transportHeaderLength(
                ip,
                isTCP: header.proto == F.protocolTCP
            )
        else { return nil }
        let transport = ip + header.headerLength
        let isUDP = header.proto == F.protocolUDP
        guard !isUDP || Int(F.load16(transport, F.udpLength)) == header.totalLength - header.headerLength else {
            return nil
        }
        self.ip = ip
        self.transport = transport
        self.isUDP = isUDP
        self.isIPv6 = header.isIPv6
        self.ipHeaderLength = header.headerLength
        self.transportHeaderLength = transportHeaderLength
        self.totalLength = header.totalLength
    }

    /// The IPv4 header checksum (IPv6 has none) and the transport checksum verify; a UDP checksum
    /// of 0 (none) passes over IPv4 and fails over IPv6, where it is invalid.
    func checksumsVerify() -> Bool {
        typealias F = GSOFields
        let transportLength = totalLength - ipHeaderLength
        guard isIPv6 || InternetChecksum.isValid(ip, count: ipHeaderLength) else { return false }
        if isUDP && F.load16(transport, F.udpChecksum) == 0 { return !isIPv6 }
        return InternetChecksum.isValid(
            transport,
            count: transportLength,
            initial: F.pseudoHeaderSum(
                ip,
                isIPv6: isIPv6,
                protocol: isUDP ? F.protocolUDP : F.protocolTCP,
                length: transportLength
            )
        )
    }
}
