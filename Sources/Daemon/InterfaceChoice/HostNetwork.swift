import Addressing
import CShims
import Glibc

/// Reads the calling thread's network namespace: interfaces and their IPv4 and IPv6 addresses
/// (getifaddrs, SIOCGIFMTU), the main
/// IPv4 routing table, and the source address toward a destination.
///
/// Routes come from /proc/thread-self/net/route rather than rtnetlink: it lists the same main table
/// flanneld's RouteList dump walks, in the same order, as text a pure parser can be tested on,
/// and needs no netlink message code. thread-self (not self) so a thread that entered another
/// namespace with setns sees that namespace's routes.
public enum HostNetwork {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    public static func interfaces() throws(Failure) -> [HostInterface] {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else {
            throw Failure(
                description: "getifaddrs failed: \(String(cString: strerror(errno))); weftd cannot list interfaces"
            )
        }
        defer { freeifaddrs(list) }
        let probe = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer { if probe >= 0 { close(probe) } }

        var byName: [String: HostInterface] = [:]
        var order: [String] = []
        var entry = list
        while let current = entry {
            entry = current.pointee.ifa_next
            let name = String(cString: current.pointee.ifa_name)
            if byName[name] == nil {
                let flags = current.pointee.ifa_flags
                let mtu = probe >= 0 ? Int(weft_daemon_interface_mtu(probe, name)) : -1
                byName[name] = HostInterface(
                    name: name,
                    index: Int(if_nametoindex(name)),
                    mtu: max(mtu, 0),
                    addresses: [],
                    isUp: flags & UInt32(IFF_UP) != 0,
                    isLoopback: flags & UInt32(IFF_LOOPBACK) != 0
                )
                order.append(name)
            }
            if let address = current.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET) {
                let value = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr.s_addr }
                byName[name]!.addresses.append(IPv4Address(networkOrder: value))
            }
            if let address = current.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET6) {
                let value = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                    withUnsafeBytes(of: $0.pointee.sin6_addr) { IPv6Address(loadingFrom: $0.baseAddress!) }
                }
                byName[name]!.ipv6Addresses.append(value)
            }
        }
        return order.compactMap { byName[$0] }.sorted { $0.index < $1.index }
    }

    public static func routes() throws(Failure) -> [HostRoute] {
        let path = "/proc/thread-self/net/route"
        guard let file = fopen(path, "r") else {
            throw Failure(description: "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count <= 0 { break }
            bytes += chunk[0..<count]
        }
        return HostRoute.parseTable(String(decoding: bytes, as: UTF8.self))
    }

    /// The source address the kernel would use toward `destination`: connect() on a UDP socket
    /// picks the route and source without sending anything (what `ip route get` reports).
    public static func sourceAddress(toward destination: IPv4Address) throws(Failure) -> IPv4Address {
        var target = sockaddr_in()
        target.sin_family = sa_family_t(AF_INET)
        target.sin_port = UInt16(9).bigEndian  // discard; nothing is sent
        target.sin_addr.s_addr = destination.networkOrder
        let local = try connectedSource(AF_INET, target, destination: destination)
        return IPv4Address(networkOrder: local.sin_addr.s_addr)
    }

    /// The same toward an IPv6 destination.
    public static func sourceAddress(toward destination: IPv6Address) throws(Failure) -> IPv6Address {
        var target = sockaddr_in6()
        target.sin6_family = sa_family_t(AF_INET6)
        target.sin6_port = UInt16(9).bigEndian
        withUnsafeMutableBytes(of: &target.sin6_addr) { $0.copyBytes(from: destination.networkBytes) }
        let local = try connectedSource(AF_INET6, target, destination: destination)
        return withUnsafeBytes(of: local.sin6_addr) { IPv6Address(networkBytes: $0)! }
    }

    /// Connects a UDP socket of `family` to `target` (a sockaddr_in or sockaddr_in6) and returns
    /// the local address the kernel bound, of the same type.
    private static func connectedSource<SocketAddress>(
        _ family: Int32,
        _ target: SocketAddress,
        destination: any IPAddress
    ) throws(Failure) -> SocketAddress {
        let fd = socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket failed: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let size = socklen_t(MemoryLayout<SocketAddress>.size)
        let connected = withUnsafeBytes(of: target) {
            connect(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), size)
        }
        guard connected == 0 else {
            throw Failure(
                description: "no route to --iface-can-reach=\(destination): \(String(cString: strerror(errno)))"
            )
        }
        var local = target
        var length = size
        let named = withUnsafeMutableBytes(of: &local) {
            getsockname(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), &length)
        }
        guard named == 0 else { throw Failure(description: "getsockname failed: \(String(cString: strerror(errno)))") }
        return local
    }

    /// Reads this namespace and runs InterfaceSelector on it.
    public static func selectInterface(_ request: InterfaceRequest) throws -> ExternalInterface {
        let reach = try request.canReach.map { (target) throws(Failure) in try sourceAddress(toward: target) }
        let reachIPv6 = try request.canReachIPv6.map { (target) throws(Failure) in try sourceAddress(toward: target) }
        return try InterfaceSelector.select(
            request,
            interfaces: interfaces(),
            routes: routes(),
            reachSource: reach,
            reachSourceIPv6: reachIPv6
        )
    }
}
