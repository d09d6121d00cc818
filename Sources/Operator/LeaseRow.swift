import Addressing
import Config

/// One key under `<prefix>/subnets/` as read from etcd, with what etcd says about its lease.
public struct LeaseRecord: Equatable, Sendable {
    public enum Expiry: Equatable, Sendable {
        /// No etcd lease: flannel's reservation, kept until deleted.
        case never
        /// Seconds left on the etcd lease.
        case seconds(Int64)
        /// The key names an etcd lease that no longer exists (it is about to vanish).
        case expired
        /// The lease's time-to-live could not be read.
        case unknown(String)
    }

    public var key: String
    public var value: String
    public var expiry: Expiry

    public init(key: String, value: String, expiry: Expiry) {
        self.key = key
        self.value = value
        self.expiry = expiry
    }
}

/// A row of `weft leases`: the lease read with Config's LeaseKey and LeaseAttributes, as weftd
/// reads its peers. A record they refuse is a row with a problem, not a failure of the listing.
public struct LeaseRow: Equatable, Sendable, Encodable {
    /// "10.244.3.0/24", or the key's last element when it is not a subnet key.
    public var subnet: String
    /// The IPv6 half of a dual-stack key, "fc00:0:0:3::/64".
    public var ipv6Subnet: String?
    public var publicIP: String?
    /// The lease's PublicIPv6, as flannel wrote it.
    public var publicIPv6: String?
    /// BackendV6Data's VtepMAC (a dual-stack vxlan lease).
    public var vtepMACv6: String?
    /// "udp" for flannel's udp leases, which carry no BackendType.
    public var backend: String?
    public var vtepMAC: String?
    /// Seconds left on the etcd lease; nil for a reservation or when unknown.
    public var expiresInSeconds: Int64?
    /// "23h59m58s", "never (reservation)", "expired", "unknown".
    public var expiresIn: String
    /// The lease subnet.env names: this host's.
    public var thisHost: Bool
    /// Why the record is malformed; nil for a good lease.
    public var problem: String?

    public static let headers = headers(ipv6: false)

    /// With `ipv6` (some lease has an IPv6 half), IPV6 SUBNET and PUBLIC IPV6 follow their IPv4 columns.
    public static func headers(ipv6: Bool) -> [String] {
        let families = ipv6 ? ["SUBNET", "IPV6 SUBNET", "PUBLIC IP", "PUBLIC IPV6"] : ["SUBNET", "PUBLIC IP"]
        return families + ["BACKEND", "VTEP MAC", "EXPIRES IN", "THIS HOST", "PROBLEM"]
    }

    public init(_ record: LeaseRecord, ownSubnet: IPv4Prefix?) {
        let name = String(record.key.split(separator: "/").last ?? Substring(record.key))
        let key = LeaseKey(parsing: record.key)
        // An IPv6-only lease has no IPv4 subnet: its IPv6 one names it in the SUBNET column too.
        subnet = key.map(\.label) ?? name
        ipv6Subnet = key?.ipv6Subnet?.description
        thisHost = ownSubnet != nil && key?.subnet == ownSubnet
        switch record.expiry {
        case .never: expiresIn = "never (reservation)"
        case .seconds(let seconds):
            expiresInSeconds = seconds
            expiresIn = Self.describe(seconds: seconds)
        case .expired: expiresIn = "expired"
        case .unknown: expiresIn = "unknown"
        }
        guard key != nil else {
            problem = "not a subnet key (want e.g. 10.244.34.0-24)"
            return
        }
        do {
            let attributes = try LeaseAttributes.parse(record.value)
            publicIP = attributes.publicIP.description
            publicIPv6 = attributes.publicIPv6
            backend = attributes.backendType.isEmpty ? "udp" : attributes.backendType
            if attributes.backendType.lowercased() == "vxlan" {
                vtepMAC = try attributes.vxlanData().vtepMAC.description
                if attributes.backendV6Data != nil { vtepMACv6 = try attributes.vxlanV6Data().vtepMAC.description }
            }
        } catch {
            problem = error.problem
        }
        if problem == nil, case .unknown(let reason) = record.expiry {
            problem = "time-to-live unknown: \(reason)"
        }
    }

    /// The table row, "-" for what a lease does not have.
    public var cells: [String] { cells(ipv6: false) }

    /// The row under `headers(ipv6:)`; a dual-stack vxlan lease's VTEP MAC cell names both devices' MACs.
    public func cells(ipv6: Bool) -> [String] {
        let families =
            ipv6 ? [subnet, ipv6Subnet ?? "-", publicIP ?? "-", publicIPv6 ?? "-"] : [subnet, publicIP ?? "-"]
        let mac = [vtepMAC, vtepMACv6].compactMap { $0 }.joined(separator: " / ")
        return families + [
            backend ?? "-", mac.isEmpty ? "-" : mac, expiresIn, thisHost ? "yes" : "",
            problem.map { "malformed: \($0)" } ?? "",
        ]
    }

    /// Rows sorted by subnet (keys that are not subnets last, by name).
    public static func rows(_ records: [LeaseRecord], ownSubnet: IPv4Prefix?) -> [LeaseRow] {
        records.map { (LeaseKey(parsing: $0.key)?.subnet, LeaseRow($0, ownSubnet: ownSubnet)) }
            .sorted { a, b in
                switch (a.0, b.0) {
                case let (x?, y?): return x.network < y.network || (x.network == y.network && x.length < y.length)
                case (.some, nil): return true
                case (nil, .some): return false
                case (nil, nil): return a.1.subnet < b.1.subnet
                }
            }
            .map(\.1)
    }

    /// Largest unit first, zero units left out: 86399 → "23h59m59s", 3601 → "1h1s", 0 → "0s".
    public static func describe(seconds: Int64) -> String {
        guard seconds > 0 else { return "0s" }
        let units: [(Int64, String)] = [(86400, "d"), (3600, "h"), (60, "m"), (1, "s")]
        var left = seconds
        var text = ""
        for (size, name) in units where left >= size {
            text += "\(left / size)\(name)"
            left %= size
        }
        return text
    }
}
