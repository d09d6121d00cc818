extension WorkerCounters.Traffic: CustomStringConvertible {
    /// snake_case, as drop reasons print, for metrics and JSON keys.
    public var description: String {
        switch self {
        case .tunReadPackets: "tun_read_packets"
        case .tunReadBytes: "tun_read_bytes"
        case .wireSentPackets: "wire_sent_packets"
        case .wireSentBytes: "wire_sent_bytes"
        case .wireReceivedPackets: "wire_received_packets"
        case .wireReceivedBytes: "wire_received_bytes"
        case .tunWrittenPackets: "tun_written_packets"
        case .tunWrittenBytes: "tun_written_bytes"
        case .icmpReplies: "icmp_replies"
        case .sendErrors: "send_errors"
        case .tunWriteErrors: "tun_write_errors"
        case .bufferShortages: "buffer_shortages"
        case .coalescedSegments: "coalesced_segments"
        case .segmentationFallbacks: "segmentation_fallbacks"
        case .batchedPackets: "batched_packets"
        case .idleWaits: "idle_waits"
        case .fragmentationNeededSent: "frag_needed_sent"
        case .packetTooBigSent: "packet_too_big_sent"
        case .pathMTULimitedSends: "path_mtu_limited_sends"
        case .pathMTUUpdates: "path_mtu_updates"
        }
    }
}
