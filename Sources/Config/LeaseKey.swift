import Addressing

/// The etcd key of a lease, `<prefix>/subnets/10.244.34.0-24` or, for a dual-stack lease,
/// `<prefix>/subnets/10.244.34.0-24&fc00:0:0:5::-64`, and the other keys flannel derives from
/// its --etcd-prefix. An IPv6-only lease is written as flannel's MakeSubnetKey writes one with an
/// empty IPv4 half, `0.0.0.0-0&fc00:0:0:5::-64`, which flannel's pattern reads too.
public struct LeaseKey: Hashable, Sendable {
    /// The IPv4 subnet; nil for an IPv6-only lease ("0.0.0.0-0&...").
    public var subnet: IPv4Prefix?
    /// The IPv6 subnet of a dual-stack (or IPv6-only) lease; nil for an IPv4 lease.
    public var ipv6Subnet: IPv6Prefix?

    /// At least one of the halves.
    public init(subnet: IPv4Prefix?, ipv6Subnet: IPv6Prefix? = nil) {
        precondition(subnet != nil || ipv6Subnet != nil, "a lease key names at least one subnet")
        self.subnet = subnet
        self.ipv6Subnet = ipv6Subnet
    }

    /// The IPv4 half flannel writes for an IPv6-only lease.
    static let emptyIPv4 = IPv4Prefix(IPv4Address(0), length: 0)

    /// Reads a whole key or just its last element. flannel's pattern is
    /// `(\d+\.\d+.\d+.\d+)-(\d+)(?:&([a-f\d:]+)-(\d+))?$` with the IPv4 length read as a 5-bit
    /// number (0...31) and the IPv6 one as a 7-bit number (0...127, any number of digits);
    /// anything else is "not a subnet" and skipped. Host bits are masked off both halves.
    public init?(parsing key: some StringProtocol) {
        let key = Substring(key)
        let name = key.split(separator: "/", omittingEmptySubsequences: false).last ?? key
        let halves = name.split(separator: "&", maxSplits: 1, omittingEmptySubsequences: false)
        guard let subnet = IPv4Prefix(leaseKey: halves[0]), subnet.length <= 31 else { return nil }
        // 0.0.0.0/0 with an IPv6 half is an IPv6-only lease; alone it stays an IPv4 key no
        // config fits (no Network covers every address).
        self.subnet = halves.count == 2 && subnet == Self.emptyIPv4 ? nil : subnet
        ipv6Subnet = nil
        if halves.count == 2 {
            let v6 = halves[1]
            guard let dash = v6.lastIndex(of: "-") else { return nil }
            let address = v6[..<dash]
            let length = v6[v6.index(after: dash)...]
            // The pattern's class is lowercase hex and colons: no dots, no "%zone", no capitals.
            let hexOrColon: (UInt8) -> Bool = {
                (0x30...0x39).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0)
                    || $0 == UInt8(ascii: ":")
            }
            guard !address.isEmpty, address.utf8.allSatisfy(hexOrColon),
                !length.isEmpty, length.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
                let bits = Int(length), bits <= 127,
                let network = IPv6Address(address)
            else { return nil }
            ipv6Subnet = IPv6Prefix(network, length: bits)
        }
    }

    /// The last element of the key as flanneld writes it: "10.244.34.0-24", with
    /// "&fc00:0:0:5::-64" appended for a lease that has an IPv6 subnet ("0.0.0.0-0&..." without IPv4).
    public var name: String {
        let ipv4 = (subnet ?? Self.emptyIPv4).leaseKey
        guard let ipv6Subnet else { return ipv4 }
        return "\(ipv4)&\(FlannelIPv6Text.prefix(ipv6Subnet, separator: "-"))"
    }

    /// "10.244.3.0/24", "10.244.3.0/24 and fc00:0:0:3::/64" or "fc00:0:0:3::/64", for log lines.
    public var subnets: String {
        [subnet?.description, ipv6Subnet?.description].compactMap { $0 }.joined(separator: " and ")
    }

    /// The subnet that names the lease in log lines: the IPv4 one, or the IPv6 one of an IPv6-only lease.
    public var label: String { subnet?.description ?? ipv6Subnet?.description ?? "" }

    /// `<prefix>/subnets/<name>`, joined and cleaned as Go's path.Join does.
    public func path(prefix: String) -> String {
        EtcdPath.join(prefix, "subnets", name)
    }
}

/// flannel builds every etcd key with Go's path.Join, which also cleans the prefix:
/// "/coreos.com/network/" and "/coreos.com//network" both give "/coreos.com/network/config".
public enum EtcdPath {
    public static let defaultPrefix = "/coreos.com/network"

    /// `<prefix>/config`, where the network config JSON lives.
    public static func config(prefix: String) -> String { join(prefix, "config") }

    /// `<prefix>/subnets`: flannel lists and watches with this as a key prefix (no trailing "/").
    public static func subnets(prefix: String) -> String { join(prefix, "subnets") }

    /// `<prefix>/weft/owners/<a.b.c.d-len>`: which node (Weft's node ID) holds a subnet's lease,
    /// attached to the same etcd lease. Outside `subnets/`, so flanneld never sees it, and the
    /// lease JSON stays flannel's byte for byte; a lease without it (flanneld's) has no owner.
    public static func owner(prefix: String, subnet: LeaseKey) -> String { join(prefix, "weft", "owners", subnet.name) }

    /// Go's path.Join: join with "/", then Clean (drop empty and "." elements, resolve "..").
    public static func join(_ elements: String...) -> String {
        let nonEmpty = elements.filter { !$0.isEmpty }
        guard !nonEmpty.isEmpty else { return "" }
        let joined = nonEmpty.joined(separator: "/")
        let rooted = joined.hasPrefix("/")
        var parts: [Substring] = []
        for element in joined.split(separator: "/") where element != "." {
            if element == ".." {
                if let last = parts.last, last != ".." {
                    parts.removeLast()
                } else if !rooted {
                    parts.append(element)
                }
            } else {
                parts.append(element)
            }
        }
        let body = parts.joined(separator: "/")
        if rooted { return "/" + body }
        return body.isEmpty ? "." : body
    }
}
