/// When a packet was captured: seconds since the epoch and nanoseconds within the second.
/// Readers open files at nanosecond precision, so pcapng and nanosecond pcap keep every digit.
public struct CaptureTimestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var seconds: Int64
    /// 0 ..< 1_000_000_000.
    public var nanoseconds: UInt32

    public init(seconds: Int64, nanoseconds: UInt32) {
        precondition(nanoseconds < 1_000_000_000, "nanoseconds \(nanoseconds) is a whole second or more")
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    public static let zero = CaptureTimestamp(seconds: 0, nanoseconds: 0)

    public static func < (lhs: CaptureTimestamp, rhs: CaptureTimestamp) -> Bool {
        (lhs.seconds, lhs.nanoseconds) < (rhs.seconds, rhs.nanoseconds)
    }

    public var description: String {
        let fraction = String(nanoseconds)
        return "\(seconds).\(String(repeating: "0", count: 9 - fraction.count))\(fraction)"
    }
}
