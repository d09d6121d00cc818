import Addressing
import Config
import Packets

// One libFuzzer entry for every parser that takes untrusted bytes. The first input byte picks the
// parser, so one corpus covers all of them; the rest is the input. A crash, an ASan report or a
// failed invariant below (via precondition) is a finding.

nonisolated(unsafe) private var coalescer = TCPCoalescer(batchCapacity: 8)
private let capacity = 70_000
nonisolated(unsafe) private let work = UnsafeMutableRawPointer.allocate(byteCount: capacity * 2, alignment: 64)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let selector = data[0]
    let body = UnsafeBufferPointer(start: data + 1, count: size - 1)
    switch selector % 8 {
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
            _ = Segmentation.segment(packet, header: header, into: output, capacity: capacity, gap: VXLAN.overhead)
        }
    case 5: fuzzCoalescing(body)
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
    var order = [Int](repeating: -1, count: packets.count)
    packets.withUnsafeMutableBufferPointer { batch in
        order.withUnsafeMutableBufferPointer { writeOrder in
            let written = coalescer.coalesce(batch, into: writeOrder)
            precondition(written <= batch.count)
        }
    }
}
