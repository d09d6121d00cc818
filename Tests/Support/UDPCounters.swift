/// Udp RcvbufErrors from the text of /proc/net/snmp (per network namespace): datagrams the
/// kernel dropped because a socket's receive buffer was full. nil when the text has no such
/// column.
public func udpReceiveBufferErrors(snmp: String) -> UInt64? {
    let lines = snmp.split(separator: "\n").filter { $0.hasPrefix("Udp: ") }
    guard lines.count >= 2 else { return nil }
    let names = lines[0].split(separator: " ")
    let values = lines[1].split(separator: " ")
    guard let column = names.firstIndex(of: "RcvbufErrors"), column < values.count else { return nil }
    return UInt64(values[column])
}
