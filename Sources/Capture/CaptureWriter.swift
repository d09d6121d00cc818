import CShims

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a pcap file (not pcapng) through libpcap's dumper. Owns the dumper and its handle and
/// closes both once; call `close()` to learn whether the last writes reached the disk.
public struct CaptureWriter: ~Copyable {
    /// How finely timestamps are stored: microseconds is what tcpdump writes and every tool reads.
    public enum Precision: Sendable {
        case microsecond, nanosecond
    }

    private let handle: OpaquePointer
    private let dumper: OpaquePointer
    public let path: String
    public let linkType: LinkType
    public let precision: Precision
    private var closed = false

    /// The largest record written; libpcap stores it in the file header as the snapshot length.
    public static let snapshotLength: Int32 = 262_144

    /// Creates (or truncates) `path`.
    public init(path: String, linkType: LinkType, precision: Precision = .microsecond) throws(CaptureError) {
        let tstampPrecision = precision == .nanosecond ? PCAP_TSTAMP_PRECISION_NANO : PCAP_TSTAMP_PRECISION_MICRO
        guard
            let dead = pcap_open_dead_with_tstamp_precision(
                linkType.rawValue,
                CaptureWriter.snapshotLength,
                UInt32(tstampPrecision)
            )
        else {
            throw .cannotWrite(path: path, reason: "libpcap could not create a handle for link type \(linkType)")
        }
        guard let opened = pcap_dump_open(dead, path) else {
            let reason = CaptureError.reason(String(cString: pcap_geterr(dead)), path: path)
            pcap_close(dead)
            throw .cannotWrite(path: path, reason: reason)
        }
        handle = dead
        dumper = opened
        self.path = path
        self.linkType = linkType
        self.precision = precision
    }

    deinit {
        if !closed {
            pcap_dump_close(dumper)
            pcap_close(handle)
        }
    }

    /// Appends one record holding all of `bytes`.
    public func write(_ bytes: UnsafeRawBufferPointer, timestamp: CaptureTimestamp, originalLength: Int? = nil) {
        precondition(!closed, "write after close")
        var header = pcap_pkthdr()
        header.ts.tv_sec = time_t(timestamp.seconds)
        header.ts.tv_usec = suseconds_t(precision == .nanosecond ? timestamp.nanoseconds : timestamp.nanoseconds / 1000)
        header.caplen = UInt32(bytes.count)
        header.len = UInt32(originalLength ?? bytes.count)
        // pcap_dump's first argument is the dumper, typed as u_char* for pcap_loop callbacks.
        let user = UnsafeMutableRawPointer(dumper).assumingMemoryBound(to: UInt8.self)
        if let data = bytes.baseAddress {
            pcap_dump(user, &header, data.assumingMemoryBound(to: UInt8.self))
        } else {
            var empty: UInt8 = 0  // an empty record still needs a valid pointer
            pcap_dump(user, &header, &empty)
        }
    }

    public func write(_ bytes: [UInt8], timestamp: CaptureTimestamp) {
        bytes.withUnsafeBytes { write($0, timestamp: timestamp) }
    }

    public func write(_ packet: CapturedPacket) {
        packet.bytes.withUnsafeBytes { write($0, timestamp: packet.timestamp, originalLength: packet.originalLength) }
    }

    /// Flushes and closes the file; throws when the data could not be written (disk full, I/O error).
    public consuming func close() throws(CaptureError) {
        let flushed = pcap_dump_flush(dumper)
        let failed = flushed != 0 || ferror(pcap_dump_file(dumper)) != 0
        let reason = failed ? String(cString: strerror(errno)) : ""
        pcap_dump_close(dumper)
        pcap_close(handle)
        closed = true
        if failed { throw .cannotWrite(path: path, reason: reason) }
    }
}
