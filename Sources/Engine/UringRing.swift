import CShims
import Glibc

/// One io_uring, owned once and exited once. SINGLE_ISSUER binds it to the thread that creates it:
/// create it on the worker thread that will submit to it.
struct UringRing: ~Copyable {
    let ring: UnsafeMutablePointer<io_uring>
    /// The setup flags the kernel accepted (without IORING_SETUP_CQSIZE).
    let flags: UInt32

    /// Tried in order while the kernel answers EINVAL. DEFER_TASKRUN (6.1) posts completions only
    /// when this thread enters the kernel, so nothing interrupts a batch; it needs SINGLE_ISSUER
    /// (6.0). COOP_TASKRUN (5.19) at least avoids the interrupt on completion.
    static let flagPreferences: [UInt32] = [
        weft_setup_single_issuer | weft_setup_defer_taskrun,
        weft_setup_single_issuer | weft_setup_coop_taskrun,
        weft_setup_coop_taskrun,
        0,
    ]

    init(submissionEntries: Int, completionEntries: Int) throws(EngineError) {
        let ring = UnsafeMutablePointer<io_uring>.allocate(capacity: 1)
        var failure: Int32 = EINVAL
        for flags in Self.flagPreferences {
            let result = weft_ring_init_sized(ring, UInt32(submissionEntries), UInt32(completionEntries), flags)
            if result == 0 {
                self.ring = ring
                self.flags = flags
                return
            }
            failure = -result
            // EPERM (kernel.io_uring_disabled, seccomp), ENOMEM, ENOSYS: no other flag set helps.
            if failure != EINVAL { break }
        }
        ring.deallocate()
        throw EngineError(
            "io_uring_setup",
            "\(submissionEntries) submission / \(completionEntries) completion entries",
            code: failure
        )
    }

    deinit {
        weft_ring_exit(ring)
        ring.deallocate()
    }

    /// Registers both of `buffers`' provided-buffer rings and hands the kernel every buffer.
    func register(_ buffers: borrowing UringBuffers) throws(EngineError) {
        let layout = buffers.layout
        for group in [UringBufferLayout.tunGroup, UringBufferLayout.socketGroup] {
            let result = weft_register_buffer_ring(
                ring,
                layout.ringMemory(group),
                UInt32(layout.buffersPerGroup),
                group
            )
            try EngineError.check(
                result,
                "IORING_REGISTER_PBUF_RING",
                "group \(group), \(layout.buffersPerGroup) buffers"
            )
        }
        for id in 0..<layout.buffersPerGroup * 2 {
            layout.stage(id, offset: Int32(id % layout.buffersPerGroup))
        }
        weft_buffer_ring_advance(layout.ringMemory(UringBufferLayout.tunGroup), Int32(layout.buffersPerGroup))
        weft_buffer_ring_advance(layout.ringMemory(UringBufferLayout.socketGroup), Int32(layout.buffersPerGroup))
    }
}
