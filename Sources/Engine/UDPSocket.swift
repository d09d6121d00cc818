import Addressing
import CShims
import Glibc

/// A bound IPv4 UDP socket, one per worker: SO_REUSEPORT lets every worker bind the same port and
/// the kernel spreads flows across them.
public struct UDPSocket: ~Copyable {
    public let fd: Int32
    /// The bound port (the kernel's choice when 0 was asked for).
    public let port: UInt16

    /// Default socket buffer: 4 MiB each way, so a burst of GSO sends or a GRO backlog is not dropped
    /// while a worker is busy with a batch.
    public static let defaultBufferBytes = 4 << 20

    public init(
        address: IPv4Address,
        port: UInt16,
        reusePort: Bool = true,
        bufferBytes: Int = UDPSocket.defaultBufferBytes,
        receiveBufferBytes: Int? = nil
    ) throws(EngineError) {
        try self.init(
            opening: weft_udp_socket(),
            family: "AF_INET",
            name: "\(address):\(port)",
            reusePort: reusePort,
            receiveBytes: receiveBufferBytes ?? bufferBytes,
            sendBytes: bufferBytes
        ) { fd in weft_bind_ipv4(fd, address.networkOrder, port.bigEndian) }
    }

    /// An IPv6 UDP socket (IPV6_V6ONLY) bound to [`address`]:`port`, one per worker beside the
    /// IPv4 one: the vxlan IPv6 underlay (flannel's `flannel-v6.<VNI>`). Left at the kernel's
    /// IPv6 path MTU default: a datagram larger than the path is fragmented at the source.
    public init(
        ipv6 address: IPv6Address,
        port: UInt16,
        reusePort: Bool = true,
        bufferBytes: Int = UDPSocket.defaultBufferBytes,
        receiveBufferBytes: Int? = nil
    ) throws(EngineError) {
        try self.init(
            opening: weft_udp6_socket(),
            family: "AF_INET6",
            name: "[\(address)]:\(port)",
            reusePort: reusePort,
            receiveBytes: receiveBufferBytes ?? bufferBytes,
            sendBytes: bufferBytes
        ) { fd in
            var bytes: (UInt64, UInt64) = (0, 0)
            withUnsafeMutableBytes(of: &bytes) { address.store(to: $0.baseAddress!) }
            return withUnsafeBytes(of: &bytes) { weft_bind_ipv6(fd, $0.baseAddress, port.bigEndian) }
        }
    }

    /// Takes the socket `opened` returned (or its -errno), sets its options, binds it with `bind`
    /// (a result ≥ 0 or -errno) and reads the port it got; closes it on any failure.
    private init(
        opening opened: Int32,
        family: String,
        name: String,
        reusePort: Bool,
        receiveBytes: Int,
        sendBytes: Int,
        bind: (Int32) -> Int32
    ) throws(EngineError) {
        let fd = try EngineError.check(opened, "socket(\(family), SOCK_DGRAM)", "")
        do throws(EngineError) {
            if reusePort {
                try EngineError.check(weft_setsockopt_int(fd, SOL_SOCKET, SO_REUSEPORT, 1), "SO_REUSEPORT", name)
            }
            try EngineError.check(weft_socket_set_buffer(fd, 1, Int32(receiveBytes)), "SO_RCVBUF", "\(receiveBytes)")
            try EngineError.check(weft_socket_set_buffer(fd, 0, Int32(sendBytes)), "SO_SNDBUF", "\(sendBytes)")
            try EngineError.check(bind(fd), "bind", name)
            let bound = try EngineError.check(weft_local_port(fd), "getsockname", name)
            self.port = UInt16(bigEndian: UInt16(truncatingIfNeeded: bound))
        } catch {
            close(fd)
            throw error
        }
        self.fd = fd
    }

    /// One datagram to [`address`]:`port` from an IPv6 socket (tests, control traffic). Returns bytes sent.
    @discardableResult
    public func send(
        _ bytes: UnsafeRawBufferPointer,
        to address: IPv6Address,
        port: UInt16
    ) throws(EngineError) -> Int {
        var name: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &name) { address.store(to: $0.baseAddress!) }
        let sent = withUnsafeBytes(of: &name) {
            weft_sendto_ipv6(fd, bytes.baseAddress, bytes.count, $0.baseAddress, port.bigEndian)
        }
        if sent < 0 { throw EngineError("sendto", "[\(address)]:\(port)", code: Int32(-sent)) }
        return sent
    }

    /// A socket that only sends, from a port the kernel picks out of ip_local_port_range. Nothing is
    /// sent to it, so a small receive buffer bounds what a stray sender could park there.
    public static func sendOnly(address: IPv4Address, pathMTUDiscovery mode: Int32) throws(EngineError) -> UDPSocket {
        let socket = try UDPSocket(address: address, port: 0, reusePort: false, receiveBufferBytes: 4096)
        try socket.setPathMTUDiscovery(mode)
        return socket
    }

    /// `sendOnly` on the IPv6 underlay, at the kernel's IPv6 path MTU default.
    public static func sendOnly(ipv6 address: IPv6Address) throws(EngineError) -> UDPSocket {
        try UDPSocket(ipv6: address, port: 0, reusePort: false, receiveBufferBytes: 4096)
    }

    deinit { close(fd) }

    /// UDP_GRO: the kernel may hand one receive many same-sized datagrams, their size in a cmsg.
    public func enableReceiveCoalescing() throws(EngineError) {
        try EngineError.check(weft_setsockopt_int(fd, Int32(IPPROTO_UDP), UDP_GRO, 1), "UDP_GRO", "fd \(fd)")
    }

    /// UDP_SEGMENT as a socket default: every send larger than `segmentSize` is split by the kernel.
    public func setSegmentSize(_ segmentSize: Int) throws(EngineError) {
        try EngineError.check(
            weft_setsockopt_int(fd, Int32(IPPROTO_UDP), UDP_SEGMENT, Int32(segmentSize)),
            "UDP_SEGMENT",
            "\(segmentSize)"
        )
    }

    /// IP_MTU_DISCOVER (`weft_pmtu_do`, `weft_pmtu_omit`): see `PathMTUs`.
    public func setPathMTUDiscovery(_ mode: Int32) throws(EngineError) {
        try EngineError.check(weft_set_path_mtu_discovery(fd, mode), "IP_MTU_DISCOVER", "\(mode)")
    }

    /// The receive buffer the kernel actually granted (it reports double what was set).
    public func receiveBufferBytes() throws(EngineError) -> Int {
        var value: Int32 = 0
        try EngineError.check(
            weft_getsockopt_int(fd, SOL_SOCKET, SO_RCVBUF, &value),
            "getsockopt(SO_RCVBUF)",
            "fd \(fd)"
        )
        return Int(value)
    }

    /// One datagram, outside the ring (control traffic, tests). Returns bytes sent.
    @discardableResult
    public func send(_ bytes: UnsafeRawBufferPointer, to address: IPv4Address, port: UInt16) throws(EngineError) -> Int
    {
        let sent = weft_sendto_ipv4(fd, bytes.baseAddress, bytes.count, address.networkOrder, port.bigEndian)
        if sent < 0 { throw EngineError("sendto", "\(address):\(port)", code: Int32(-sent)) }
        return sent
    }

    /// One datagram, outside the ring; blocks. Returns its length and sender.
    public func receive(
        into bytes: UnsafeMutableRawBufferPointer
    ) throws(EngineError) -> (count: Int, address: IPv4Address, port: UInt16) {
        var address: UInt32 = 0
        var port: UInt16 = 0
        let received = weft_recvfrom_ipv4(fd, bytes.baseAddress, bytes.count, 0, &address, &port)
        if received < 0 { throw EngineError("recvfrom", "fd \(fd)", code: Int32(-received)) }
        return (received, IPv4Address(networkOrder: address), UInt16(bigEndian: port))
    }
}
