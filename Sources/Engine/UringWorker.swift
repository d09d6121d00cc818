import CShims
import Glibc
import Timing

/// The io_uring worker loop: multishot recvmsg on the UDP socket and multishot read on the TUN
/// queue into provided buffers, the Forwarder on each packet in place, sendmsg / write from the
/// same buffer, buffers back to their ring when the send or write completes.
public enum UringWorker {
    /// Ring and buffer sizes for a worker with `batchSize` and `mtu`; `wireOverhead` is the
    /// Forwarder's headroom (0 for udp). With `offloads`, buffers hold 64 KB super-packets.
    public struct Sizing: Equatable, Sendable {
        /// Completions reaped per batch: 2 × batchSize (receives and the completions of sends).
        public let completionBatch: Int
        public let submissionEntries: Int
        /// Every buffer can have one completion outstanding; twice that leaves the queue never full.
        public let completionEntries: Int
        /// Per provided-buffer group (TUN reads, socket receives); the worker has twice as many.
        public let buffersPerGroup: Int
        /// Bytes per buffer without offloads: headroom + MTU + wireOverhead (so a full-MTU packet
        /// fits in either direction), rounded up to 64.
        public let bufferBytes: Int
        public let offloads: Bool
        /// Bytes per TUN and per socket buffer: `bufferBytes` without offloads; with them the
        /// super-packet region, plus the segment-header region for TUN buffers (a UDP_GRO
        /// receive's segments go to the TUN from where they were received).
        public let tunBufferBytes: Int
        public let socketBufferBytes: Int
        /// Packet memory per worker (page-aligned slab), excluding the rings.
        public var slabBytes: Int { buffersPerGroup * (tunBufferBytes + socketBufferBytes) }

        /// Headroom + the largest IPv4 packet (65,535) + its virtio-net header, rounded up to 64.
        static let superPacketRegion = 65_664
        /// The headers of one super-packet's segments, written for the sends: 192 segments (an MSS
        /// down to about 340 bytes; a smaller one's super-packets are dropped as oversize) of up to
        /// 144 bytes each (VXLAN encapsulation, IP and TCP headers with options). 64 × 92 KB buffers
        /// per group: a batch of super-packets is already ~4 MB.
        static let offloadRegion = SegmentSends.segmentsPerSuperPacket * 144
        static let offloadBuffersPerGroup = 64

        public init(batchSize: Int, mtu: Int, wireOverhead: Int = 0, offloads: Bool = false) {
            completionBatch = batchSize * 2
            // With offloads one completion can lead to many submissions (a super-packet's sends,
            // a receive's TUN writes) and every one of them completes.
            submissionEntries = Self.powerOfTwo(atLeast: offloads ? 1024 : completionBatch + 4)
            buffersPerGroup =
                offloads ? Self.offloadBuffersPerGroup : UringBufferLayout.buffersPerGroup(batchSize: batchSize)
            bufferBytes = UringBufferLayout.roundUp(UringBufferLayout.headroom + max(mtu, 68) + wireOverhead, to: 64)
            self.offloads = offloads
            tunBufferBytes = offloads ? Self.superPacketRegion + Self.offloadRegion : bufferBytes
            socketBufferBytes = offloads ? Self.superPacketRegion : bufferBytes
            let operationsPerBuffer = offloads ? SegmentSends.slotsPerSuperPacket : 1
            completionEntries = max(
                submissionEntries,
                Self.powerOfTwo(atLeast: buffersPerGroup * 2 * (operationsPerBuffer + 1))
            )
        }

        static func powerOfTwo(atLeast value: Int) -> Int {
            var result = 1
            while result < value { result <<= 1 }
            return result
        }
    }

    /// Bytes in front of every packet in a uring buffer.
    public static var headroom: Int { UringBufferLayout.headroom }

    /// Runs the loop on the calling thread until `setup.stop`, then cancels its requests and waits
    /// (≤ 250 ms) for the kernel to let go of its buffers. Throws when the ring or buffers cannot be
    /// set up, or when a receive keeps failing (a broken fd). `log` hears of what happens once
    /// while it runs (UDP_SEGMENT sends refused), as "worker N: …".
    public static func run(_ setup: consuming WorkerSetup, log: Engine.Log = { _ in }) throws(EngineError) {
        let sizing = Sizing(
            batchSize: setup.batchSize,
            mtu: setup.mtu,
            wireOverhead: setup.forwarder.headroom,
            offloads: setup.offloads
        )
        let buffers = try UringBuffers(sizing)
        let ring = try UringRing(
            submissionEntries: sizing.submissionEntries,
            completionEntries: sizing.completionEntries
        )
        try ring.register(buffers)

        let reader = setup.publisher.makeReader()
        let ipv6Reader = setup.ipv6Publisher.makeReader()
        var loop = UringLoop(setup, ring: ring.ring, buffers: buffers.layout, completionBatch: sizing.completionBatch)
        let index = setup.index
        let failure = loop.run(
            reader: reader,
            ipv6Reader: ipv6Reader,
            stop: setup.stop,
            idleMilliseconds: WorkerSetup.idleWait.clampedMilliseconds,
            busyPoll: setup.busyPoll,
            log: { log("worker \(index): \($0)") }
        )
        reader.goOffline()
        ipv6Reader.goOffline()
        let drained = loop.drain(milliseconds: 250)
        _ = consume loop
        _ = consume ring
        if drained { _ = consume buffers } else { buffers.abandon() }
        if let failure { throw failure }
    }

    /// Nil when this process can run the loop: a ring with our flags (or a fallback), registered
    /// buffer rings, and a multishot read (kernel ≥ 6.7) that completes into a provided buffer,
    /// tried on a pipe. Otherwise the first refusal (e.g. EPERM when kernel.io_uring_disabled).
    public static func probe() -> EngineError? {
        do throws(EngineError) {
            let sizing = Sizing(batchSize: 1, mtu: 68)
            let buffers = try UringBuffers(sizing)
            let ring = try UringRing(
                submissionEntries: sizing.submissionEntries,
                completionEntries: sizing.completionEntries
            )
            try ring.register(buffers)
            var pipeEnds: (Int32, Int32) = (-1, -1)
            let opened = withUnsafeMutableBytes(of: &pipeEnds) {
                weft_pipe($0.baseAddress!.assumingMemoryBound(to: Int32.self))
            }
            if opened != 0 { throw EngineError("pipe2", "probe", code: -opened) }
            defer {
                close(pipeEnds.0)
                close(pipeEnds.1)
            }

            guard let entry = weft_get_sqe(ring.ring) else {
                throw EngineError("io_uring_get_sqe", "probe", code: EBUSY)
            }
            weft_prep_read_multishot(entry, pipeEnds.0, UringBufferLayout.tunGroup)
            weft_sqe_set_user_data(entry, UringOperation.tunRead.userData())
            var byte: UInt8 = 0x2A
            _ = write(pipeEnds.1, &byte, 1)
            let result = try completionResult(ring.ring, milliseconds: 500, operation: "IORING_OP_READ_MULTISHOT")
            if result.res < 0 { throw EngineError("IORING_OP_READ_MULTISHOT", "probe pipe", code: -result.res) }
            guard result.flags & weft_cqe_buffer != 0, result.res == 1 else {
                throw EngineError(
                    "IORING_OP_READ_MULTISHOT",
                    "probe pipe: read \(result.res) bytes without a provided buffer",
                    code: EINVAL
                )
            }
            if result.flags & weft_cqe_more != 0, let cancel = weft_get_sqe(ring.ring) {
                weft_prep_cancel(cancel, UringOperation.tunRead.userData())
                weft_sqe_set_user_data(cancel, UringOperation.cancel.userData())
                // Wait for the read's last completion so no request outlives the buffers.
                while try completionResult(ring.ring, milliseconds: 500, operation: "cancel").userData
                    != UringOperation.tunRead.userData()
                {}
            }
            return nil
        } catch {
            return error
        }
    }

    private static func completionResult(
        _ ring: UnsafeMutablePointer<io_uring>,
        milliseconds: Int32,
        operation: String
    ) throws(EngineError) -> (res: Int32, flags: UInt32, userData: UInt64) {
        var completion: UnsafeMutablePointer<io_uring_cqe>? = nil
        if weft_peek_batch(ring, &completion, 1) == 0 {
            let waited = weft_submit_and_wait(ring, 1, milliseconds)
            if waited < 0 && weft_peek_batch(ring, &completion, 1) == 0 {
                throw EngineError(operation, "probe: no completion within \(milliseconds) ms", code: -waited)
            }
            if completion == nil { _ = weft_peek_batch(ring, &completion, 1) }
        }
        guard let completion else { throw EngineError(operation, "probe: no completion", code: ETIME) }
        let result = (completion.pointee.res, completion.pointee.flags, completion.pointee.user_data)
        weft_cq_advance(ring, 1)
        return result
    }
}

extension Duration {
    /// Rounded down and clamped to Int32; for io_uring wait timeouts.
    var clampedMilliseconds: Int32 { Int32(clamping: milliseconds) }
}
