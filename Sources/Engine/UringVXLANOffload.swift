import Forwarding
import Packets
import Routes

/// The vxlan backend's send side with offloads: a TUN super-packet goes out as VXLAN datagrams in
/// UDP_SEGMENT sends, framed exactly as `fromTUN` frames a packet sent on its own. The receive side
/// is the udp backend's (`coalescedReceive`): each datagram of a UDP_GRO receive goes through
/// `fromWire`, so VNI, inner MAC, sender and anti-spoofing are checked per datagram.
extension UringLoop {
    /// `payload` is the super-packet as `fromTUN` left it: encapsulated once, in front of the whole
    /// packet. Each segment's headers are written behind a gap of VXLAN header + inner Ethernet,
    /// the forwarder frames each segment in its gap, and every datagram gathers its framed headers
    /// and its payload where the TUN read left it. The sends leave from the source-port socket the
    /// flow's packets leave from one by one (the hash reads addresses and ports only, which every
    /// segment shares), so one TCP flow keeps one outer source port, as with the kernel's device.
    mutating func sendVXLANSegments(_ id: Int, _ payload: PacketBuffer, header: VirtioNetHeader, to nextHop: NextHop) {
        let sender = sourcePorts.socket(for: payload, forwarder: forwarder, bound: socket)
        var inner = payload
        inner.consume(VXLAN.overhead)
        let output = buffers.base(id) + buffers.tunOutputOffset
        let layout: GatheredSegments
        switch Segmentation.segmentHeaders(inner, header: header, into: output, capacity: buffers.regionBytes,
                                           gap: VXLAN.overhead) {
        case .segmented(let result): layout = result
        case .dropped(let reason):
            counters.countDrop(reason)
            return stage(id)
        }
        for index in 0..<layout.count {
            var headers = PacketBuffer(base: output, headroom: layout.headerOffset(ofSegment: index) + layout.gap,
                                       length: layout.headersLength, capacity: layout.headerBytes)
            // The gap is the encapsulation's size exactly, so this cannot come up short.
            guard forwarder.encapsulate(&headers, to: nextHop) else {
                counters.countDrop(.oversize)
                return stage(id)
            }
        }
        submitSegmentSends(id, layout, headers: output, payload: inner, to: nextHop, from: sender)
    }
}
