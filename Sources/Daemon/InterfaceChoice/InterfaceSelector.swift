import Addressing

/// flanneld's LookupExtIface, without the kernel: every --iface in order (an IPv4 or IPv6 address
/// selects the interface holding it, anything else is a name; the first that exists wins), then
/// every --iface-regex (tested against all IPv4 addresses, then all IPv6 addresses, then all
/// names), then --iface-can-reach (an IPv6 target names the IPv6 address too), then --public-ip's (else --public-ipv6's) own interface, and
/// with none of these the default route's interface. The IPv6 address is the one an --iface or
/// --iface-regex named, else the interface's first usable one, as flanneld takes it.
public enum InterfaceSelector {
    /// `reachSource` is the source address the kernel picks toward `request.canReach`, and
    /// `reachSourceIPv6` toward `request.canReachIPv6` (HostNetwork computes them; ignored without
    /// --iface-can-reach).
    public static func select(
        _ request: InterfaceRequest,
        interfaces: [HostInterface],
        routes: [HostRoute],
        reachSource: IPv4Address? = nil,
        reachSourceIPv6: IPv6Address? = nil
    ) throws(InterfaceSelectionError) -> ExternalInterface {
        let (interface, address, reason, ipv6Named) = try choose(
            request,
            interfaces: interfaces,
            routes: routes,
            reachSource: reachSource,
            reachSourceIPv6: reachSourceIPv6
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
        reachSource: IPv4Address?,
        reachSourceIPv6: IPv6Address?
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

        func unreachable(_ target: any IPAddress) -> InterfaceSelectionError {
            InterfaceSelectionError(
                "--iface-can-reach=\(target): no local interface holds the source address toward it; check the routes or use --iface"
            )
        }
        if let target = request.canReach {
            guard let source = reachSource, let interface = holding(source) else { throw unreachable(target) }
            return (interface, source, "--iface-can-reach=\(target) leaves through it from \(source)", nil)
        }
        if let target = request.canReachIPv6 {
            guard let source = reachSourceIPv6, let interface = holding(source) else { throw unreachable(target) }
            return (
                interface, interface.preferredAddress, "--iface-can-reach=\(target) leaves through it from \(source)",
                source
            )
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
