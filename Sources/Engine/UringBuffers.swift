import CShims
import Glibc
import Packets

/// A uring worker's packet memory: one page-aligned slab of equal buffers in two provided-buffer
/// groups, the two buffer rings, and per-buffer sendmsg state.
///
/// Two groups rather than one shared: a flood on one side (TUN reads while sends are slow) cannot
/// take the buffers the other side receives into, and each group is consumed by exactly one
/// multishot request, so the worker's count of buffers in a ring is exact and a request ended by
/// -ENOBUFS is re-armed only once a buffer has really come back (no re-arm spin).
///
/// Buffer `id` (TUN group: 0 ..< n, socket group: n ..< 2n) is a stride of bytes (`tunStride`,
/// `socketStride`; equal without offloads) from `base(id)`:
///
///     base          base+32                base+64 (headroom)                      base+stride
///     |  unused     | recvmsg_out + sender | packet (TUN read, or datagram payload) ... |
///
/// TUN reads are provided at base + headroom. Socket receives are provided 32 bytes earlier, so
/// io_uring's recvmsg header (16) and the sender's sockaddr_in (16) land in front and the payload
/// lands at base + headroom too. Either way the packet has `headroom` bytes in front for outer
/// headers and is sent from where it was received: a packet is never copied.
///
/// The IPv6 underlay's socket receives into the same group with a sockaddr_in6 (28) as name, so
/// its payload lands 12 bytes further in, at base + 76 (with offloads too: the provided address
/// is then base + 8): still ≥ 64 in front, and 12 bytes less behind, which its datagrams never
/// need (their outer IPv6 header leaves them 20 bytes shorter than the IPv4 underlay's, and a
/// UDP_GRO receive still has more than 65,535 bytes of room).
///
/// With offloads a UDP_GRO cmsg (24) also lands in front of the payload (56 ≤ 64), every buffer
/// has a 64 KB receive region, and TUN buffers have a second region behind it where the headers of
/// a super-packet's segments are written; each send gathers them and the payload where it was read.
/// A socket buffer's segments go to the TUN from where they were received, gathered by writev
/// behind virtio-net headers kept per buffer (`GatherWrites`).
struct UringBuffers: ~Copyable {
    let layout: UringBufferLayout
    private let slabBytes: Int
    private let ringBytes: Int
    private let ringMemory: UnsafeMutableRawPointer
    private let sends: SegmentSends
    private let gathers: GatherWrites
    private let batches: SendBatches

    init(_ sizing: UringWorker.Sizing) throws(EngineError) {
        let perGroup = sizing.buffersPerGroup
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let slabBytes = UringBufferLayout.roundUp(
            (sizing.tunBufferBytes + sizing.socketBufferBytes) * perGroup,
            to: page
        )
        let oneRing = UringBufferLayout.roundUp(perGroup * Int(weft_buffer_ring_entry_size()), to: page)

        let slab = mmap(nil, slabBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let slab, slab != MAP_FAILED else {
            throw EngineError("mmap", "\(slabBytes) bytes of packet buffers", code: errno)
        }
        let rings = mmap(nil, oneRing * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let rings, rings != MAP_FAILED else {
            let code = errno
            munmap(slab, slabBytes)
            throw EngineError("mmap", "\(oneRing * 2) bytes of buffer rings", code: code)
        }
        weft_buffer_ring_init(rings)
        weft_buffer_ring_init(rings + oneRing)

        let count = perGroup * 2
        let messages = UnsafeMutablePointer<msghdr>.allocate(capacity: count)
        let vectors = UnsafeMutablePointer<iovec>.allocate(capacity: count)
        let peers = UnsafeMutablePointer<sockaddr_in>.allocate(capacity: count)
        let ipv6Peers = UnsafeMutablePointer<sockaddr_in6>.allocate(capacity: count)
        vectors.initialize(repeating: iovec(), count: count)
        peers.initialize(repeating: sockaddr_in(), count: count)
        ipv6Peers.initialize(repeating: sockaddr_in6(), count: count)
        for id in 0..<count {
            var message = msghdr()
            message.msg_name = UnsafeMutableRawPointer(peers + id)
            message.msg_namelen = socklen_t(MemoryLayout<sockaddr_in>.size)
            message.msg_iov = vectors + id
            message.msg_iovlen = 1
            (messages + id).initialize(to: message)
        }
        // recvmsg multishot reads only the name and control lengths from this one, for as long as
        // the request lives.
        let receiveMessage = UnsafeMutablePointer<msghdr>.allocate(capacity: 1)
        var template = msghdr()
        template.msg_namelen = socklen_t(MemoryLayout<sockaddr_in>.size)
        template.msg_controllen = sizing.offloads ? Int(weft_gro_control_size) : 0
        receiveMessage.initialize(to: template)
        let ipv6ReceiveMessage = UnsafeMutablePointer<msghdr>.allocate(capacity: 1)
        template.msg_namelen = socklen_t(MemoryLayout<sockaddr_in6>.size)
        ipv6ReceiveMessage.initialize(to: template)

        self.slabBytes = slabBytes
        self.ringBytes = oneRing * 2
        self.ringMemory = rings
        self.sends = SegmentSends(
            slotsPerBuffer: sizing.offloads ? SegmentSends.slotsPerSuperPacket : 0,
            buffers: perGroup,
            peers: peers
        )
        self.gathers = GatherWrites(buffers: sizing.offloads ? perGroup : 0)
        self.batches = SendBatches(buffers: sizing.offloads ? perGroup : 0, peers: peers)
        self.layout = UringBufferLayout(
            slab: slab,
            sizing: sizing,
            tunRing: rings,
            socketRing: rings + oneRing,
            messages: messages,
            vectors: vectors,
            peers: peers,
            ipv6Peers: ipv6Peers,
            receiveMessage: receiveMessage,
            ipv6ReceiveMessage: ipv6ReceiveMessage,
            sends: sends,
            gathers: gathers,
            batches: batches
        )
    }

    deinit {
        munmap(layout.slab, slabBytes)
        munmap(ringMemory, ringBytes)
        layout.messages.deallocate()
        layout.vectors.deallocate()
        layout.peers.deallocate()
        layout.ipv6Peers.deallocate()
        layout.receiveMessage.deallocate()
        layout.ipv6ReceiveMessage.deallocate()
        sends.deallocate()
        gathers.deallocate()
        batches.deallocate()
    }

    /// Gives the memory up without freeing it: for when requests the kernel may still be serving
    /// point into it (a shutdown whose cancellations did not complete). A leak beats a write into
    /// memory that has been handed to someone else.
    consuming func abandon() {
        discard self
    }
}

/// Where `UringBuffers`' pieces are: a plain view of pointers and sizes for the loop, valid while
/// the owner lives.
///
/// With offloads the two groups differ (see `UringWorker.Sizing`): a TUN buffer holds a 64 KB
/// super-packet and, behind it, the region its segments' headers are written to for the sends;
/// a socket buffer holds a 64 KB UDP_GRO receive only.
struct UringBufferLayout {
    /// In front of every packet: ≥ recvmsg header + sockaddr_in (32) + a UDP_GRO cmsg (24),
    /// ≥ VXLAN + inner Ethernet (22) + virtio-net header (10); one cache line.
    static let headroom = 64
    /// io_uring_recvmsg_out then the sender's sockaddr_in, in front of a received payload.
    static let receivePrefix = Int(weft_recvmsg_out_size) + MemoryLayout<sockaddr_in>.size
    static let tunGroup: UInt16 = 0
    static let socketGroup: UInt16 = 1

    let slab: UnsafeMutableRawPointer
    let buffersPerGroup: Int
    let tunStride: Int
    let socketStride: Int
    /// Bytes the kernel may write at `providedAddress` (TUN: from the headroom on; socket: from
    /// the recvmsg prefix on).
    let tunProvidedLength: Int
    let socketProvidedLength: Int
    /// The UDP_GRO cmsg space between the sender's address and the payload (0 without offloads).
    let receiveControlBytes: Int
    /// Offset in a TUN buffer of the segment-header region, and its size; 0 without offloads.
    let tunOutputOffset: Int
    let regionBytes: Int
    let tunRing: UnsafeMutableRawPointer
    let socketRing: UnsafeMutableRawPointer
    /// Per buffer id: a msghdr pointing at that id's iovec and sockaddr_in, ready for sendmsg.
    let messages: UnsafeMutablePointer<msghdr>
    let vectors: UnsafeMutablePointer<iovec>
    let peers: UnsafeMutablePointer<sockaddr_in>
    /// Per buffer id, the sockaddr_in6 its message names instead when it goes over the IPv6
    /// underlay (`peers` then keeps the peer's IPv4 PublicIP, for its counters).
    let ipv6Peers: UnsafeMutablePointer<sockaddr_in6>
    let receiveMessage: UnsafeMutablePointer<msghdr>
    /// The IPv6 socket's recvmsg template: a sockaddr_in6 name.
    let ipv6ReceiveMessage: UnsafeMutablePointer<msghdr>
    let sends: SegmentSends
    let gathers: GatherWrites
    let batches: SendBatches

    init(
        slab: UnsafeMutableRawPointer,
        sizing: UringWorker.Sizing,
        tunRing: UnsafeMutableRawPointer,
        socketRing: UnsafeMutableRawPointer,
        messages: UnsafeMutablePointer<msghdr>,
        vectors: UnsafeMutablePointer<iovec>,
        peers: UnsafeMutablePointer<sockaddr_in>,
        ipv6Peers: UnsafeMutablePointer<sockaddr_in6>,
        receiveMessage: UnsafeMutablePointer<msghdr>,
        ipv6ReceiveMessage: UnsafeMutablePointer<msghdr>,
        sends: SegmentSends,
        gathers: GatherWrites,
        batches: SendBatches
    ) {
        self.slab = slab
        buffersPerGroup = sizing.buffersPerGroup
        tunStride = sizing.tunBufferBytes
        socketStride = sizing.socketBufferBytes
        receiveControlBytes = sizing.offloads ? Int(weft_gro_control_size) : 0
        if sizing.offloads {
            tunOutputOffset = UringWorker.Sizing.superPacketRegion
            regionBytes = UringWorker.Sizing.offloadRegion
            tunProvidedLength = tunOutputOffset - Self.headroom
        } else {
            tunOutputOffset = 0
            regionBytes = 0
            tunProvidedLength = tunStride - Self.headroom
        }
        socketProvidedLength = socketStride - Self.headroom + Self.receivePrefix + receiveControlBytes
        self.tunRing = tunRing
        self.socketRing = socketRing
        self.messages = messages
        self.vectors = vectors
        self.peers = peers
        self.ipv6Peers = ipv6Peers
        self.receiveMessage = receiveMessage
        self.ipv6ReceiveMessage = ipv6ReceiveMessage
        self.sends = sends
        self.gathers = gathers
        self.batches = batches
    }

    /// 4 × batch per group (at least 64, a power of two as buffer rings require): a batch being
    /// processed, one in flight to the kernel, and room for the receive side to run ahead.
    static func buffersPerGroup(batchSize: Int) -> Int {
        var count = 64
        while count < batchSize * 4 && count < 16384 { count <<= 1 }
        return count
    }

    static func roundUp(_ value: Int, to multiple: Int) -> Int { (value + multiple - 1) / multiple * multiple }

    var bufferCount: Int { buffersPerGroup * 2 }

    @inline(__always) func base(_ id: Int) -> UnsafeMutableRawPointer {
        id < buffersPerGroup
            ? slab + id * tunStride : slab + buffersPerGroup * tunStride + (id - buffersPerGroup) * socketStride
    }

    @inline(__always) func isTUNBuffer(_ id: Int) -> Bool { id < buffersPerGroup }

    /// Bytes of buffer `id` a packet view may cover (the whole stride without offloads; with them,
    /// the receive region only, so nothing grows into the region behind it).
    @inline(__always) func packetCapacity(_ id: Int) -> Int {
        isTUNBuffer(id)
            ? Self.headroom + tunProvidedLength
            : Self.headroom - Self.receivePrefix - receiveControlBytes + socketProvidedLength
    }

    func ringMemory(_ group: UInt16) -> UnsafeMutableRawPointer { group == Self.tunGroup ? tunRing : socketRing }

    /// Where the kernel writes into buffer `id`, and how much it may write.
    @inline(__always) func providedAddress(_ id: Int) -> UnsafeMutableRawPointer {
        base(id) + (isTUNBuffer(id) ? Self.headroom : Self.headroom - Self.receivePrefix - receiveControlBytes)
    }

    @inline(__always) func providedLength(_ id: Int) -> Int {
        isTUNBuffer(id) ? tunProvidedLength : socketProvidedLength
    }

    /// Puts buffer `id` back in its group's ring at tail + `offset`; the kernel sees it after
    /// weft_buffer_ring_advance. The ring has as many entries as the group has buffers and each
    /// buffer is in it at most once, so a staged slot is never one the kernel has yet to consume.
    @inline(__always) func stage(_ id: Int, offset: Int32) {
        let ring = isTUNBuffer(id) ? tunRing : socketRing
        weft_buffer_ring_add(
            ring,
            providedAddress(id),
            UInt32(providedLength(id)),
            UInt16(truncatingIfNeeded: id),
            UInt32(buffersPerGroup),
            offset
        )
    }
}

/// Per TUN buffer, `slotsPerBuffer` ready sendmsg headers for the UDP_SEGMENT sends one
/// super-packet becomes: slot k of buffer id sends segments [k × perSend, …) of its layout, with
/// its own cmsg and the buffer's one destination, gathering from the buffer's iovecs (two per
/// segment: its headers, its payload). Empty without offloads.
struct SegmentSends {
    /// 64 KB of payload in 1,472-byte datagrams needs 2 sends with UDP GSO and 45 without; 64 covers
    /// an MSS down to about 1,000 bytes even when each segment is its own send.
    static let slotsPerSuperPacket = 64
    /// Most segments of one super-packet: an MSS down to about 340 bytes.
    static let segmentsPerSuperPacket = 192
    static let vectorsPerBuffer = 2 * segmentsPerSuperPacket

    let slotsPerBuffer: Int
    let messages: UnsafeMutablePointer<msghdr>
    private let gatherVectors: UnsafeMutablePointer<iovec>
    let controls: UnsafeMutableRawPointer
    /// Datagrams in each slot's send, for the counters.
    let segments: UnsafeMutablePointer<Int32>
    static let controlStride = Int(weft_segment_control_size)

    init(slotsPerBuffer: Int, buffers: Int, peers: UnsafeMutablePointer<sockaddr_in>) {
        let count = max(1, slotsPerBuffer * buffers)
        self.slotsPerBuffer = slotsPerBuffer
        messages = .allocate(capacity: count)
        let vectorCount = slotsPerBuffer == 0 ? 1 : buffers * Self.vectorsPerBuffer
        gatherVectors = .allocate(capacity: vectorCount)
        gatherVectors.initialize(repeating: iovec(), count: vectorCount)
        controls = .allocate(byteCount: count * Self.controlStride, alignment: 8)
        controls.initializeMemory(as: UInt8.self, repeating: 0, count: count * Self.controlStride)
        segments = .allocate(capacity: count)
        segments.initialize(repeating: 0, count: count)
        for slot in 0..<count {
            var message = msghdr()
            message.msg_name = UnsafeMutableRawPointer(peers + (slotsPerBuffer == 0 ? 0 : slot / slotsPerBuffer))
            message.msg_namelen = socklen_t(MemoryLayout<sockaddr_in>.size)
            (messages + slot).initialize(to: message)
        }
    }

    func deallocate() {
        messages.deallocate()
        gatherVectors.deallocate()
        controls.deallocate()
        segments.deallocate()
    }

    @inline(__always) func slot(_ id: Int, _ index: Int) -> Int { id * slotsPerBuffer + index }

    /// TUN buffer `id`'s iovecs: segment i's headers at 2i, its payload at 2i + 1.
    @inline(__always) func vectors(_ id: Int) -> UnsafeMutablePointer<iovec> {
        gatherVectors + id * Self.vectorsPerBuffer
    }
}

/// Per socket buffer, the TUN writes of one coalesced UDP_GRO receive: room for a virtio-net header
/// per write and the iovecs that gather each write's header and pieces from the buffer. Kept until
/// the buffer's writes complete, like the buffer itself. Empty without offloads.
struct GatherWrites {
    /// Most writes one receive becomes (one per datagram), and most pieces (a header and a packet each).
    static let writesPerBuffer = UringLoop.segmentsPerReceive
    static let vectorsPerBuffer = 2 * writesPerBuffer

    let headers: UnsafeMutableRawPointer
    let vectors: UnsafeMutablePointer<iovec>
    private let buffers: Int

    init(buffers: Int) {
        self.buffers = buffers
        let count = max(1, buffers)
        headers = .allocate(byteCount: count * Self.writesPerBuffer * VirtioNetHeader.size, alignment: 16)
        headers.initializeMemory(
            as: UInt8.self,
            repeating: 0,
            count: count * Self.writesPerBuffer * VirtioNetHeader.size
        )
        vectors = .allocate(capacity: count * Self.vectorsPerBuffer)
        vectors.initialize(repeating: iovec(), count: count * Self.vectorsPerBuffer)
    }

    func deallocate() {
        headers.deallocate()
        vectors.deallocate()
    }

    /// Socket buffer `index` (its id less the TUN group's size): its header room and iovecs.
    @inline(__always) func headers(_ index: Int) -> UnsafeMutableRawPointer {
        headers + index * Self.writesPerBuffer * VirtioNetHeader.size
    }

    @inline(__always) func vectors(_ index: Int) -> UnsafeMutablePointer<iovec> {
        vectors + index * Self.vectorsPerBuffer
    }
}
