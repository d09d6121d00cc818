import Packets

/// The one buffer replay moves every packet through, laid out as the engine's provided buffers
/// are: headroom in front for the headers encapsulation prepends.
struct ReplayBuffer: ~Copyable {
    /// VXLAN + inner Ethernet (22) + outer IPv4/UDP (28), rounded up.
    static let headroom = 64
    /// A whole IPv4 datagram (65,535) after the headroom, plus a capture's link-layer header.
    static let capacity = headroom + 65_535 + 64

    let base: UnsafeMutableRawPointer

    init() {
        base = UnsafeMutableRawPointer.allocate(byteCount: ReplayBuffer.capacity, alignment: 16)
    }

    deinit { base.deallocate() }

    /// Copies `bytes` in after the headroom (cut to what fits) and returns the packet.
    func load(_ bytes: [UInt8]) -> PacketBuffer {
        let length = min(bytes.count, ReplayBuffer.capacity - ReplayBuffer.headroom)
        bytes.withUnsafeBytes { (base + ReplayBuffer.headroom).copyMemory(from: $0.baseAddress!, byteCount: length) }
        return PacketBuffer(
            base: base,
            headroom: ReplayBuffer.headroom,
            length: length,
            capacity: ReplayBuffer.capacity
        )
    }
}

extension PacketBuffer {
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: start, count: length) }
}
