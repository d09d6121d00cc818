import Addressing

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
