import Addressing

/// One network interface as the host reports it (HostNetwork reads these).
public struct HostInterface: Equatable, Sendable {
    public var name: String
    public var index: Int
    public var mtu: Int
    /// IPv4 addresses in the kernel's order (primary first).
    public var addresses: [IPv4Address]
    public var isUp: Bool
    public var isLoopback: Bool
    /// IPv6 addresses in the kernel's order.
    public var ipv6Addresses: [IPv6Address]

    public init(
        name: String,
        index: Int,
        mtu: Int,
        addresses: [IPv4Address],
        isUp: Bool = true,
        isLoopback: Bool = false,
        ipv6Addresses: [IPv6Address] = []
    ) {
        self.name = name
        self.index = index
        self.mtu = mtu
        self.addresses = addresses
        self.isUp = isUp
        self.isLoopback = isLoopback
        self.ipv6Addresses = ipv6Addresses
    }

    /// flanneld takes the first usable address, global before link-local.
    var preferredAddress: IPv4Address? {
        let linkLocal = IPv4Prefix(IPv4Address(169, 254, 0, 0), length: 16)
        return addresses.first { !linkLocal.contains($0) } ?? addresses.first
    }

    /// flanneld's GetInterfaceIP6Addrs: global unicast before link-local (fe80::/10); loopback,
    /// multicast and the unspecified address are never used.
    var preferredIPv6Address: IPv6Address? {
        let linkLocal = IPv6Prefix(IPv6Address(0xfe80 << 112), length: 10)
        let usable = ipv6Addresses.filter { Self.isUnicast($0) }
        return usable.first { !linkLocal.contains($0) } ?? usable.first
    }

    static func isUnicast(_ address: IPv6Address) -> Bool {
        let multicast = IPv6Prefix(IPv6Address(0xff << 120), length: 8)
        return address != .any && address != IPv6Address(1) && !multicast.contains(address)
    }
}

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

/// What InterfaceSelector decided: the interface inter-host traffic uses and the address peers send to.
public struct ExternalInterface: Equatable, Sendable {
    public var name: String
    public var index: Int
    public var mtu: Int
    /// The interface address the underlay sockets bind to.
    public var address: IPv4Address
    /// What the lease advertises: --public-ip, else `address`.
    public var publicIP: IPv4Address
    /// The interface's IPv6 address (the one --iface or --iface-regex named, else its first
    /// usable one); nil when it has none. Used only when the network has IPv6.
    public var ipv6Address: IPv6Address?
    /// What a dual-stack lease advertises as PublicIPv6: --public-ipv6, else `ipv6Address`.
    public var publicIPv6: IPv6Address?
    /// Why this one, for the log: "it carries the default route (via 198.18.0.1)".
    public var reason: String
    /// Other up, non-loopback interfaces with IPv4, "name (address)", for the multi-NIC log line.
    public var others: [String]

    /// One log line saying what was chosen and why, and what else was there.
    public var summary: String {
        let v6 = ipv6Address.map { ", IPv6 address \($0)" } ?? ""
        var text = "using interface \(name) (index \(index), address \(address)\(v6), MTU \(mtu)): \(reason)"
        if publicIP != address { text += "; advertising public IP \(publicIP)" }
        if let publicIPv6, publicIPv6 != ipv6Address { text += "; advertising public IPv6 \(publicIPv6)" }
        if !others.isEmpty {
            text += "; also on this host: \(others.joined(separator: ", ")) (choose one with --iface)"
        }
        return text
    }
}

/// The part of DaemonOptions that picks the interface.
public struct InterfaceRequest: Equatable, Sendable {
    public var interfaces: [String]
    public var regexes: [String]
    public var canReach: IPv4Address?
    public var publicIP: IPv4Address?
    public var publicIPv6: IPv6Address?

    public init(
        interfaces: [String] = [],
        regexes: [String] = [],
        canReach: IPv4Address? = nil,
        publicIP: IPv4Address? = nil,
        publicIPv6: IPv6Address? = nil
    ) {
        self.interfaces = interfaces
        self.regexes = regexes
        self.canReach = canReach
        self.publicIP = publicIP
        self.publicIPv6 = publicIPv6
    }

    public init(_ options: DaemonOptions) {
        self.init(
            interfaces: options.interfaces,
            regexes: options.interfaceRegexes,
            canReach: options.interfaceCanReach,
            publicIP: options.publicIP,
            publicIPv6: options.publicIPv6
        )
    }
}

public struct InterfaceSelectionError: Error, Equatable, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// flanneld's LookupExtIface, without the kernel: every --iface in order (an IPv4 or IPv6 address
/// selects the interface holding it, anything else is a name; the first that exists wins), then
/// every --iface-regex (tested against all IPv4 addresses, then all IPv6 addresses, then all
/// names), then --iface-can-reach, then --public-ip's (else --public-ipv6's) own interface, and
/// with none of these the default route's interface. The IPv6 address is the one an --iface or
/// --iface-regex named, else the interface's first usable one, as flanneld takes it.
public enum InterfaceSelector {
    /// `reachSource` is the source address the kernel picks toward `request.canReach` (HostNetwork
    /// computes it; ignored without --iface-can-reach).
    public static func select(
        _ request: InterfaceRequest,
        interfaces: [HostInterface],
        routes: [HostRoute],
        reachSource: IPv4Address? = nil
    ) throws(InterfaceSelectionError) -> ExternalInterface {
        let (interface, address, reason, ipv6Named) = try choose(
            request,
            interfaces: interfaces,
            routes: routes,
            reachSource: reachSource
        )
        guard let address else {
            throw InterfaceSelectionError(
                "interface \(interface.name) (\(reason)) has no IPv4 address; give it one or choose another with --iface"
            )
        }
        guard interface.mtu > 0 else {
            throw InterfaceSelectionError(
                "interface \(interface.name) reports MTU 0; fix the interface or choose another with --iface"
            )
        }
        let others =
            interfaces
            .filter { $0.name != interface.name && $0.isUp && !$0.isLoopback && !$0.addresses.isEmpty }
            .map { "\($0.name) (\($0.preferredAddress!))" }
        var chosen = ExternalInterface(
            name: interface.name,
            index: interface.index,
            mtu: interface.mtu,
            address: address,
            publicIP: request.publicIP ?? address,
            reason: reason,
            others: others
        )
        chosen.ipv6Address = ipv6Named ?? interface.preferredIPv6Address
        chosen.publicIPv6 = request.publicIPv6 ?? chosen.ipv6Address
        return chosen
    }

    static func choose(
        _ request: InterfaceRequest,
        interfaces: [HostInterface],
        routes: [HostRoute],
        reachSource: IPv4Address?
    ) throws(InterfaceSelectionError) -> (HostInterface, IPv4Address?, String, ipv6: IPv6Address?) {
        func holding(_ address: IPv4Address) -> HostInterface? {
            interfaces.first { $0.addresses.contains(address) }
        }
        func holding(_ address: IPv6Address) -> HostInterface? {
            interfaces.first { $0.ipv6Addresses.contains(address) }
        }

        if !request.interfaces.isEmpty || !request.regexes.isEmpty {
            for value in request.interfaces {
                if let address = IPv4Address(value) {
                    if let interface = holding(address) {
                        return (interface, address, "--iface=\(value) is its address", nil)
                    }
                } else if let address = IPv6Address(value) {
                    if let interface = holding(address) {
                        return (interface, interface.preferredAddress, "--iface=\(value) is its IPv6 address", address)
                    }
                } else if let interface = interfaces.first(where: { $0.name == value }) {
                    return (interface, interface.preferredAddress, "--iface=\(value) names it", nil)
                }
            }
            for pattern in request.regexes {
                guard let regex = try? Regex(pattern) else {
                    throw InterfaceSelectionError("--iface-regex \"\(pattern)\" is not a regular expression; fix it")
                }
                // The interface's IPv6 address is the first the regex matches, as flanneld's dual stack.
                func matchingIPv6(_ interface: HostInterface) -> IPv6Address? {
                    interface.ipv6Addresses.first { HostInterface.isUnicast($0) && $0.description.contains(regex) }
                }
                for interface in interfaces {
                    for address in interface.addresses where address.description.contains(regex) {
                        return (
                            interface, address, "--iface-regex=\(pattern) matches its address \(address)",
                            matchingIPv6(interface)
                        )
                    }
                }
                for interface in interfaces {
                    if let address = matchingIPv6(interface) {
                        return (
                            interface, interface.preferredAddress,
                            "--iface-regex=\(pattern) matches its IPv6 address \(address)", address
                        )
                    }
                }
                for interface in interfaces where interface.name.contains(regex) {
                    return (interface, interface.preferredAddress, "--iface-regex=\(pattern) matches its name", nil)
                }
            }
            let asked = (request.interfaces.map { "--iface=\($0)" } + request.regexes.map { "--iface-regex=\($0)" })
                .joined(separator: " ")
            let present = interfaces.map(\.name).joined(separator: ", ")
            throw InterfaceSelectionError(
                "no interface matches \(asked); this host has \(present.isEmpty ? "no interfaces" : present)"
            )
        }

        if let target = request.canReach {
            guard let source = reachSource, let interface = holding(source) else {
                throw InterfaceSelectionError(
                    "--iface-can-reach=\(target): no local interface holds the source address toward it; check the routes or use --iface"
                )
            }
            return (interface, source, "--iface-can-reach=\(target) leaves through it from \(source)", nil)
        }

        if let publicIP = request.publicIP {
            // flanneld looks the interface up by the public IP when nothing else names one.
            guard let interface = holding(publicIP) else {
                throw InterfaceSelectionError(
                    "--public-ip=\(publicIP) is not an address of any local interface; behind NAT, also give --iface"
                )
            }
            return (interface, publicIP, "it holds --public-ip=\(publicIP)", nil)
        }
        if let publicIPv6 = request.publicIPv6 {
            guard let interface = holding(publicIPv6) else {
                throw InterfaceSelectionError(
                    "--public-ipv6=\(publicIPv6) is not an address of any local interface; behind NAT, also give --iface"
                )
            }
            return (interface, interface.preferredAddress, "it holds --public-ipv6=\(publicIPv6)", publicIPv6)
        }

        guard let route = routes.first(where: { $0.destination.length == 0 }) else {
            throw InterfaceSelectionError("no IPv4 default route to take the interface from; add one or give --iface")
        }
        guard let interface = interfaces.first(where: { $0.name == route.interface }) else {
            throw InterfaceSelectionError(
                "the default route's interface \(route.interface) is not in the interface list; give --iface"
            )
        }
        let via = route.gateway.map { " via \($0)" } ?? ""
        return (interface, interface.preferredAddress, "it carries the default route\(via)", nil)
    }
}
