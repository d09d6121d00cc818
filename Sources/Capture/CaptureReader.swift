import CShims

/// Reads a capture file, pcap or pcapng, through libpcap. Owns the libpcap handle and closes it
/// once, when the reader goes away.
public struct CaptureReader: ~Copyable {
    private let handle: OpaquePointer
    public let path: String
    /// The link-layer type of every packet in the file (libpcap refuses pcapng files that mix types
    /// with a message, so one value holds for the whole file).
    public let linkType: LinkType

    /// Opens `path` at nanosecond timestamp precision (libpcap scales microsecond files up).
    public init(path: String) throws(CaptureError) {
        var message = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE))
        let opened = message.withUnsafeMutableBufferPointer {
            pcap_open_offline_with_tstamp_precision(path, UInt32(PCAP_TSTAMP_PRECISION_NANO), $0.baseAddress)
        }
        guard let opened else {
            let text = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw .cannotRead(path: path, reason: CaptureError.reason(text, path: path))
        }
        handle = opened
        self.path = path
        linkType = LinkType(rawValue: pcap_datalink(opened))
    }

    deinit { pcap_close(handle) }

    /// The next packet, or nil at the end of the file. A file cut off mid-record throws.
    public mutating func next() throws(CaptureError) -> CapturedPacket? {
        var header: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        switch pcap_next_ex(handle, &header, &data) {
        case 1:
            guard let header, let data else { return nil }
            let record = header.pointee
            let bytes = Array(UnsafeBufferPointer(start: data, count: Int(record.caplen)))
            // Opened at nanosecond precision, so tv_usec holds nanoseconds.
            let timestamp = CaptureTimestamp(
                seconds: Int64(record.ts.tv_sec),
                nanoseconds: UInt32(clamping: record.ts.tv_usec)
            )
            return CapturedPacket(timestamp: timestamp, bytes: bytes, originalLength: Int(record.len))
        case PCAP_ERROR_BREAK:
            return nil  // -2: no more packets in a savefile
        default:
            throw .cannotRead(path: path, reason: CaptureError.reason(String(cString: pcap_geterr(handle)), path: path))
        }
    }

    /// Every remaining packet, in file order.
    public mutating func readAll() throws(CaptureError) -> [CapturedPacket] {
        var packets: [CapturedPacket] = []
        while let packet = try next() { packets.append(packet) }
        return packets
    }
}
