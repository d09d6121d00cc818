import Addressing
import CShims
import Forwarding
import Glibc
import Packets
import Routes

/// The uring loop on a path with a smaller MTU than our interface (`PathMTUs`): what does not fit
/// the learned path MTU is answered with ICMP fragmentation needed (DF) or sent from the path
/// socket to be fragmented (no DF); a send the kernel refused with EMSGSIZE teaches the path MTU
/// and its packets are handled the same way, so none is lost to the moment of learning.
extension UringLoop {
    /// Buffer `id`'s packet (as `fromTUN` left it) does not fit `pathMTU` to `nextHop`.
    mutating func sendUnfitting(_ id: Int, _ packet: PacketBuffer, to nextHop: NextHop, pathMTU: Int) {
        address(id, to: nextHop)
        buffers.vectors[id] = iovec(iov_base: packet.start, iov_len: packet.length)
        answerOrSendFromPath(id, packet, pathMTU: pathMTU)
    }

    /// Buffer `id`'s send (its sockaddr and iovec still set) failed with EMSGSIZE: learn the path
    /// MTU (unless `learned` already), then answer or resend its packet. The caller still releases
    /// the failed send.
    mutating func resendToFit(_ id: Int, learned: Int? = nil) {
        let peer = buffers.peers[id]
        let pathMTU =
            learned
            ?? paths.learn(IPv4Address(networkOrder: peer.sin_addr.s_addr), port: UInt16(bigEndian: peer.sin_port))
        let vector = buffers.vectors[id]
        let base = buffers.base(id)
        guard let start = vector.iov_base else { return }
        let packet = PacketBuffer(
            base: base,
            headroom: start - base,
            length: vector.iov_len,
            capacity: buffers.packetCapacity(id)
        )
        answerOrSendFromPath(id, packet, pathMTU: pathMTU ?? 0)
    }

    /// ICMP fragmentation needed into the TUN when the packet has DF and a reply is due, else a
    /// send from the path socket (whole; the kernel or the router fragments the outer datagram).
    private mutating func answerOrSendFromPath(_ id: Int, _ packet: PacketBuffer, pathMTU: Int) {
        if pathMTU > 0, var reply = paths.answer(packet, pathMTU: pathMTU, forwarder: forwarder) {
            if offloads {
                // Headroom: the reply starts 28 bytes before the quoted header, which was at ≥ 64.
                _ = reply.prepend(VirtioNetHeader.size)
                VirtioNetHeader.plain.store(to: reply.start)
            }
            return writeToTUN(id, reply)
        }
        let entry = nextSubmission()
        weft_prep_sendmsg(entry, paths.socket, buffers.messages + id, 0)
        weft_sqe_set_user_data(entry, UringOperation.pathSend.userData(id))
        pending[id] += 1
        inFlight += 1
        counters.count(.pathMTULimitedSends)
    }

    mutating func pathSendCompleted(_ id: Int, result: Int32) {
        guard id < buffers.bufferCount else { return }
        inFlight -= 1
        countSend(id, result: result)
        release(id)
    }

    /// A super-packet's UDP_SEGMENT send failed with EMSGSIZE (the kernel learned a smaller path
    /// MTU while it was cut for the old one): learn it, and send the same datagrams from the path
    /// socket, where they leave without DF and the router fragments them. The super-packets
    /// after it are cut to fit.
    mutating func resendSlotToFit(_ tagged: Int) {
        let id = tagged & 0xFFFF
        let peer = buffers.peers[id]
        _ = paths.learn(IPv4Address(networkOrder: peer.sin_addr.s_addr), port: UInt16(bigEndian: peer.sin_port))
        let slot = buffers.sends.slot(id, tagged >> 16)
        let entry = nextSubmission()
        weft_prep_sendmsg(entry, paths.socket, buffers.sends.messages + slot, 0)
        weft_sqe_set_user_data(entry, UringOperation.pathSegmentSend.userData(tagged))
        inFlight += 1
        counters.count(.pathMTULimitedSends)
    }

    mutating func pathSegmentSendCompleted(_ tagged: Int, result: Int32) {
        let id = tagged & 0xFFFF
        let slot = tagged >> 16
        guard id < buffers.buffersPerGroup, slot < buffers.sends.slotsPerBuffer else { return }
        inFlight -= 1
        countSegmentSend(result, datagrams: Int(buffers.sends.segments[buffers.sends.slot(id, slot)]), peerOf: id)
        release(id)
    }

    /// ICMP fragmentation needed for a super-packet (`inner`, in TUN buffer `id`) that does not
    /// fit `pathMTU`, written from the tail of the buffer's header region (the segment headers
    /// never reach it), so it can leave while the segments' sends still read the buffer.
    /// False when no reply is due. An IPv6 super-packet gets none: Packet Too Big quotes up to
    /// 1232 bytes, more than this room; its TCP is cut to fit and its UDP sent to be fragmented.
    mutating func answerSuperPacket(_ id: Int, _ inner: PacketBuffer, pathMTU: Int) -> Bool {
        let innerMTU = PathFit.innerMTU(pathMTU: pathMTU, encapsulation: forwarder.headroom)
        guard inner[0] >> 4 == 4, IPv4Header(inner).dontFragment, innerMTU >= PathFit.smallestAnsweredMTU else {
            return false
        }
        let reply = buffers.base(id) + buffers.tunOutputOffset + buffers.regionBytes - Self.superPacketReplyRoom
        guard
            let length = ICMPUnreachable.write(
                .fragmentationNeeded(nextHopMTU: UInt16(innerMTU)),
                offender: inner,
                source: forwarder.tunAddress,
                to: reply + VirtioNetHeader.size,
                capacity: Self.superPacketReplyRoom - VirtioNetHeader.size
            )
        else { return false }
        VirtioNetHeader.plain.store(to: reply)
        counters.count(.fragmentationNeededSent)
        writeToTUN(
            id,
            PacketBuffer(
                base: reply,
                headroom: 0,
                length: VirtioNetHeader.size + length,
                capacity: Self.superPacketReplyRoom
            )
        )
        return true
    }

    /// Kept free at the end of a TUN buffer's header region: a virtio-net header and the longest reply.
    static let superPacketReplyRoom = 128
}
