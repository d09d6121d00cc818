import Addressing
import CShims
import Glibc
import Packets
import Routes

/// Everything the mmsg loop touches per packet, allocated once before the first batch: a slot per
/// packet on each side, and the mmsghdr / iovec / sockaddr_in arrays that point into them. The
/// headers are wired to their iovec and address slot once; a batch only rewrites lengths,
/// addresses and ports.
struct MmsgBuffers: ~Copyable {
    let batchSize: Int
    /// Bytes per slot. TUN reads land at `headroom` (room for the vxlan headers `fromTUN` writes in
    /// front); datagrams land at 0, and one longer than a slot arrives with MSG_TRUNC.
    let slotBytes: Int
    let headroom: Int

    /// batchSize TUN slots, then batchSize wire slots.
    let memory: UnsafeMutableRawPointer
    /// Length of each packet read from the TUN in this batch.
    let tunLengths: UnsafeMutablePointer<Int>

    let sendMessages: UnsafeMutablePointer<weft_mmsghdr>
    let sendVectors: UnsafeMutablePointer<iovec>
    let sendNames: UnsafeMutablePointer<sockaddr_in>
    /// The peer each pending send goes to, for its per-peer counters.
    let sendPeers: UnsafeMutablePointer<UInt32>
    /// The socket each pending send leaves from (vxlan: by inner flow, see `SourcePorts`).
    let sendSockets: UnsafeMutablePointer<Int32>

    let receiveMessages: UnsafeMutablePointer<weft_mmsghdr>
    let receiveVectors: UnsafeMutablePointer<iovec>
    let receiveNames: UnsafeMutablePointer<sockaddr_in>

    /// The IPv6 underlay: each send's sockaddr_in6 (a staged send names it instead of its
    /// sockaddr_in), and receive headers on the same wire slots with sockaddr_in6 names. One
    /// recvmmsg batch is done with its slots before the other socket's begins.
    let sendNames6: UnsafeMutablePointer<sockaddr_in6>
    let receiveMessages6: UnsafeMutablePointer<weft_mmsghdr>
    let receiveNames6: UnsafeMutablePointer<sockaddr_in6>

    /// `mtu` is the TUN's; `headroom` the forwarder's. A slot also holds the largest ICMP reply
    /// `fromTUN` may write over a short packet, and a datagram of mtu + headroom (the most a peer
    /// with the same MTU sends us).
    init(batchSize: Int, mtu: Int, headroom: Int) {
        self.batchSize = batchSize
        self.headroom = headroom
        let packetBytes = max(mtu, ICMPUnreachable.maximumLength)
        slotBytes = (headroom + packetBytes + 63) & ~63
        memory = .allocate(byteCount: 2 * batchSize * slotBytes, alignment: 64)
        // Touch every page now so the first batches do not fault them in (and RSS is flat from here).
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: 2 * batchSize * slotBytes)
        tunLengths = .allocate(capacity: batchSize)
        tunLengths.initialize(repeating: 0, count: batchSize)
        sendMessages = .allocate(capacity: batchSize)
        sendVectors = .allocate(capacity: batchSize)
        sendNames = .allocate(capacity: batchSize)
        sendPeers = .allocate(capacity: batchSize)
        sendPeers.initialize(repeating: 0, count: batchSize)
        sendSockets = .allocate(capacity: batchSize)
        sendSockets.initialize(repeating: -1, count: batchSize)
        receiveMessages = .allocate(capacity: batchSize)
        receiveVectors = .allocate(capacity: batchSize)
        receiveNames = .allocate(capacity: batchSize)
        sendNames6 = .allocate(capacity: batchSize)
        sendNames6.initialize(repeating: sockaddr_in6(), count: batchSize)
        receiveMessages6 = .allocate(capacity: batchSize)
        receiveNames6 = .allocate(capacity: batchSize)
        for index in 0..<batchSize {
            sendNames6[index].sin6_family = sa_family_t(AF_INET6)
            weft_mmsg_prepare(sendMessages + index, sendVectors + index, sendNames + index, AF_INET, tunSlot(index), 0)
            let slot = wireSlot(index)
            weft_mmsg_prepare(
                receiveMessages + index,
                receiveVectors + index,
                receiveNames + index,
                AF_INET,
                slot,
                slotBytes
            )
            // The same slot and iovec, for the IPv6 socket's receives.
            weft_mmsg_prepare(
                receiveMessages6 + index,
                receiveVectors + index,
                receiveNames6 + index,
                AF_INET6,
                slot,
                slotBytes
            )
        }
    }

    deinit {
        memory.deallocate()
        tunLengths.deallocate()
        sendMessages.deallocate()
        sendVectors.deallocate()
        sendNames.deallocate()
        sendPeers.deallocate()
        sendSockets.deallocate()
        receiveMessages.deallocate()
        receiveVectors.deallocate()
        receiveNames.deallocate()
        sendNames6.deallocate()
        receiveMessages6.deallocate()
        receiveNames6.deallocate()
    }

    @inline(__always) func tunSlot(_ index: Int) -> UnsafeMutableRawPointer { memory + index &* slotBytes }

    @inline(__always) func wireSlot(_ index: Int) -> UnsafeMutableRawPointer {
        memory + (batchSize &+ index) &* slotBytes
    }

    /// Queues `packet` as send number `index` of this batch, to `publicIP`:`port` from `socket`.
    @inline(__always)
    func stageSend(_ index: Int, _ packet: PacketBuffer, publicIP: UInt32, port: UInt16, socket: Int32) {
        sendSockets[index] = socket
        sendVectors[index].iov_base = packet.start
        sendVectors[index].iov_len = packet.length
        sendNames[index].sin_addr.s_addr = publicIP.bigEndian
        sendNames[index].sin_port = port.bigEndian
        sendMessages[index].msg_hdr.msg_name = UnsafeMutableRawPointer(sendNames + index)
        sendMessages[index].msg_hdr.msg_namelen = socklen_t(MemoryLayout<sockaddr_in>.size)
        sendPeers[index] = publicIP
    }

    /// Send number `index` goes over the IPv6 underlay (its message names a sockaddr_in6).
    @inline(__always)
    func sendsOverIPv6(_ index: Int) -> Bool {
        sendMessages[index].msg_hdr.msg_namelen == socklen_t(MemoryLayout<sockaddr_in6>.size)
    }

    /// Queues `packet` as send number `index`, over the IPv6 underlay to `hop` from `socket`.
    @inline(__always)
    func stageSend(_ index: Int, _ packet: PacketBuffer, to hop: IPv6Hop, socket: Int32) {
        sendSockets[index] = socket
        sendVectors[index].iov_base = packet.start
        sendVectors[index].iov_len = packet.length
        IPv6Names.set(sendNames6 + index, hop)
        sendMessages[index].msg_hdr.msg_name = UnsafeMutableRawPointer(sendNames6 + index)
        sendMessages[index].msg_hdr.msg_namelen = socklen_t(MemoryLayout<sockaddr_in6>.size)
        sendPeers[index] = hop.peer.value
    }
}
