/// A capture file that could not be opened, read or written. The description is one line:
/// the operation, the path, and libpcap's (or the C library's) reason.
public enum CaptureError: Error, Equatable, CustomStringConvertible {
    case cannotRead(path: String, reason: String)
    case cannotWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotRead(path, reason): "cannot read capture \(path): \(reason)"
        case let .cannotWrite(path, reason): "cannot write capture \(path): \(reason)"
        }
    }

    /// libpcap often starts its message with the path ("in.pcap: No such file or directory");
    /// the path is already in ours, so drop the repeat.
    static func reason(_ message: String, path: String) -> String {
        let prefix = path + ": "
        let trimmed = message.hasPrefix(prefix) ? String(message.dropFirst(prefix.count)) : message
        return trimmed.isEmpty ? "unknown libpcap error" : trimmed
    }
}
