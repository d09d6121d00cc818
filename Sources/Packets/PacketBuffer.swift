/// A packet inside a larger buffer: `base` is the start of the buffer, the packet occupies
/// `base[headroom ..< headroom + length]`, and the bytes before it are free for headers to be
/// prepended in place. Non-owning: whoever owns the memory (a provided-buffer ring, a test's
/// allocation) outlives every `PacketBuffer` pointing into it.
public struct PacketBuffer {
    public let base: UnsafeMutableRawPointer
    /// Bytes between `base` and the first byte of the packet.
    public var headroom: Int
    /// Bytes of packet.
    public var length: Int
    /// Bytes available from `base`: headroom + length + tailroom.
    public let capacity: Int

    @inlinable
    public init(base: UnsafeMutableRawPointer, headroom: Int, length: Int, capacity: Int) {
        precondition(headroom >= 0 && length >= 0 && headroom + length <= capacity)
        self.base = base
        self.headroom = headroom
        self.length = length
        self.capacity = capacity
    }

    /// First byte of the packet.
    @inlinable public var start: UnsafeMutableRawPointer { base + headroom }

    /// Grows the packet at the front by `count` bytes (for a header); false if the headroom is short.
    @inlinable @discardableResult
    public mutating func prepend(_ count: Int) -> Bool {
        guard count <= headroom else { return false }
        headroom -= count
        length += count
        return true
    }

    /// Drops `count` bytes from the front (a header consumed); false if the packet is shorter.
    @inlinable @discardableResult
    public mutating func consume(_ count: Int) -> Bool {
        guard count <= length else { return false }
        headroom += count
        length -= count
        return true
    }

    @inlinable public subscript(offset: Int) -> UInt8 {
        get { start.load(fromByteOffset: offset, as: UInt8.self) }
        nonmutating set { start.storeBytes(of: newValue, toByteOffset: offset, as: UInt8.self) }
    }

    /// Big-endian 16-bit field at `offset` from the packet start.
    @inlinable public func load16(_ offset: Int) -> UInt16 {
        UInt16(bigEndian: start.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inlinable public func store16(_ value: UInt16, at offset: Int) {
        start.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt16.self)
    }

    /// Big-endian 32-bit field at `offset` from the packet start.
    @inlinable public func load32(_ offset: Int) -> UInt32 {
        UInt32(bigEndian: start.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inlinable public func store32(_ value: UInt32, at offset: Int) {
        start.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt32.self)
    }
}
