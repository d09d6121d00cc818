import Addressing
import CShims
import Glibc
import Packets
import Routes

/// Small packets leave in batches (with offloads, DESIGN.md §3): consecutive packets read from the
/// TUN for one peer, from one socket and of one length go out in one sendmsg with UDP_SEGMENT, each
/// gathered from its own buffer. On the wire nothing changes (the kernel cuts the send into the same
/// datagrams); the sender makes one trip through the UDP stack per batch instead of per packet.
///
/// A batch is sent when a packet does not fit it (another peer, socket or length; full), before a
/// super-packet's sends, and at the end of every completion batch, so nothing waits for traffic
/// that may not come. Sends leave in the order their packets were read.
extension UringLoop {
    /// Queues `packet` (buffer `id`, as `fromTUN` left it) for `nextHop`, sending the open batch
    /// first when the packet does not fit it.
    @inline(__always)
    mutating func batchOrSend(_ id: Int, _ packet: PacketBuffer, to nextHop: NextHop) {
        guard segmentation else { return send(id, packet, to: nextHop) }
        let socket = sourcePorts.socket(for: packet, forwarder: forwarder, bound: self.socket)
        if batch.count > 0 {
            if nextHop == batch.nextHop, socket == batch.socket, packet.length == batch.length,
                batch.count < SendBatches.packetsPerBatch, (batch.count + 1) * packet.length <= SendBatches.payloadLimit
            {
                let slot = batch.first
                batches.ids[slot * SendBatches.packetsPerBatch + batch.count] = Int32(id)
                batches.vectors[slot * SendBatches.packetsPerBatch + batch.count] = iovec(
                    iov_base: packet.start,
                    iov_len: packet.length
                )
                batch.count += 1
                return
            }
            sendBatch()
        }
        address(id, to: nextHop)
        batches.ids[id * SendBatches.packetsPerBatch] = Int32(id)
        batches.vectors[id * SendBatches.packetsPerBatch] = iovec(iov_base: packet.start, iov_len: packet.length)
        batch = OpenBatch(first: id, count: 1, length: packet.length, socket: socket, nextHop: nextHop)
    }

    /// Sends the open batch, if any: one packet as a plain send, more in one UDP_SEGMENT send.
    mutating func sendBatch() {
        let open = batch
        guard open.count > 0 else { return }
        batch.count = 0
        let slot = open.first
        if open.count == 1 {
            buffers.vectors[slot] = batches.vectors[slot * SendBatches.packetsPerBatch]
            return submitSend(slot, from: open.socket)
        }
        let message = batches.messages + slot
        message.pointee.msg_iovlen = open.count
        weft_segment_control(message.pointee.msg_control, UInt16(open.length))
        batches.counts[slot] = Int32(open.count)
        for index in 0..<open.count { pending[Int(batches.ids[slot * SendBatches.packetsPerBatch + index])] = 1 }
        let entry = nextSubmission()
        weft_prep_sendmsg(entry, open.socket, message, 0)
        weft_sqe_set_user_data(entry, UringOperation.batchSend.userData(slot))
        inFlight += 1
    }

    /// A batch's send is done: count its datagrams and return every buffer in it.
    mutating func batchSendCompleted(_ slot: Int, result: Int32) {
        guard slot < buffers.buffersPerGroup else { return }
        inFlight -= 1
        let count = Int(batches.counts[slot])
        if result == -EMSGSIZE {
            // Longer than the path MTU the kernel just learned: each packet is answered or resent on its own.
            counters.count(.sendErrors)
            let peer = buffers.peers[slot]
            let learned =
                paths.learn(IPv4Address(networkOrder: peer.sin_addr.s_addr), port: UInt16(bigEndian: peer.sin_port))
                ?? 0
            for index in 0..<count {
                let id = Int(batches.ids[slot * SendBatches.packetsPerBatch + index])
                buffers.peers[id] = peer
                namesIPv4Peer(id)
                buffers.vectors[id] = batches.vectors[slot * SendBatches.packetsPerBatch + index]
                resendToFit(id, learned: learned)
                release(id)
            }
            return
        }
        if countSegmentSend(result, datagrams: count, peerOf: slot) {
            counters.count(.batchedPackets, by: UInt64(count))
        }
        for index in 0..<count { release(Int(batches.ids[slot * SendBatches.packetsPerBatch + index])) }
    }
}

/// The batch being filled: its first packet's buffer (whose slot it uses) and what every packet
/// in it shares.
struct OpenBatch {
    var first = 0
    var count = 0
    var length = 0
    var socket: Int32 = -1
    var nextHop = NextHop(publicIP: IPv4Address(0), port: 0, backend: .udp)
}

/// Per TUN buffer, a ready UDP_SEGMENT sendmsg for a batch that starts with that buffer: its
/// buffer ids, one iovec per packet, a cmsg, and the first buffer's destination. Empty without
/// offloads.
struct SendBatches {
    /// The kernel's UDP_MAX_SEGMENTS before Linux 6.11, and the most UDP payload one send carries.
    static let packetsPerBatch = 64
    static let payloadLimit = 65_507

    let messages: UnsafeMutablePointer<msghdr>
    let vectors: UnsafeMutablePointer<iovec>
    let ids: UnsafeMutablePointer<Int32>
    let counts: UnsafeMutablePointer<Int32>
    private let controls: UnsafeMutableRawPointer

    init(buffers: Int, peers: UnsafeMutablePointer<sockaddr_in>) {
        let count = max(1, buffers)
        messages = .allocate(capacity: count)
        vectors = .allocate(capacity: count * Self.packetsPerBatch)
        vectors.initialize(repeating: iovec(), count: count * Self.packetsPerBatch)
        ids = .allocate(capacity: count * Self.packetsPerBatch)
        ids.initialize(repeating: 0, count: count * Self.packetsPerBatch)
        counts = .allocate(capacity: count)
        counts.initialize(repeating: 0, count: count)
        let stride = Int(weft_segment_control_size)
        controls = .allocate(byteCount: count * stride, alignment: 8)
        controls.initializeMemory(as: UInt8.self, repeating: 0, count: count * stride)
        for slot in 0..<count {
            var message = msghdr()
            message.msg_name = UnsafeMutableRawPointer(peers + (buffers == 0 ? 0 : slot))
            message.msg_namelen = socklen_t(MemoryLayout<sockaddr_in>.size)
            message.msg_iov = vectors + slot * Self.packetsPerBatch
            message.msg_control = controls + slot * stride
            message.msg_controllen = stride
            (messages + slot).initialize(to: message)
        }
    }

    func deallocate() {
        messages.deallocate()
        vectors.deallocate()
        ids.deallocate()
        counts.deallocate()
        controls.deallocate()
    }
}
