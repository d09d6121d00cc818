import Addressing
import CShims
import Forwarding
import Glibc
import Packets
import Routes

/// The uring loop with offloads (DESIGN.md §3): the TUN hands out 64 KB TCP super-packets behind a
/// virtio-net header, which go out as MTU-sized datagrams in one UDP_SEGMENT send; the socket hands
/// in UDP_GRO receives of many datagrams, whose TCP segments (and, where the TUN takes USO, UDP
/// datagrams) go to the TUN coalesced again.
extension UringLoop {
    /// Most datagrams in one UDP_GRO receive (the kernel's UDP_GRO_CNT_MAX).
    static let segmentsPerReceive = 64

    // MARK: Transmit

    /// A TUN read with offloads: `length` bytes of virtio-net header + packet at the headroom.
    mutating func superPacketRead(_ id: Int, length: Int, table: RouteTable, ipv6Table: IPv6RouteTable?) {
        let base = buffers.base(id)
        let headroom = UringBufferLayout.headroom
        guard length > VirtioNetHeader.size else {
            counters.countDrop(.truncated)
            return stage(id)
        }
        let header = VirtioNetHeader(loadingFrom: base + headroom)
        var packet = PacketBuffer(
            base: base,
            headroom: headroom + VirtioNetHeader.size,
            length: length - VirtioNetHeader.size,
            capacity: buffers.packetCapacity(id)
        )
        let isSuperPacket = header.gsoType.kind != .none
        if !isSuperPacket {
            if let reason = header.validate(packetLength: packet.length)
                ?? Segmentation.completeChecksum(packet, header: header)
            {
                counters.countDrop(reason)
                return stage(id)
            }
        }
        switch forwarder.fromTUN(&packet, table: table, ipv6Table: ipv6Table, isSuperPacket: isSuperPacket) {
        case .send(let nextHop):
            if isSuperPacket {
                sendBatch()
                sendSegments(id, packet, header: header, to: nextHop)
            } else if let pathMTU = paths.exceeded(payload: packet.length, to: nextHop.publicIP) {
                sendUnfitting(id, packet, to: nextHop, pathMTU: pathMTU)
            } else {
                batchOrSend(id, packet, to: nextHop)
            }
        case .sendIPv6(let hop):
            // Small packets leave one by one: the send batches name IPv4 peers.
            sendBatch()
            if isSuperPacket {
                sendIPv6Segments(id, packet, header: header, to: hop)
            } else {
                send(id, packet, to: hop)
            }
        case .replyToTUN(let reason):
            counters.countDrop(reason)
            counters.count(.icmpReplies)
            writePlainToTUN(id, &packet)
        case .drop(let reason):
            counters.countDrop(reason)
            stage(id)
        }
    }

    /// Writes each segment's headers into the buffer's header region and sends the segments.
    ///
    /// vxlan: `packet` is the super-packet as `fromTUN` left it, encapsulated once in front of the
    /// whole packet. Each segment's headers go behind a gap of VXLAN header + inner Ethernet, where
    /// the forwarder frames each segment exactly as `fromTUN` frames a packet sent on its own. The
    /// sends leave from the socket the flow's packets leave from one by one (the hash reads
    /// addresses and ports only, which every segment shares), so one TCP flow keeps one outer
    /// source port, as with the kernel's device. The receive side is the udp backend's.
    ///
    /// On a path with a smaller MTU (`PathMTUs`), TCP is cut to fit it and its sender, when DF is
    /// set, told the inner MTU with ICMP fragmentation needed, so its next segments fit on their
    /// own (the cut loses nothing meanwhile, and carries on for a sender that ignores the ICMP).
    /// UDP datagrams cannot be cut: with DF they are answered and dropped, without it they leave
    /// from the path socket to be fragmented.
    private mutating func sendSegments(_ id: Int, _ packet: PacketBuffer, header: VirtioNetHeader, to nextHop: NextHop)
    {
        var sender = sourcePorts.socket(for: packet, forwarder: forwarder, bound: socket)
        let gap = forwarder.headroom
        var inner = packet
        inner.consume(gap)
        let output = buffers.base(id) + buffers.tunOutputOffset
        let pathMTU = paths.known(nextHop.publicIP)
        let innerMTU = pathMTU.map { PathFit.innerMTU(pathMTU: $0, encapsulation: gap) } ?? .max
        guard let layout = segmentLayout(id, inner, header: header, into: output, innerMTU: innerMTU) else { return }
        var answer = false
        if let pathMTU, layout.headersLength + layout.segmentPayload > innerMTU {
            // UDP datagrams larger than the path.
            if answerSuperPacket(id, inner, pathMTU: pathMTU) {
                counters.countDrop(.exceedsPathMTU)
                return
            }
            sender = paths.socket
            counters.count(.pathMTULimitedSends)
        } else if pathMTU != nil, layout.count > 1, layout.segmentPayload < Int(header.gsoSize) {
            // TCP cut smaller than its sender's MSS.
            counters.count(.pathMTULimitedSends)
            answer = true
        }
        if gap > 0 {
            let etherType = inner[0] >> 4 == 6 ? EtherType.ipv6 : EtherType.ipv4
            for index in 0..<layout.count {
                var headers = PacketBuffer(
                    base: output,
                    headroom: layout.headerOffset(ofSegment: index) + gap,
                    length: layout.headersLength,
                    capacity: layout.headerBytes
                )
                // The gap is the encapsulation's size exactly, so this cannot come up short.
                guard forwarder.encapsulate(&headers, to: nextHop, etherType: etherType) else {
                    counters.countDrop(.oversize)
                    return stage(id)
                }
            }
        }
        address(id, to: nextHop)
        submitSegmentSends(id, layout, headers: output, payload: inner, from: sender)
        // After the sends, which set the buffer's count of pending operations.
        if answer, let pathMTU, pending[id] > 0 { _ = answerSuperPacket(id, inner, pathMTU: pathMTU) }
    }

    /// `sendSegments` over the IPv6 underlay, from the IPv6 socket: TCP is cut so that every
    /// segment fits the underlay's MTU − 70 (`Forwarder.ipv6UnderlayMTU`; the kernel writes the
    /// outer IPv6 and UDP headers), each segment framed as `fromTUN` framed the whole
    /// super-packet. UDP datagrams longer than that cannot be cut and are dropped as
    /// exceeds_path_mtu (no path MTU is learned for the IPv6 underlay).
    private mutating func sendIPv6Segments(_ id: Int, _ packet: PacketBuffer, header: VirtioNetHeader, to hop: IPv6Hop)
    {
        let gap = forwarder.headroom
        var inner = packet
        inner.consume(gap)
        let output = buffers.base(id) + buffers.tunOutputOffset
        let innerMTU = forwarder.ipv6UnderlayMTU
        guard let layout = segmentLayout(id, inner, header: header, into: output, innerMTU: innerMTU) else { return }
        guard layout.headersLength + layout.segmentPayload <= innerMTU else {
            counters.countDrop(.exceedsPathMTU)
            return stage(id)
        }
        for index in 0..<layout.count {
            (output + layout.headerOffset(ofSegment: index)).copyMemory(from: packet.start, byteCount: gap)
        }
        address(id, to: hop)
        let sender = ipv6SourcePorts.socket(for: packet, forwarder: forwarder, bound: ipv6Socket)
        submitSegmentSends(id, layout, headers: output, payload: inner, from: sender)
    }

    /// Writes the headers of `inner`'s segments, each cut to `innerMTU`, into buffer `id`'s header
    /// region at `output`; nil (the drop counted, the buffer staged) when it cannot be cut.
    private mutating func segmentLayout(
        _ id: Int,
        _ inner: PacketBuffer,
        header: VirtioNetHeader,
        into output: UnsafeMutableRawPointer,
        innerMTU: Int
    ) -> GatheredSegments? {
        switch Segmentation.segmentHeaders(
            inner,
            header: header,
            into: output,
            capacity: buffers.regionBytes - Self.superPacketReplyRoom,
            gap: forwarder.headroom,
            innerMTU: innerMTU
        ) {
        case .segmented(let layout): return layout
        case .dropped(let reason):
            counters.countDrop(reason)
            stage(id)
            return nil
        }
    }

    /// Sends the segments `layout` describes (each datagram: its gap and headers at `headers`, its
    /// payload where it lies in `payload`, the super-packet) from `sender` in as few UDP_SEGMENT
    /// sends as the kernel takes (`segmentsPerSend`), each from its own slot and gathering headers
    /// and payload: the payload is not copied. They go where buffer `id`'s message names (`address`).
    mutating func submitSegmentSends(
        _ id: Int,
        _ layout: GatheredSegments,
        headers output: UnsafeMutableRawPointer,
        payload packet: PacketBuffer,
        from sender: Int32
    ) {
        let perSend = segmentation ? layout.segmentsPerSend() : 1
        let sendCount = (layout.count + perSend - 1) / perSend
        let sends = buffers.sends
        guard layout.count <= SegmentSends.segmentsPerSuperPacket, sendCount <= sends.slotsPerBuffer else {
            counters.countDrop(.oversize)
            return stage(id)
        }
        let vectors = sends.vectors(id)
        for index in 0..<layout.count {
            vectors[2 * index] = iovec(
                iov_base: output + layout.headerOffset(ofSegment: index),
                iov_len: layout.headerStride
            )
            vectors[2 * index + 1] = iovec(
                iov_base: packet.start + layout.payloadOffset(ofSegment: index),
                iov_len: layout.payloadLength(ofSegment: index)
            )
        }
        for index in 0..<sendCount {
            let first = index * perSend
            let count = min(perSend, layout.count - first)
            let slot = sends.slot(id, index)
            sends.messages[slot].msg_name = buffers.messages[id].msg_name
            sends.messages[slot].msg_namelen = buffers.messages[id].msg_namelen
            sends.messages[slot].msg_iov = vectors + 2 * first
            sends.messages[slot].msg_iovlen = 2 * count
            sends.segments[slot] = Int32(count)
            if count > 1 {
                let control = sends.controls + slot * SegmentSends.controlStride
                weft_segment_control(control, UInt16(layout.datagramLength))
                sends.messages[slot].msg_control = control
                sends.messages[slot].msg_controllen = SegmentSends.controlStride
            } else {
                sends.messages[slot].msg_control = nil
                sends.messages[slot].msg_controllen = 0
            }
            let entry = nextSubmission()
            weft_prep_sendmsg(entry, sender, sends.messages + slot, 0)
            weft_sqe_set_user_data(entry, UringOperation.segmentSend.userData(id | index << 16))
        }
        pending[id] = Int32(sendCount)
        inFlight += sendCount
    }

    mutating func segmentSendCompleted(_ tagged: Int, result: Int32) {
        let id = tagged & 0xFFFF
        let slot = tagged >> 16
        guard id < buffers.buffersPerGroup, slot < buffers.sends.slotsPerBuffer else { return }
        inFlight -= 1
        if result == -EMSGSIZE && !sendsOverIPv6(id) {
            counters.count(.sendErrors)
            return resendSlotToFit(tagged)
        }
        countSegmentSend(result, datagrams: Int(buffers.sends.segments[buffers.sends.slot(id, slot)]), peerOf: id)
        release(id)
    }

    /// Counts a completed send of `datagrams` datagrams to buffer `id`'s peer; false when it failed.
    /// EIO on a send of several: the route's device cannot checksum a GSO send, so later sends go
    /// one datagram each. The same over the IPv6 underlay for EINVAL or EMSGSIZE: its path MTU
    /// fell below the datagrams (no path MTU is learned for it), and the kernel fragments a
    /// datagram sent alone where it refuses a GSO send. This send's datagrams are lost, as any
    /// failed send's are.
    @discardableResult
    mutating func countSegmentSend(_ result: Int32, datagrams: Int, peerOf id: Int) -> Bool {
        guard result >= 0 else {
            let pathTooSmall = (result == -EINVAL || result == -EMSGSIZE) && sendsOverIPv6(id)
            if (result == -EIO || pathTooSmall) && datagrams > 1 && segmentation {
                segmentation = false
                segmentationFellBack = -result
                counters.count(.segmentationFallbacks)
            }
            counters.count(.sendErrors)
            return false
        }
        counters.count(.wireSentPackets, by: UInt64(datagrams))
        counters.count(.wireSentBytes, by: UInt64(result))
        counters.countSent(
            to: IPv4Address(networkOrder: buffers.peers[id].sin_addr.s_addr),
            bytes: Int(result),
            packets: datagrams
        )
        return true
    }

    // MARK: Receive

    /// A socket receive with UDP_GRO: one datagram, or several of `gso_size` bytes (the last
    /// shorter) back to back. Each goes through `fromWire` where it lies; TCP segments (and UDP
    /// datagrams, when the TUN takes USO) of one flow are coalesced into super-packets, and every
    /// write gathers its virtio-net header and pieces from the buffer with one writev: nothing is
    /// copied in user space.
    mutating func coalescedReceive(
        _ id: Int,
        _ received: ReceivedDatagram,
        table: RouteTable,
        ipv6Table: IPv6RouteTable?
    ) {
        let base = buffers.base(id)
        let headroom = received.headroom
        let length = received.length
        guard let whole = received.packet(buffers, id) else {
            counters.count(.wireReceivedPackets)
            counters.count(.wireReceivedBytes, by: UInt64(length))
            counters.countDrop(received.parsed < 0 ? .truncated : .oversize)
            return stage(id)
        }
        let sender = received.sender
        let segmentSize = Int(weft_recvmsg_gro_size(buffers.providedAddress(id), received.result, received.message))

        if segmentSize <= 0 || segmentSize >= length {
            counters.count(.wireReceivedPackets)
            counters.count(.wireReceivedBytes, by: UInt64(length))
            // One datagram: its header goes where the recvmsg prefix was.
            var packet = whole
            let (verdict, peer) = sender.admit(&packet, forwarder, table: table, ipv6Table: ipv6Table)
            switch verdict {
            case .deliver:
                // Datagram payload bytes, as the packet-by-packet paths count (vxlan: headers included).
                counters.countReceived(from: peer, bytes: length)
                writePlainToTUN(id, &packet)
            case .drop(let reason):
                counters.countDrop(reason)
                stage(id)
            }
            return
        }

        var count = 0
        var offset = 0
        while offset < length {
            let segmentLength = min(segmentSize, length - offset)
            defer { offset += segmentLength }
            counters.count(.wireReceivedPackets)
            counters.count(.wireReceivedBytes, by: UInt64(segmentLength))
            var segment = PacketBuffer(
                base: base,
                headroom: headroom + offset,
                length: segmentLength,
                capacity: headroom + offset + segmentLength
            )
            let (verdict, peer) = sender.admit(&segment, forwarder, table: table, ipv6Table: ipv6Table)
            switch verdict {
            case .deliver: break
            case .drop(let reason):
                counters.countDrop(reason)
                continue
            }
            guard count < Self.segmentsPerReceive else {
                counters.countDrop(.oversize)
                continue
            }
            counters.countReceived(from: peer, bytes: segmentLength)
            receivedSegments[count] = segment
            count += 1
        }
        guard count > 0 else { return stage(id) }

        let socketIndex = id - buffers.buffersPerGroup
        let writes = coalescer.coalesce(
            UnsafeMutableBufferPointer(start: receivedSegments, count: count),
            headers: buffers.gathers.headers(socketIndex),
            into: UnsafeMutableBufferPointer(start: coalescedWrites, count: count),
            pieces: UnsafeMutableBufferPointer(start: gatherPieces, count: 2 * count)
        )
        counters.count(.coalescedSegments, by: UInt64(count - writes))
        let vectors = buffers.gathers.vectors(socketIndex)
        for index in 0..<writes {
            let write = coalescedWrites[index]
            for piece in write.firstPiece..<write.firstPiece + write.pieceCount {
                vectors[piece] = iovec(
                    iov_base: UnsafeMutableRawPointer(mutating: gatherPieces[piece].start),
                    iov_len: gatherPieces[piece].count
                )
            }
            let entry = nextSubmission()
            weft_prep_writev(entry, tunQueue, vectors + write.firstPiece, UInt32(write.pieceCount))
            weft_sqe_set_user_data(entry, UringOperation.tunWrite.userData(id))
            pending[id] += 1
            inFlight += 1
        }
    }

    /// Writes `packet` to the TUN behind a plain virtio-net header (no GSO, checksum complete).
    @inline(__always)
    mutating func writePlainToTUN(_ id: Int, _ packet: inout PacketBuffer) {
        guard packet.prepend(VirtioNetHeader.size) else {
            counters.countDrop(.oversize)
            return stage(id)
        }
        VirtioNetHeader.plain.store(to: packet.start)
        writeToTUN(id, packet)
    }
}
