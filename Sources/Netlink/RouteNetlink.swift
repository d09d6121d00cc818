import Addressing
import CShims
import Glibc

/// A NETLINK_ROUTE socket: links (up, MTU, kind, a kernel vxlan device), addresses, routes,
/// neighbours and FDB entries. Every request asks for an ACK and waits for it, so a failure
/// surfaces as the kernel's errno on the call that caused it.
/// Sendable: a socket and a sequence counter, used by one owner at a time (it is ~Copyable).
public struct RouteNetlink: ~Copyable, Sendable {
    let fd: Int32
    private var sequence: UInt32 = 1

    public init() throws(NetlinkError) {
        fd = try NetlinkError.check(weft_netlink_route_socket(), "socket(NETLINK_ROUTE)", "")
        weft_netlink_request_extended_ack(fd)
    }

    deinit { close(fd) }

    /// The index of `name` in the calling thread's network namespace.
    public static func interfaceIndex(_ name: String) throws(NetlinkError) -> Int32 {
        let index = if_nametoindex(name)
        if index == 0 { throw NetlinkError("if_nametoindex", name, code: errno) }
        return Int32(index)
    }

    /// RTM_NEWLINK: IFF_UP, and the MTU when given.
    public mutating func setLinkUp(index: Int32, mtu: Int? = nil) throws(NetlinkError) {
        var message = NetlinkMessage(
            type: UInt16(RTM_NEWLINK),
            flags: UInt16(NLM_F_REQUEST | NLM_F_ACK),
            sequence: nextSequence()
        )
        message.appendLinkHeader(index: index, flags: UInt32(IFF_UP), change: UInt32(IFF_UP))
        if let mtu { message.appendAttribute(type: UInt16(IFLA_MTU), UInt32(mtu)) }
        try request(message, "RTM_NEWLINK", "index \(index)")
    }

    /// RTM_NEWADDR: `address/prefixLength` on the link (flannel puts the subnet's .0 as a /32).
    /// An IPv6 address goes through duplicate address detection first, as `ip -6 addr add` does.
    public mutating func addAddress<Address: IPAddress>(
        _ address: Address,
        prefixLength: Int,
        index: Int32
    ) throws(NetlinkError) {
        var message = NetlinkMessage(
            type: UInt16(RTM_NEWADDR),
            flags: UInt16(NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL),
            sequence: nextSequence()
        )
        // struct ifaddrmsg: family, prefixlen, flags, scope, index.
        message.append(Address.netlinkFamily)
        message.append(UInt8(prefixLength))
        message.append(UInt8(0))
        message.append(UInt8(RT_SCOPE_UNIVERSE.rawValue))
        message.append(UInt32(bitPattern: index))
        message.appendAttribute(type: UInt16(IFA_LOCAL), bytes: address.networkBytes)
        message.appendAttribute(type: UInt16(IFA_ADDRESS), bytes: address.networkBytes)
        try request(message, "RTM_NEWADDR", "\(address)/\(prefixLength)")
    }

    /// RTM_NEWROUTE: `prefix` out of the link with link scope (no gateway), in the main table;
    /// with `mtu`, the route's MTU metric (`ip route add … mtu <mtu>`).
    public mutating func addRoute<Prefix: IPPrefix>(
        _ prefix: Prefix,
        index: Int32,
        mtu: Int? = nil
    ) throws(NetlinkError) {
        var message = NetlinkMessage(
            type: UInt16(RTM_NEWROUTE),
            flags: UInt16(NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL),
            sequence: nextSequence()
        )
        // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
        message.append(Prefix.Address.netlinkFamily)
        message.append(UInt8(prefix.length))
        message.append(UInt8(0))
        message.append(UInt8(0))
        message.append(UInt8(RT_TABLE_MAIN.rawValue))
        message.append(UInt8(RTPROT_BOOT))
        message.append(UInt8(RT_SCOPE_LINK.rawValue))
        message.append(UInt8(RTN_UNICAST))
        message.append(UInt32(0))
        message.appendAttribute(type: UInt16(RTA_DST.rawValue), bytes: prefix.network.networkBytes)
        message.appendAttribute(type: UInt16(RTA_OIF.rawValue), UInt32(bitPattern: index))
        if let mtu {
            // RTA_METRICS holds one rtattr per metric, as iproute2 sends it.
            var metric: [UInt8] = []
            for value in [UInt16(8), UInt16(RTAX_MTU)] { withUnsafeBytes(of: value) { metric.append(contentsOf: $0) } }
            withUnsafeBytes(of: UInt32(mtu)) { metric.append(contentsOf: $0) }
            message.appendAttribute(type: UInt16(RTA_METRICS.rawValue), bytes: metric)
        }
        try request(message, "RTM_NEWROUTE", "\(prefix)")
    }

    mutating func nextSequence() -> UInt32 {
        sequence &+= 1
        return sequence
    }

    func request(_ message: NetlinkMessage, _ operation: String, _ subject: String) throws(NetlinkError) {
        _ = try exchange(message, operation, subject)
    }
}

/// A netlink request under construction, in native byte order as netlink wants (addresses aside).
struct NetlinkMessage {
    private(set) var bytes: [UInt8] = []
    let sequence: UInt32

    init(type: UInt16, flags: UInt16, sequence: UInt32) {
        self.sequence = sequence
        append(UInt32(0))  // length, filled by finished()
        append(type)
        append(flags)
        append(sequence)
        append(UInt32(0))  // port id 0: the kernel assigns
    }

    mutating func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value) { bytes.append(contentsOf: $0) }
    }

    /// struct ifinfomsg: family (AF_UNSPEC), pad, type, index, flags, and the mask of flags to change.
    mutating func appendLinkHeader(index: Int32, flags: UInt32 = 0, change: UInt32 = 0) {
        append(UInt8(AF_UNSPEC))
        append(UInt8(0))
        append(UInt16(0))
        append(index)
        append(flags)
        append(change)
    }

    /// An rtattr with a 4-byte payload in native order (indexes, metrics, the VNI).
    mutating func appendAttribute(type: UInt16, _ value: UInt32) {
        append(UInt16(8))
        append(type)
        append(value)
    }

    /// An rtattr holding `value` as given (a name with its NUL, a MAC, a network-order port, a
    /// one-byte switch; empty for a flag), padded to 4 bytes as NLA_ALIGN wants.
    mutating func appendAttribute(type: UInt16, bytes value: [UInt8]) {
        append(UInt16(4 + value.count))
        append(type)
        bytes.append(contentsOf: value)
        while bytes.count % 4 != 0 { bytes.append(0) }
    }

    /// Opens a nested rtattr (NLA_F_NESTED set, as the kernel sets it in its own replies); its
    /// length is filled by `endNested` with the offset this returns.
    mutating func beginNested(type: UInt16) -> Int {
        let start = bytes.count
        append(UInt16(0))
        append(type | 0x8000)
        return start
    }

    mutating func endNested(_ start: Int) {
        withUnsafeBytes(of: UInt16(bytes.count - start)) { bytes.replaceSubrange(start..<(start + 2), with: $0) }
    }

    func finished() -> [UInt8] {
        var result = bytes
        withUnsafeBytes(of: UInt32(result.count)) { result.replaceSubrange(0..<4, with: $0) }
        return result
    }
}

extension Array where Element == UInt8 {
    func loadNative<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
        withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
    }
}
