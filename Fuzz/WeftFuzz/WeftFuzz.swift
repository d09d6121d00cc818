import Addressing
import Config
import Packets

// One libFuzzer entry for every parser that takes untrusted bytes. The first input byte picks the
// parser, so one corpus covers all of them; the rest is the input. A crash, an ASan report or a
// failed invariant below (via precondition) is a finding. Fuzz/Corpus holds seeds for each
// selector, cut from the capture fixtures (Fuzz/make-corpus.sh).

nonisolated(unsafe) private var coalescer = Coalescer(batchCapacity: 8, udp: true)
private let capacity = 70_000
nonisolated(unsafe) private let work = UnsafeMutableRawPointer.allocate(byteCount: capacity * 2, alignment: 64)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let selector = data[0]
    let body = UnsafeBufferPointer(start: data + 1, count: size - 1)
    switch selector % 11 {
    case 0:
        fuzzPacket(body) { packet in
            if IPv4.validateAndTrim(&packet) == nil {
                let header = IPv4Header(packet)
                precondition(header.headerLength <= packet.length && header.totalLength == packet.length)
                _ = IPv4.decrementTTL(packet)
                _ = TransportChecksum.isValid(packet)
                _ = VXLAN.sourcePort(forInner: packet)
            }
        }
    case 1:
        fuzzPacket(body) { packet in
            let before = packet.length
            if VXLAN.decapsulate(&packet, vni: 1, localMAC: MACAddress(0x0200_0000_0001)) == nil {
                precondition(packet.length <= before - VXLAN.overhead)
            }
        }
    case 2:
        fuzzPacket(body) { packet in
            for link in [LinkLayer.ethernet, .raw, .linuxCooked, .linuxCooked2] {
                for lengths in [OuterDatagram.Lengths.strict, .superFrames] {
                    if case .datagram(let outer) = OuterDatagram.parse(packet, link: link, lengths: lengths) {
                        precondition(outer.payload.headroom + outer.payload.length <= packet.headroom + packet.length)
                        _ = outer.hasValidChecksum
                    }
                }
            }
        }
    case 3:
        fuzzPacket(body) { packet in
            let reply = work + capacity
            _ = ICMPUnreachable.write(
                .netUnreachable,
                offender: packet,
                source: IPv4Address(10, 244, 1, 0),
                to: reply,
                capacity: ICMPUnreachable.maximumLength
            )
        }
    case 4:
        fuzzPacket(body) { packet in
            // A virtio-net header followed by the packet, as a TUN with IFF_VNET_HDR hands it out.
            guard packet.length >= VirtioNetHeader.size else { return }
            let header = VirtioNetHeader(loadingFrom: packet.start)
            packet.consume(VirtioNetHeader.size)
            guard header.validate(packetLength: packet.length) == nil else { return }
            let output = work + capacity
            _ = Segmentation.completeChecksum(packet, header: header)
            // An overlay MTU below most senders' MSS, so TCP super-packets are re-cut (PathFit).
            if case .segmented(let layout) = Segmentation.segmentHeaders(
                packet,
                header: header,
                into: output,
                capacity: capacity,
                gap: VXLAN.overhead,
                innerMTU: 1400
            ) {
                precondition(layout.headerBytes <= capacity)
                precondition(layout.payloadOffset(ofSegment: layout.count - 1) <= packet.length)
            }
        }
    case 5: fuzzCoalescing(body)
    case 8: fuzzPacket(body, fuzzIPv6)
    case 9: fuzzPacket(body, fuzzICMPv6Error)
    case 10:
        fuzzPacket(body) { packet in
            let before = packet.length
            if VXLAN.decapsulateIPv6(&packet, vni: 1, localMAC: MACAddress(0x0200_0000_0001)) == nil {
                precondition(packet.length <= before - VXLAN.overhead && IPv6.validate(packet) == nil)
            }
        }
    case 6:
        let text = String(decoding: body, as: UTF8.self)
        _ = try? NetworkConfig.parse(Array(body))
        _ = try? LeaseAttributes.parse(Array(body))
        _ = LeaseKey(parsing: text)
    default:
        let text = String(decoding: body, as: UTF8.self)
        _ = try? SubnetEnv.parse(text)
        _ = IPv4Prefix(text)
        _ = MACAddress(text)
    }
    return 0
}

/// An inner IPv6 packet as the TUN or a peer hands it over: validation, the extension-header walk,
/// the checks and rewrites forwarding does.
private func fuzzIPv6(_ packet: inout PacketBuffer) {
    guard IPv6.validateAndTrim(&packet) == nil else { return }
    precondition(packet.length == IPv6Header.length + Int(packet.load16(4)))
    if let upper = IPv6.upperLayer(packet.start, length: packet.length) {
        precondition(upper.offset >= IPv6Header.length && upper.offset <= packet.length)
    }
    _ = TransportChecksum.isValid(packet)
    _ = VXLAN.sourcePort(forInner: packet)
    let hopLimit = packet[7]
    if IPv6.decrementHopLimit(packet) == nil { precondition(packet[7] == hopLimit - 1) }
}

/// Each ICMPv6 error for the input as the offender, written apart and in place: a reply must be a
/// sound IPv6 packet within the minimum MTU, addressed back to the offender's source.
private func fuzzICMPv6Error(_ packet: inout PacketBuffer) {
    let source = IPv6Address(0xFC00_0000_0000_0001 << 64)
    let reply = work + capacity
    for kind in [ICMPv6Error.Kind.noRoute, .packetTooBig(mtu: 1430), .hopLimitExceeded] {
        guard
            let length = ICMPv6Error.write(
                kind,
                offender: packet,
                source: source,
                to: reply,
                capacity: ICMPv6Error.maximumLength
            )
        else { continue }
        let written = PacketBuffer(base: reply, headroom: 0, length: length, capacity: length)
        precondition(length <= ICMPv6Error.maximumLength && IPv6.validate(written) == nil)
        precondition(IPv6Header(written).destination == IPv6Header(packet).source)
    }
    var inPlace = packet
    if ICMPv6Error.replace(&inPlace, with: .hopLimitExceeded, source: source) {
        precondition(IPv6.validate(inPlace) == nil && inPlace.length <= ICMPv6Error.maximumLength)
    }
}

/// Copies the input into a buffer with headroom, so in-place rewrites have room and ASan sees
/// exactly the bytes the parser may touch.
private func fuzzPacket(_ body: UnsafeBufferPointer<UInt8>, _ run: (inout PacketBuffer) -> Void) {
    let length = min(body.count, capacity - 128)
    if length > 0 { (work + 64).copyMemory(from: body.baseAddress!, byteCount: length) }
    var packet = PacketBuffer(base: work, headroom: 64, length: length, capacity: 64 + length)
    run(&packet)
}

/// Splits the input into up to 8 packets (2-byte length prefixes) and coalesces them as one batch.
private func fuzzCoalescing(_ body: UnsafeBufferPointer<UInt8>) {
    let slot = capacity / 8
    var packets = [PacketBuffer]()
    var offset = 0
    while packets.count < 8, offset + 2 <= body.count {
        let length = min(Int(body[offset]) << 8 | Int(body[offset + 1]), body.count - offset - 2, slot - 64)
        let base = work + packets.count * slot
        if length > 0 { (base + 64).copyMemory(from: body.baseAddress! + offset + 2, byteCount: length) }
        packets.append(PacketBuffer(base: base, headroom: 64, length: length, capacity: slot))
        offset += 2 + length
    }
    guard !packets.isEmpty else { return }
    let headers = work + capacity
    var writes = [CoalescedWrite](
        repeating: CoalescedWrite(packet: 0, firstPiece: 0, pieceCount: 0, byteCount: 0),
        count: packets.count
    )
    var pieces = [GatherPiece](repeating: GatherPiece(start: work, count: 0), count: 2 * packets.count)
    packets.withUnsafeMutableBufferPointer { batch in
        writes.withUnsafeMutableBufferPointer { writes in
            pieces.withUnsafeMutableBufferPointer { pieces in
                let written = coalescer.coalesce(batch, headers: headers, into: writes, pieces: pieces)
                precondition(written <= batch.count)
                for write in writes.prefix(written) {
                    precondition(write.firstPiece + write.pieceCount <= pieces.count)
                }
            }
        }
    }
}
