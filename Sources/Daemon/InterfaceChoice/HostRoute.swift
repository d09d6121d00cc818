import Addressing

/// One IPv4 route of the main table, as /proc/net/route lists it.
public struct HostRoute: Equatable, Sendable {
    public var interface: String
    public var destination: IPv4Prefix
    public var gateway: IPv4Address?

    public init(interface: String, destination: IPv4Prefix, gateway: IPv4Address? = nil) {
        self.interface = interface
        self.destination = destination
        self.gateway = gateway
    }

    /// /proc/net/route: a header line, then per route `Iface Destination Gateway Flags RefCnt Use
    /// Metric Mask MTU Window IRTT`, addresses as the host-order hex of the network-order word.
    /// Routes that are not up and malformed lines are left out; the order is the kernel's, which
    /// puts the lowest metric first among equal destinations, as flanneld's netlink dump does.
    public static func parseTable(_ text: String) -> [HostRoute] {
        var routes: [HostRoute] = []
        for line in text.split(separator: "\n").dropFirst() {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 8,
                let destination = UInt32(fields[1], radix: 16),
                let gateway = UInt32(fields[2], radix: 16),
                let flags = UInt32(fields[3], radix: 16),
                let mask = UInt32(fields[7], radix: 16)
            else { continue }
            let routeUp: UInt32 = 0x1
            let routeGateway: UInt32 = 0x2
            guard flags & routeUp != 0 else { continue }
            let maskValue = UInt32(bigEndian: mask)
            let length = (~maskValue).leadingZeroBitCount
            guard maskValue == IPv4Prefix.mask(length) else { continue }
            routes.append(
                HostRoute(
                    interface: String(fields[0]),
                    destination: IPv4Prefix(IPv4Address(networkOrder: destination), length: length),
                    gateway: flags & routeGateway != 0 ? IPv4Address(networkOrder: gateway) : nil
                )
            )
        }
        return routes
    }
}
