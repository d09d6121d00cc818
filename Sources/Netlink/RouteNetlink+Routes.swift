import Addressing
import CShims
import Glibc

/// One route of the main table as the kernel reports it in an RTM_GETROUTE dump, of either
/// family: `KernelRoute` (IPv4) or `KernelIPv6Route`.
public struct KernelRouteOf<Address: IPAddress>: Hashable, Sendable {
    public var destination: Address.Prefix
    /// RTA_GATEWAY; nil for a connected route (and for multipath routes, whose hops Weft does not read).
    public var gateway: Address?
    /// RTA_OIF; nil when the kernel gave none (multipath, an IPv4 blackhole; an IPv6 blackhole names lo).
    public var interfaceIndex: Int32?
    /// rtm_protocol: who installed the route (2 kernel, 3 boot, 4 static, ... /etc/iproute2/rt_protos).
    public var routeProtocol: UInt8
    public var table: UInt32
    public var scope: UInt8
    /// rtm_type: RTN_UNICAST (1), RTN_LOCAL, RTN_BLACKHOLE, ...
    public var type: UInt8
    /// RTA_PRIORITY, the metric. The default is what the kernel gives a route added without one
    /// (`defaultMetric`: 0 for IPv4, 1024 for IPv6), so a route built here equals its dump.
    public var priority: UInt32
    /// RTNH_F_ONLINK: the gateway is taken as on the device's link whatever its addresses say
    /// (flannel's vxlan routes point at the peer's subnet address through flannel.<VNI> this way).
    public var onlink: Bool

    public init(
        destination: Address.Prefix,
        gateway: Address?,
        interfaceIndex: Int32?,
        routeProtocol: UInt8,
        table: UInt32 = UInt32(RT_TABLE_MAIN.rawValue),
        scope: UInt8 = UInt8(RT_SCOPE_UNIVERSE.rawValue),
        type: UInt8 = UInt8(RTN_UNICAST),
        priority: UInt32 = Self.defaultMetric,
        onlink: Bool = false
    ) {
        self.destination = destination
        self.gateway = gateway
        self.interfaceIndex = interfaceIndex
        self.routeProtocol = routeProtocol
        self.table = table
        self.scope = scope
        self.type = type
        self.priority = priority
        self.onlink = onlink
    }

    /// The metric the kernel gives a route added without RTA_PRIORITY: 0 for IPv4, 1024 for IPv6
    /// (IP6_RT_PRIO_USER).
    public static var defaultMetric: UInt32 { Address.bitWidth == 32 ? 0 : 1024 }
}

public typealias KernelRoute = KernelRouteOf<IPv4Address>
public typealias KernelIPv6Route = KernelRouteOf<IPv6Address>

extension IPAddress {
    /// rtmsg's and ifaddrmsg's family byte.
    static var netlinkFamily: UInt8 { UInt8(bitWidth == 32 ? AF_INET : AF_INET6) }
    /// "IPv4" or "IPv6", for errors.
    public static var familyName: String { bitWidth == 32 ? "IPv4" : "IPv6" }
}

extension KernelRouteOf: CustomStringConvertible {
    /// `ip route`'s shape, e.g. "10.244.2.0/24 via 198.18.0.2 dev 3 proto 87" or "blackhole
    /// 10.244.1.0/24 proto 87 metric 4294967295"; dev is the index. IPv6's default metric, 1024,
    /// is printed as `ip -6 route` prints it.
    public var description: String {
        var text = type == UInt8(RTN_BLACKHOLE) ? "blackhole \(destination)" : "\(destination)"
        if let gateway { text += " via \(gateway)" }
        if let interfaceIndex { text += " dev \(interfaceIndex)" }
        if onlink { text += " onlink" }
        text += " proto \(Self.protocolName(routeProtocol))"
        if priority != 0 { text += " metric \(priority)" }
        if table != UInt32(RT_TABLE_MAIN.rawValue) { text += " table \(table)" }
        return text
    }

    /// iproute2's names for the protocols a reader is likely to meet; others as numbers.
    public static func protocolName(_ value: UInt8) -> String {
        switch Int32(value) {
        case RTPROT_KERNEL: "kernel"
        case RTPROT_BOOT: "boot"
        case RTPROT_STATIC: "static"
        case RTPROT_DHCP: "dhcp"
        default: "\(value)"
        }
    }
}

extension RouteNetlink {
    /// RTM_NEWROUTE with NLM_F_EXCL for `route` as given (any type: a blackhole has no gateway or
    /// device). EEXIST when any route for its destination with the same metric is already there.
    public mutating func addRoute<Address>(_ route: KernelRouteOf<Address>) throws(NetlinkError) {
        try newRoute(route, NLM_F_EXCL, "RTM_NEWROUTE")
    }

    /// RTM_NEWROUTE with NLM_F_REPLACE for `route` as given (an onlink route included): installs it,
    /// or rewrites the gateway, device and protocol of the route already there for its destination
    /// (same metric and TOS), whoever owns it.
    public mutating func replaceRoute<Address>(_ route: KernelRouteOf<Address>) throws(NetlinkError) {
        try newRoute(route, NLM_F_REPLACE, "RTM_NEWROUTE replace")
    }

    /// RTM_NEWROUTE creating `route`, with `mode` (NLM_F_EXCL or NLM_F_REPLACE) saying what happens
    /// to one already there.
    private mutating func newRoute<Address>(
        _ route: KernelRouteOf<Address>,
        _ mode: Int32,
        _ operation: String
    ) throws(NetlinkError) {
        let flags = UInt16(NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | mode)
        try request(
            RouteMessage.encode(route, type: UInt16(RTM_NEWROUTE), flags: flags, sequence: nextSequence()),
            operation,
            "\(route)"
        )
    }

    /// RTM_DELROUTE. The kernel deletes only a route matching every field given, protocol included
    /// (fib_table_delete), so deleting with Weft's protocol can never remove someone else's route.
    public mutating func deleteRoute<Address>(_ route: KernelRouteOf<Address>) throws(NetlinkError) {
        var selector = route
        selector.scope = UInt8(RT_SCOPE_NOWHERE.rawValue)  // "any scope", as `ip route del` sends
        try request(
            RouteMessage.encode(
                selector,
                type: UInt16(RTM_DELROUTE),
                flags: UInt16(NLM_F_REQUEST | NLM_F_ACK),
                sequence: nextSequence()
            ),
            "RTM_DELROUTE",
            "\(route)"
        )
    }

    /// The route the kernel would use to reach `destination`, as `ip route get` asks for it
    /// (RTM_GETROUTE for one /32 or /128 with RTM_F_LOOKUP_TABLE, so the reply names the table it came
    /// from): a gateway when the destination is reached via a router, none when it is directly
    /// connected; type RTN_LOCAL for one of our own addresses. ENETUNREACH (or EHOSTUNREACH)
    /// when no route reaches it.
    public mutating func lookupRoute<Address>(to destination: Address) throws(NetlinkError) -> KernelRouteOf<Address> {
        let replies = try exchange(
            RouteMessage.lookupRequest(destination, sequence: nextSequence()),
            "RTM_GETROUTE",
            "\(destination)"
        )
        for reply in replies where reply.type == UInt16(RTM_NEWROUTE) {
            if let route: KernelRouteOf<Address> = try RouteMessage.decode(reply.payload) { return route }
        }
        throw NetlinkError(
            "RTM_GETROUTE",
            "\(destination): the kernel answered with no \(Address.familyName) route",
            code: EBADMSG
        )
    }

    /// Every IPv4 route of the main table.
    public mutating func mainTableRoutes() throws(NetlinkError) -> [KernelRoute] {
        try mainTableRoutes(IPv4Address.self)
    }

    /// Every route of `family` (IPv4Address.self, IPv6Address.self) in the main table; a dump the
    /// kernel marks interrupted is read again (`dump`).
    public mutating func mainTableRoutes<Address>(
        _ family: Address.Type
    ) throws(NetlinkError) -> [KernelRouteOf<Address>] {
        try dump(
            { RouteMessage.dumpRequest(family: Address.netlinkFamily, sequence: $0) },
            "RTM_GETROUTE dump",
            "\(Address.familyName) main table",
            type: UInt16(RTM_NEWROUTE),
            RouteMessage.decode
        )
        .filter { $0.table == UInt32(RT_TABLE_MAIN.rawValue) }
    }

    /// Sends `message` and collects the replies carrying its sequence number: until the ACK for a
    /// request, until NLMSG_DONE for a dump. An NLMSG_ERROR with a nonzero code throws, naming the
    /// kernel's extended-ACK text when it gave one. Replies to other sequence numbers (a request
    /// abandoned earlier) are skipped.
    func exchange(
        _ message: NetlinkMessage,
        _ operation: String,
        _ subject: String,
        dump: Bool = false
    ) throws(NetlinkError) -> [NetlinkReply] {
        let bytes = message.finished()
        let sent = bytes.withUnsafeBytes { weft_netlink_send(fd, $0.baseAddress, $0.count) }
        if sent < 0 { throw NetlinkError(operation, subject, code: Int32(-sent)) }
        var collected: [NetlinkReply] = []
        // Dump datagrams are at most 32 KiB (netlink_dump); 64 KiB leaves room, and MSG_TRUNC catches the rest.
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let ready = weft_poll_readable(fd, 5000)
            if ready == 0 { throw NetlinkError("\(operation) reply", subject, code: ETIMEDOUT) }
            if ready < 0 { throw NetlinkError("\(operation) reply", subject, code: -ready) }
            let received = buffer.withUnsafeMutableBytes { weft_netlink_receive(fd, $0.baseAddress, $0.count) }
            if received < 0 { throw NetlinkError("\(operation) reply", subject, code: Int32(-received)) }
            for reply in try NetlinkReply.split(buffer[0..<received], operation, subject)
            where reply.sequence == message.sequence {
                switch reply.type {
                case UInt16(NLMSG_ERROR):
                    let error = try reply.errorCode(operation, subject)
                    if error != 0 {
                        let reason = reply.extendedAckMessage().map { " (kernel: \($0))" } ?? ""
                        throw NetlinkError(operation, subject + reason, code: -error)
                    }
                    if !dump { return collected }
                case UInt16(NLMSG_DONE):
                    // A dump that failed part-way ends with NLMSG_DONE carrying -errno.
                    let error = reply.payload.count >= 4 ? reply.payload.loadNative(Int32.self, at: 0) : 0
                    if error != 0 { throw NetlinkError(operation, subject, code: -error) }
                    collected.append(reply)
                    return collected
                default:
                    collected.append(reply)
                }
            }
        }
    }
}

/// One message of a netlink reply datagram: the header's fields and the payload after it.
struct NetlinkReply: Equatable {
    var type: UInt16
    var flags: UInt16
    var sequence: UInt32
    var payload: [UInt8]

    static let headerSize = 16

    /// Cuts a datagram into messages (each 4-byte aligned, NLMSG_ALIGN). A length field that is
    /// too small or runs past the datagram throws EBADMSG rather than reading out of bounds.
    static func split(
        _ bytes: ArraySlice<UInt8>,
        _ operation: String,
        _ subject: String
    ) throws(NetlinkError) -> [NetlinkReply] {
        let data = Array(bytes)
        var replies: [NetlinkReply] = []
        var offset = 0
        while offset + headerSize <= data.count {
            let length = Int(data.loadNative(UInt32.self, at: offset))
            guard length >= headerSize, length <= data.count - offset else {
                throw NetlinkError(
                    "\(operation) reply",
                    "\(subject): nlmsg_len \(length) at offset \(offset) of a \(data.count)-byte datagram",
                    code: EBADMSG
                )
            }
            replies.append(
                NetlinkReply(
                    type: data.loadNative(UInt16.self, at: offset + 4),
                    flags: data.loadNative(UInt16.self, at: offset + 6),
                    sequence: data.loadNative(UInt32.self, at: offset + 8),
                    payload: Array(data[(offset + headerSize)..<(offset + length)])
                )
            )
            offset += (length + 3) & ~3
        }
        return replies
    }

    /// struct nlmsgerr's `error`: 0 for an ACK, -errno for a failure.
    func errorCode(_ operation: String, _ subject: String) throws(NetlinkError) -> Int32 {
        guard payload.count >= 4 else {
            throw NetlinkError("\(operation) reply", "\(subject): NLMSG_ERROR of \(payload.count) bytes", code: EBADMSG)
        }
        return payload.loadNative(Int32.self, at: 0)
    }

    /// NLMSGERR_ATTR_MSG from an extended ACK: after `error` comes the echoed request, only its
    /// 16-byte header when NLM_F_CAPPED is set, then the TLVs.
    func extendedAckMessage() -> String? {
        guard flags & weft_nlm_f_ack_tlvs != 0, payload.count >= 4 + NetlinkReply.headerSize else { return nil }
        let echoed =
            flags & weft_nlm_f_capped != 0 ? NetlinkReply.headerSize : Int(payload.loadNative(UInt32.self, at: 4))
        var offset = (4 + echoed + 3) & ~3
        while offset + 4 <= payload.count {
            let length = Int(payload.loadNative(UInt16.self, at: offset))
            let type = payload.loadNative(UInt16.self, at: offset + 2)
            guard length >= 4, offset + length <= payload.count else { return nil }
            if type == UInt16(NLMSGERR_ATTR_MSG.rawValue) {
                let text = payload[(offset + 4)..<(offset + length)].prefix { $0 != 0 }
                return text.isEmpty ? nil : String(decoding: text, as: UTF8.self)
            }
            offset += (length + 3) & ~3
        }
        return nil
    }
}

/// struct rtmsg plus its attributes, both ways, for either family.
enum RouteMessage {
    static let headerSize = 12

    /// RTM_NEWROUTE / RTM_DELROUTE for `route`: rtmsg, then RTA_DST, RTA_GATEWAY, RTA_OIF (and
    /// RTA_PRIORITY / RTA_TABLE only when not the defaults), in the order iproute2 sends them.
    static func encode<Address>(
        _ route: KernelRouteOf<Address>,
        type: UInt16,
        flags: UInt16,
        sequence: UInt32
    ) -> NetlinkMessage {
        var message = NetlinkMessage(type: type, flags: flags, sequence: sequence)
        // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
        message.append(Address.netlinkFamily)
        message.append(UInt8(route.destination.length))
        message.append(UInt8(0))
        message.append(UInt8(0))
        message.append(UInt8(truncatingIfNeeded: route.table < 256 ? route.table : UInt32(RT_TABLE_UNSPEC.rawValue)))
        message.append(route.routeProtocol)
        message.append(route.scope)
        message.append(route.type)
        message.append(route.onlink ? UInt32(RTNH_F_ONLINK) : UInt32(0))
        message.appendAttribute(type: UInt16(RTA_DST.rawValue), bytes: route.destination.network.networkBytes)
        if let gateway = route.gateway {
            message.appendAttribute(type: UInt16(RTA_GATEWAY.rawValue), bytes: gateway.networkBytes)
        }
        if let index = route.interfaceIndex {
            message.appendAttribute(type: UInt16(RTA_OIF.rawValue), UInt32(bitPattern: index))
        }
        if route.priority != 0 { message.appendAttribute(type: UInt16(RTA_PRIORITY.rawValue), route.priority) }
        if route.table >= 256 { message.appendAttribute(type: UInt16(RTA_TABLE.rawValue), route.table) }
        return message
    }

    /// RTM_GETROUTE with NLM_F_DUMP for `family`: every table; the caller keeps the main one.
    static func dumpRequest(family: UInt8, sequence: UInt32) -> NetlinkMessage {
        var message = NetlinkMessage(
            type: UInt16(RTM_GETROUTE),
            flags: UInt16(NLM_F_REQUEST) | weft_nlm_f_dump,
            sequence: sequence
        )
        message.append(family)
        for _ in 0..<7 { message.append(UInt8(0)) }
        message.append(UInt32(0))
        return message
    }

    /// RTM_GETROUTE for one destination, as `ip route get <address>` sends it: rtmsg with a /32
    /// (/128) and RTM_F_LOOKUP_TABLE, RTA_DST. NLM_F_ACK makes the kernel follow its one
    /// RTM_NEWROUTE answer with an ACK, which ends the exchange as for every other request.
    static func lookupRequest<Address: IPAddress>(_ destination: Address, sequence: UInt32) -> NetlinkMessage {
        var message = NetlinkMessage(
            type: UInt16(RTM_GETROUTE),
            flags: UInt16(NLM_F_REQUEST | NLM_F_ACK),
            sequence: sequence
        )
        message.append(Address.netlinkFamily)
        message.append(UInt8(Address.bitWidth))
        for _ in 0..<6 { message.append(UInt8(0)) }
        message.append(UInt32(RTM_F_LOOKUP_TABLE))
        message.appendAttribute(type: UInt16(RTA_DST.rawValue), bytes: destination.networkBytes)
        return message
    }

    /// An RTM_NEWROUTE payload; nil for another family than `Address`'s. A short header, a
    /// destination length above the family's width, or an attribute running past the payload
    /// throws EBADMSG.
    static func decode<Address>(_ payload: [UInt8]) throws(NetlinkError) -> KernelRouteOf<Address>? {
        try RouteNetlink.requireHeader(payload, headerSize, "RTM_GETROUTE reply", "rtmsg")
        guard payload[0] == Address.netlinkFamily else { return nil }
        let length = Int(payload[1])
        guard length <= Address.bitWidth else {
            throw NetlinkError("RTM_GETROUTE reply", "rtm_dst_len \(length) above \(Address.bitWidth)", code: EBADMSG)
        }
        var route = KernelRouteOf<Address>(
            destination: Address.Prefix(.any, length: length),
            gateway: nil,
            interfaceIndex: nil,
            routeProtocol: payload[5],
            table: UInt32(payload[4]),
            scope: payload[6],
            type: payload[7],
            priority: 0,
            onlink: payload.loadNative(UInt32.self, at: 8) & UInt32(RTNH_F_ONLINK) != 0
        )
        for (type, range) in try RouteNetlink.attributes(
            payload,
            in: headerSize..<payload.count,
            "RTM_GETROUTE reply",
            "rtmsg"
        ) {
            // Addresses are the family's width, everything else read here four bytes.
            if let address = Address(networkBytes: payload[range]) {
                switch type {
                case UInt16(RTA_DST.rawValue): route.destination = Address.Prefix(address, length: length)
                case UInt16(RTA_GATEWAY.rawValue): route.gateway = address
                default: break
                }
            }
            guard range.count == 4 else { continue }
            let value = payload.loadNative(UInt32.self, at: range.lowerBound)
            switch type {
            case UInt16(RTA_OIF.rawValue): route.interfaceIndex = Int32(bitPattern: value)
            case UInt16(RTA_PRIORITY.rawValue): route.priority = value
            case UInt16(RTA_TABLE.rawValue): route.table = value  // the full id; rtm_table stops at 255
            default: break
            }
        }
        return route
    }
}
