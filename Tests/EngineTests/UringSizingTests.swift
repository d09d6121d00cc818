import Engine
import Packets
import Testing

/// The io_uring worker's ring and buffer sizes: arithmetic, no ring is made.
struct UringSizingTests {
    @Test func sizingCoversTwoBatchesAndAFullPacket() {
        let sizing = UringWorker.Sizing(batchSize: 64, mtu: 1472)
        #expect(sizing.completionBatch == 128)
        #expect(sizing.submissionEntries >= 128 + 4)
        #expect(sizing.buffersPerGroup == 256)
        #expect(sizing.bufferBytes == 1536)  // 64 headroom + 1472, already a multiple of 64
        #expect(sizing.completionEntries >= 2 * sizing.buffersPerGroup * 2)
        let vxlan = UringWorker.Sizing(batchSize: 1, mtu: 1450, wireOverhead: VXLAN.overhead)
        #expect(vxlan.buffersPerGroup == 64)
        #expect(vxlan.bufferBytes >= UringWorker.headroom + 1450 + VXLAN.overhead && vxlan.bufferBytes % 64 == 0)
    }

    @Test func offloadSizingHoldsSuperPacketsAndEveryOperationsCompletion() {
        let plain = UringWorker.Sizing(batchSize: 64, mtu: 1472)
        #expect(plain.tunBufferBytes == plain.bufferBytes && plain.socketBufferBytes == plain.bufferBytes)
        let sizing = UringWorker.Sizing(batchSize: 64, mtu: 1472, offloads: true)
        // Headroom + virtio-net header + the largest IPv4 packet, then the headers of up to 192
        // segments (VXLAN 22 + IP 60 + TCP 60 each); their payload is sent from where it was read.
        #expect(sizing.tunBufferBytes >= 64 + 10 + 65_535 + 192 * 142)
        // recvmsg prefix (32) + UDP_GRO cmsg (24) fit in the headroom, then a 64 KB receive; its
        // segments go to the TUN from there (gathered), so nothing more.
        #expect(sizing.socketBufferBytes >= 64 + 65_535)
        #expect(sizing.socketBufferBytes < sizing.tunBufferBytes)
        #expect(sizing.buffersPerGroup & (sizing.buffersPerGroup - 1) == 0)
        // A super-packet's sends (up to 64) or a receive's TUN writes (up to 64) per buffer.
        #expect(sizing.completionEntries >= sizing.buffersPerGroup * 2 * 64)
    }
}
