import Addressing
import CShims
import Forwarding
import Glibc
import Packets
import Routes

/// What a completion answers, in the top half of its user_data; the bottom half is a buffer id.
enum UringOperation: UInt64 {
    case tunRead = 1
    case socketReceive, send, tunWrite, cancel
    /// One UDP_SEGMENT send of a super-packet's segments; the id's bits 16… are the send slot.
    case segmentSend
    /// One UDP_SEGMENT send of a batch of small packets; the id is its first buffer's.
    case batchSend
    /// A send from the path socket (`PathMTUs`) of one packet, or of a super-packet's slot (bits 16…).
    case pathSend, pathSegmentSend
    /// The IPv6 underlay socket's multishot recvmsg (into the socket group).
    case ipv6SocketReceive

    @inline(__always) func userData(_ id: Int = 0) -> UInt64 { rawValue << 32 | UInt64(truncatingIfNeeded: id) }
}

/// The state of one worker's io_uring loop. Plain pointers and values only (no class reference),
/// so nothing per packet retains, locks or allocates. The ring and buffers are owned by `run`.
struct UringLoop: ~Copyable {
    let ring: UnsafeMutablePointer<io_uring>
    let buffers: UringBufferLayout
    let tunQueue: Int32
    let socket: Int32
    /// The IPv6 underlay's socket, or -1.
    let ipv6Socket: Int32
    let sourcePorts: SourcePorts
    let ipv6SourcePorts: SourcePorts
    let forwarder: Forwarder
    let counters: WorkerCounters
    let completionBatch: Int
    private let completions: UnsafeMutablePointer<UnsafeMutablePointer<io_uring_cqe>?>

    private var tunRead: MultishotReceive
    private var socketReceive: MultishotReceive
    /// The IPv6 socket's receive: it takes from the socket group too, so the group's count and
    /// staging stay in `socketReceive` and only this request's own state is kept here.
    private var ipv6Receive: MultishotReceive
    /// Sends and TUN writes submitted and not yet completed.
    var inFlight = 0
    /// Per buffer id, its sends and TUN writes not yet completed: it goes back to its ring at 0.
    let pending: UnsafeMutablePointer<Int32>
    /// The TUN carries virtio-net headers and the socket has UDP_GRO (UringOffload.swift).
    let offloads: Bool
    /// UDP_SEGMENT sends are taken on this socket; false sends each segment on its own.
    var segmentation: Bool
    /// A send just turned `segmentation` off, with this errno (EIO, or over the IPv6 underlay
    /// EINVAL or EMSGSIZE); `run` says so once, between batches. 0: none.
    var segmentationFellBack: Int32 = 0
    var coalescer: Coalescer
    /// Small packets waiting to leave in one send (UringSendBatch.swift).
    var batch = OpenBatch()
    var batches: SendBatches { buffers.batches }
    /// Path MTUs learned from the kernel, and the socket for what does not fit (UringPathMTU.swift).
    var paths: PathMTUs
    let receivedSegments: UnsafeMutablePointer<PacketBuffer>
    let coalescedWrites: UnsafeMutablePointer<CoalescedWrite>
    let gatherPieces: UnsafeMutablePointer<GatherPiece>

    /// `setup`'s worker on `ring` and `buffers`, reaping up to `completionBatch` completions at once.
    init(
        _ setup: borrowing WorkerSetup,
        ring: UnsafeMutablePointer<io_uring>,
        buffers: UringBufferLayout,
        completionBatch: Int
    ) {
        self.ring = ring
        self.buffers = buffers
        tunQueue = setup.tunQueue
        socket = setup.socket
        ipv6Socket = setup.ipv6Socket
        sourcePorts = setup.sourcePorts
        ipv6SourcePorts = setup.ipv6SourcePorts
        forwarder = setup.forwarder
        counters = setup.counters
        self.completionBatch = completionBatch
        completions = .allocate(capacity: completionBatch)
        tunRead = MultishotReceive(available: buffers.buffersPerGroup)
        socketReceive = MultishotReceive(available: buffers.buffersPerGroup)
        ipv6Receive = MultishotReceive(available: 0)
        pending = .allocate(capacity: buffers.bufferCount)
        pending.initialize(repeating: 0, count: buffers.bufferCount)
        offloads = setup.offloads
        segmentation = setup.segmentation
        paths = setup.pathMTUs
        coalescer = Coalescer(batchCapacity: Self.segmentsPerReceive, udp: setup.coalescesUDP)
        receivedSegments = .allocate(capacity: Self.segmentsPerReceive)
        coalescedWrites = .allocate(capacity: Self.segmentsPerReceive)
        gatherPieces = .allocate(capacity: 2 * Self.segmentsPerReceive)
    }

    deinit {
        completions.deallocate()
        pending.deallocate()
        receivedSegments.deallocate()
        coalescedWrites.deallocate()
        gatherPieces.deallocate()
    }

    /// Until `stop`: arm, reap a batch, forward it, return buffers, submit. Returns the error that
    /// made the loop give up (a receive that keeps failing), or nil when stopped. `log` is called
    /// between batches, for events that happen once (never per packet). With a `busyPoll` budget
    /// the loop looks again for that long after its last batch before it sleeps (`BusyPoll`).
    mutating func run(
        reader: borrowing RouteTableReader,
        ipv6Reader: borrowing IPv6RouteTableReader,
        stop: StopSignal,
        idleMilliseconds: Int32,
        busyPoll budget: Duration = .zero,
        log: Engine.Log = { _ in }
    ) -> EngineError? {
        var busyPoll = BusyPoll(budget)
        let carriesIPv6 = forwarder.ipv6Subnet != nil
        while !stop.isStopped {
            if let failure = armReceives() { return failure }
            let ready = Int(weft_peek_batch(ring, completions, UInt32(completionBatch)))
            if ready == 0 && busyPoll.keepPolling() {
                // With DEFER_TASKRUN completions are posted only when this thread enters the kernel.
                _ = weft_submit_and_get_events(ring)
                continue
            }
            if ready == 0 {
                // Nothing to do: wait in the kernel (this also submits the arms) without holding
                // back route-table reclamation.
                counters.count(.idleWaits)
                reader.goOffline()
                ipv6Reader.goOffline()
                _ = weft_submit_and_wait(ring, 1, idleMilliseconds)
                reader.goOnline()
                ipv6Reader.goOnline()
                continue
            }
            let table = reader.current()
            let ipv6Table = carriesIPv6 ? ipv6Reader.current() : nil
            for index in 0..<ready {
                complete(completions[index].unsafelyUnwrapped.pointee, table: table, ipv6Table: ipv6Table)
            }
            sendBatch()
            if segmentationFellBack != 0 {
                let cause =
                    segmentationFellBack == EIO
                    ? "EIO (the route cannot take UDP GSO: IPsec on the underlay, or, on older kernels, a device without tx checksumming)"
                    : "\(segmentationFellBack == EINVAL ? "EINVAL" : "EMSGSIZE") over the IPv6 underlay (its path MTU is below the interface's, "
                        + "and the kernel cuts no UDP GSO send to fit: each datagram alone it fragments)"
                segmentationFellBack = 0
                log("a UDP_SEGMENT send failed with \(cause): sending one datagram per segment from now on")
            }
            weft_cq_advance(ring, UInt32(ready))
            reader.quiescent()
            ipv6Reader.quiescent()
            returnStagedBuffers()
            _ = weft_submit_and_get_events(ring)
            busyPoll.worked()
        }
        return nil
    }

    @inline(__always)
    private mutating func complete(_ completion: io_uring_cqe, table: RouteTable, ipv6Table: IPv6RouteTable?) {
        switch UringOperation(rawValue: completion.user_data >> 32) {
        case .tunRead: tunReadCompleted(completion, table: table, ipv6Table: ipv6Table)
        case .socketReceive: receiveCompleted(completion, overIPv6: false, table: table, ipv6Table: ipv6Table)
        case .ipv6SocketReceive: receiveCompleted(completion, overIPv6: true, table: table, ipv6Table: ipv6Table)
        default: outputCompleted(completion)
        }
    }

    /// A send's or TUN write's completion: every operation but the receives (and cancels, ignored).
    @inline(__always)
    private mutating func outputCompleted(_ completion: io_uring_cqe) {
        let id = Int(truncatingIfNeeded: completion.user_data & 0xFFFF_FFFF)
        switch UringOperation(rawValue: completion.user_data >> 32) {
        case .send: sendCompleted(id, result: completion.res)
        case .tunWrite: tunWriteCompleted(id, result: completion.res)
        case .segmentSend: segmentSendCompleted(id, result: completion.res)
        case .batchSend: batchSendCompleted(id, result: completion.res)
        case .pathSend: pathSendCompleted(id, result: completion.res)
        case .pathSegmentSend: pathSegmentSendCompleted(id, result: completion.res)
        case .tunRead, .socketReceive, .ipv6SocketReceive, .cancel, nil: break
        }
    }

    // MARK: Receiving

    /// (Re-)arms each multishot request that has ended, once its group has a buffer to give.
    private mutating func armReceives() -> EngineError? {
        if tunRead.needsArming {
            if tunRead.hasFailed {
                return EngineError("io_uring multishot read", "TUN queue fd \(tunQueue)", code: tunRead.lastError)
            }
            let entry = nextSubmission()
            weft_prep_read_multishot(entry, tunQueue, UringBufferLayout.tunGroup)
            weft_sqe_set_user_data(entry, UringOperation.tunRead.userData())
            tunRead.armed = true
        }
        if socketReceive.needsArming {
            if socketReceive.hasFailed {
                return EngineError("io_uring multishot recvmsg", "socket fd \(socket)", code: socketReceive.lastError)
            }
            let entry = nextSubmission()
            weft_prep_recvmsg_multishot(entry, socket, buffers.receiveMessage, UringBufferLayout.socketGroup)
            weft_sqe_set_user_data(entry, UringOperation.socketReceive.userData())
            socketReceive.armed = true
        }
        if ipv6Socket >= 0 && !ipv6Receive.armed && socketReceive.available > 0 {
            if ipv6Receive.hasFailed {
                return EngineError(
                    "io_uring multishot recvmsg",
                    "IPv6 socket fd \(ipv6Socket)",
                    code: ipv6Receive.lastError
                )
            }
            let entry = nextSubmission()
            weft_prep_recvmsg_multishot(entry, ipv6Socket, buffers.ipv6ReceiveMessage, UringBufferLayout.socketGroup)
            weft_sqe_set_user_data(entry, UringOperation.ipv6SocketReceive.userData())
            ipv6Receive.armed = true
        }
        return nil
    }

    /// The buffer a receive completion carries, taken out of its group's count; nil when none (or
    /// an id the kernel cannot have been given).
    @inline(__always)
    private mutating func takeBuffer(_ completion: io_uring_cqe, tun: Bool) -> Int? {
        guard completion.flags & weft_cqe_buffer != 0 else { return nil }
        let id = Int(completion.flags >> weft_cqe_buffer_shift)
        guard id < buffers.bufferCount, buffers.isTUNBuffer(id) == tun else { return nil }
        if tun { tunRead.available -= 1 } else { socketReceive.available -= 1 }
        return id
    }

    private mutating func tunReadCompleted(_ completion: io_uring_cqe, table: RouteTable, ipv6Table: IPv6RouteTable?) {
        if completion.flags & weft_cqe_more == 0 { tunRead.ended(completion.res, counters: counters) }
        guard let id = takeBuffer(completion, tun: true) else { return }
        let length = Int(completion.res)
        guard length > 0 else { return stage(id) }
        tunRead.failures = 0
        counters.count(.tunReadPackets)
        counters.count(.tunReadBytes, by: UInt64(length))
        // TUN truncates a packet longer than the buffer and reports the bytes copied (validation
        // then drops it as bad_total_length); the guard keeps the view inside the buffer regardless.
        guard length <= buffers.providedLength(id) else {
            counters.countDrop(.oversize)
            return stage(id)
        }
        if offloads { return superPacketRead(id, length: length, table: table, ipv6Table: ipv6Table) }
        var packet = PacketBuffer(
            base: buffers.base(id),
            headroom: UringBufferLayout.headroom,
            length: length,
            capacity: buffers.packetCapacity(id)
        )
        switch forwarder.fromTUN(&packet, table: table, ipv6Table: ipv6Table) {
        case .send(let nextHop):
            if let pathMTU = paths.exceeded(payload: packet.length, to: nextHop.publicIP) {
                return sendUnfitting(id, packet, to: nextHop, pathMTU: pathMTU)
            }
            send(id, packet, to: nextHop)
        case .sendIPv6(let hop):
            send(id, packet, to: hop)
        case .replyToTUN(let reason):
            counters.countDrop(reason)
            counters.count(.icmpReplies)
            writeToTUN(id, packet)
        case .drop(let reason):
            counters.countDrop(reason)
            stage(id)
        }
    }

    /// A datagram on the IPv4 socket or (`overIPv6`) the IPv6 underlay's, both into the socket
    /// group; the IPv6 one's name is a sockaddr_in6 (see `UringBuffers`).
    private mutating func receiveCompleted(
        _ completion: io_uring_cqe,
        overIPv6: Bool,
        table: RouteTable,
        ipv6Table: IPv6RouteTable?
    ) {
        if completion.flags & weft_cqe_more == 0 {
            if overIPv6 {
                ipv6Receive.ended(completion.res, counters: counters)
            } else {
                socketReceive.ended(completion.res, counters: counters)
            }
        }
        guard let id = takeBuffer(completion, tun: false) else { return }
        guard completion.res >= 0 else { return stage(id) }
        if overIPv6 { ipv6Receive.failures = 0 } else { socketReceive.failures = 0 }
        let received = ReceivedDatagram(buffers, id, completion.res, overIPv6: overIPv6)
        if offloads { return coalescedReceive(id, received, table: table, ipv6Table: ipv6Table) }
        counters.count(.wireReceivedPackets)
        counters.count(.wireReceivedBytes, by: UInt64(received.length))
        guard var packet = received.packet(buffers, id) else {
            // MSG_TRUNC: the datagram was larger than any packet we could forward.
            counters.countDrop(received.parsed < 0 ? .truncated : .oversize)
            return stage(id)
        }
        let (verdict, peer) = received.sender.admit(&packet, forwarder, table: table, ipv6Table: ipv6Table)
        switch verdict {
        case .deliver:
            counters.countReceived(from: peer, bytes: received.length)
            writeToTUN(id, packet)
        case .drop(let reason):
            counters.countDrop(reason)
            stage(id)
        }
    }

    // MARK: Sending

    @inline(__always)
    mutating func send(_ id: Int, _ packet: PacketBuffer, to nextHop: NextHop) {
        address(id, to: nextHop)
        buffers.vectors[id] = iovec(iov_base: packet.start, iov_len: packet.length)
        submitSend(id, from: sourcePorts.socket(for: packet, forwarder: forwarder, bound: socket))
    }

    /// Sends buffer `id`'s one iovec to its peer from `sender`.
    @inline(__always)
    mutating func submitSend(_ id: Int, from sender: Int32) {
        let entry = nextSubmission()
        weft_prep_sendmsg(entry, sender, buffers.messages + id, 0)
        weft_sqe_set_user_data(entry, UringOperation.send.userData(id))
        pending[id] = 1
        inFlight += 1
    }

    /// Buffer `id`'s sends go to `nextHop`: its sockaddr, which all its sendmsg headers name.
    @inline(__always)
    func address(_ id: Int, to nextHop: NextHop) {
        let peer = buffers.peers + id
        peer.pointee.sin_family = sa_family_t(AF_INET)
        peer.pointee.sin_port = nextHop.port.bigEndian
        peer.pointee.sin_addr.s_addr = nextHop.publicIP.networkOrder
        namesIPv4Peer(id)
    }

    /// Buffer `id`'s message names its sockaddr_in in `peers` again (the IPv6 underlay's sends
    /// point it elsewhere).
    @inline(__always)
    func namesIPv4Peer(_ id: Int) {
        buffers.messages[id].msg_name = UnsafeMutableRawPointer(buffers.peers + id)
        buffers.messages[id].msg_namelen = socklen_t(MemoryLayout<sockaddr_in>.size)
    }

    /// Buffer `id`'s sends go over the IPv6 underlay (its message names a sockaddr_in6): no path
    /// MTU is learned for it, so an EMSGSIZE is a send error only.
    @inline(__always)
    func sendsOverIPv6(_ id: Int) -> Bool {
        buffers.messages[id].msg_namelen == socklen_t(MemoryLayout<sockaddr_in6>.size)
    }

    /// Buffer `id`'s sends go over the IPv6 underlay to `hop`: its message names the sockaddr_in6,
    /// and `peers` keeps the peer's IPv4 PublicIP for its counters.
    @inline(__always)
    func address(_ id: Int, to hop: IPv6Hop) {
        let name = buffers.ipv6Peers + id
        IPv6Names.set(name, hop)
        buffers.peers[id].sin_addr.s_addr = hop.peer.networkOrder
        buffers.messages[id].msg_name = UnsafeMutableRawPointer(name)
        buffers.messages[id].msg_namelen = socklen_t(MemoryLayout<sockaddr_in6>.size)
    }

    /// Sends buffer `id`'s packet over the IPv6 underlay, from the IPv6 source-port socket of its
    /// flow. The path is held to the interface's MTU − 70 by the forwarder, not learned: an
    /// EMSGSIZE is counted as a send error only.
    @inline(__always)
    mutating func send(_ id: Int, _ packet: PacketBuffer, to hop: IPv6Hop) {
        address(id, to: hop)
        buffers.vectors[id] = iovec(iov_base: packet.start, iov_len: packet.length)
        submitSend(id, from: ipv6SourcePorts.socket(for: packet, forwarder: forwarder, bound: ipv6Socket))
    }

    /// One of `id`'s writes; with offloads the packet must already start with its virtio-net header.
    @inline(__always)
    mutating func writeToTUN(_ id: Int, _ packet: PacketBuffer) {
        let entry = nextSubmission()
        weft_prep_write(entry, tunQueue, packet.start, UInt32(packet.length))
        weft_sqe_set_user_data(entry, UringOperation.tunWrite.userData(id))
        pending[id] += 1
        inFlight += 1
    }

    private mutating func sendCompleted(_ id: Int, result: Int32) {
        guard id < buffers.bufferCount else { return }
        inFlight -= 1
        // -ENETUNREACH, -EAGAIN…: the packet is lost, the worker goes on; -EMSGSIZE is resent to fit.
        countSend(id, result: result)
        if result == -EMSGSIZE && !sendsOverIPv6(id) { resendToFit(id) }
        release(id)
    }

    /// A datagram send's completion, counted: an error, or the datagram and its bytes to its peer.
    @inline(__always)
    mutating func countSend(_ id: Int, result: Int32) {
        if result < 0 {
            counters.count(.sendErrors)
        } else {
            counters.count(.wireSentPackets)
            counters.count(.wireSentBytes, by: UInt64(result))
            counters.countSent(to: IPv4Address(networkOrder: buffers.peers[id].sin_addr.s_addr), bytes: Int(result))
        }
    }

    private mutating func tunWriteCompleted(_ id: Int, result: Int32) {
        guard id < buffers.bufferCount else { return }
        inFlight -= 1
        if result < 0 {
            counters.count(.tunWriteErrors)
        } else {
            counters.count(.tunWrittenPackets)
            counters.count(.tunWrittenBytes, by: UInt64(result))
        }
        release(id)
    }

    // MARK: Buffers and submissions

    /// One of `id`'s sends or writes is done; the last one returns the buffer.
    @inline(__always)
    mutating func release(_ id: Int) {
        pending[id] -= 1
        if pending[id] <= 0 {
            pending[id] = 0
            stage(id)
        }
    }

    /// Returns buffer `id` to its ring; the kernel sees it at the end of the batch.
    @inline(__always)
    mutating func stage(_ id: Int) {
        if buffers.isTUNBuffer(id) {
            buffers.stage(id, offset: tunRead.staged)
            tunRead.staged += 1
        } else {
            buffers.stage(id, offset: socketReceive.staged)
            socketReceive.staged += 1
        }
    }

    /// One tail store per ring per batch publishes every buffer staged in it.
    private mutating func returnStagedBuffers() {
        tunRead.returnStaged(ring: buffers.tunRing)
        socketReceive.returnStaged(ring: buffers.socketRing)
    }

    /// The next free submission entry. The queue holds a full batch, so the flush is for safety only.
    @inline(__always)
    func nextSubmission() -> UnsafeMutablePointer<io_uring_sqe> {
        if let entry = weft_get_sqe(ring) { return entry }
        _ = weft_submit(ring)
        while true {
            if let entry = weft_get_sqe(ring) { return entry }
            _ = weft_submit_and_wait(ring, 0, 1)
        }
    }

    // MARK: Shutdown

    /// Cancels both receives and reaps until they have ended and every send and write has completed,
    /// or `milliseconds` pass. True when nothing the kernel does can still touch the buffers.
    mutating func drain(milliseconds: Int) -> Bool {
        sendBatch()
        if tunRead.armed { cancel(.tunRead) }
        if socketReceive.armed { cancel(.socketReceive) }
        if ipv6Receive.armed { cancel(.ipv6SocketReceive) }
        let deadline = ContinuousClock.now + .milliseconds(milliseconds)
        while tunRead.armed || socketReceive.armed || ipv6Receive.armed || inFlight > 0 {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return false }
            _ = weft_submit_and_wait(ring, 1, max(1, left.clampedMilliseconds))
            let ready = Int(weft_peek_batch(ring, completions, UInt32(completionBatch)))
            for index in 0..<ready {
                let completion = completions[index].unsafelyUnwrapped.pointee
                switch UringOperation(rawValue: completion.user_data >> 32) {
                case .tunRead:
                    if completion.flags & weft_cqe_more == 0 { tunRead.armed = false }
                case .socketReceive:
                    if completion.flags & weft_cqe_more == 0 { socketReceive.armed = false }
                case .ipv6SocketReceive:
                    if completion.flags & weft_cqe_more == 0 { ipv6Receive.armed = false }
                default: outputCompleted(completion)
                }
            }
            weft_cq_advance(ring, UInt32(ready))
        }
        return true
    }

    private func cancel(_ operation: UringOperation) {
        let entry = nextSubmission()
        weft_prep_cancel(entry, operation.userData())
        weft_sqe_set_user_data(entry, UringOperation.cancel.userData())
    }
}

/// One multishot receive request and the buffer group only it consumes.
struct MultishotReceive {
    var armed = false
    /// Buffers in the group's ring the kernel may take: exact, because only this request takes them.
    var available: Int
    /// Buffers staged back into the ring this batch, not yet visible to the kernel.
    var staged: Int32 = 0
    /// Ends by an error other than -ENOBUFS, or by end of file, with no packet since: a broken fd
    /// would otherwise be re-armed forever.
    var failures = 0
    var lastError: Int32 = 0
    static let failureLimit = 8

    init(available: Int) { self.available = available }

    /// Re-armed only once its group has a buffer to give, so running dry cannot spin.
    var needsArming: Bool { !armed && available > 0 }
    var hasFailed: Bool { failures >= Self.failureLimit }

    /// The request posted a completion without IORING_CQE_F_MORE. -ENOBUFS: the group ran dry; it
    /// is re-armed when a buffer comes back. -ECANCELED: shutdown. A packet (> 0): the kernel ended
    /// it for its own reasons (CQ overflow); just re-arm. 0 is end of file: a TUN queue detached.
    mutating func ended(_ result: Int32, counters: WorkerCounters) {
        armed = false
        if result == -ENOBUFS {
            counters.count(.bufferShortages)
        } else if result <= 0 && result != -ECANCELED {
            failures += 1
            lastError = result == 0 ? ENODATA : -result
        }
    }

    /// One tail store publishes every buffer staged this batch.
    mutating func returnStaged(ring: UnsafeMutableRawPointer) {
        guard staged > 0 else { return }
        weft_buffer_ring_advance(ring, staged)
        available += Int(staged)
        staged = 0
    }
}
