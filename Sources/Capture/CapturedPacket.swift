/// One record of a capture file.
public struct CapturedPacket: Hashable, Sendable {
    public var timestamp: CaptureTimestamp
    /// The bytes captured: `originalLength` or fewer when the snapshot length cut the packet.
    public var bytes: [UInt8]
    /// The packet's length on the wire when it was captured.
    public var originalLength: Int

    public init(timestamp: CaptureTimestamp, bytes: [UInt8], originalLength: Int? = nil) {
        self.timestamp = timestamp
        self.bytes = bytes
        self.originalLength = originalLength ?? bytes.count
    }

    /// True when the snapshot length cut the packet short.
    public var isTruncated: Bool { bytes.count < originalLength }
}
