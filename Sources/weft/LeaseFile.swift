import Addressing
import Config
import Foundation

/// A ROUTES.json file for `weft replay`: a JSON object mapping flannel lease keys to lease values
/// exactly as they sit in etcd under `<prefix>/subnets/`, e.g.
/// `{"10.244.2.0-24": {"PublicIP":"198.18.0.2","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:02"}}}`;
/// a dual-stack lease's key names its IPv6 subnet too (`10.244.2.0-24&fc00:0:0:2::-64`).
/// Keys go through Config's `LeaseKey` and values through `LeaseAttributes`, the same readers the
/// control plane uses on etcd's answers.
struct LeaseFile {
    struct Lease: Equatable {
        var subnet: IPv4Prefix
        /// The IPv6 half of a dual-stack lease's key; nil for an IPv4 lease.
        var ipv6Subnet: IPv6Prefix? = nil
        var attributes: LeaseAttributes
        /// BackendData of a vxlan lease; nil for other backends.
        var vxlan: VXLANLeaseData?

        var publicIP: IPv4Address { attributes.publicIP }
        var isVXLAN: Bool { attributes.backendType.lowercased() == "vxlan" }
    }

    /// Sorted by subnet, so output and errors do not depend on JSON key order.
    var leases: [Lease]

    struct Failure: Error, CustomStringConvertible {
        var path: String
        var reason: String
        var description: String { "cannot read routes \(path): \(reason)" }
    }

    init(leases: [Lease]) { self.leases = leases }

    init(path: String) throws(Failure) {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw Failure(path: path, reason: (error as NSError).localizedFailureReason ?? error.localizedDescription)
        }
        try self.init(json: data, path: path)
    }

    init(json: Data, path: String) throws(Failure) {
        // Foundation only splits the object into its members; each value is read by Config.
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: json, options: [.fragmentsAllowed])
        } catch {
            throw Failure(path: path, reason: "not valid JSON (want an object of lease key → lease value)")
        }
        guard let members = object as? [String: Any] else {
            throw Failure(path: path, reason: "the top level must be a JSON object of lease key → lease value")
        }
        var leases: [Lease] = []
        for (key, value) in members {
            guard let leaseKey = LeaseKey(parsing: key) else {
                throw Failure(
                    path: path,
                    reason: "key \"\(key)\" is not a flannel subnet key (want e.g. 10.244.34.0-24)"
                )
            }
            // The engine replays carry the IPv4 overlay, as the engine does.
            guard let subnet = leaseKey.subnet else {
                throw Failure(
                    path: path,
                    reason:
                        "key \"\(key)\" is an IPv6-only lease; replay carries the IPv4 overlay, give keys with an IPv4 subnet"
                )
            }
            do {
                let text = try JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed])
                let attributes = try LeaseAttributes.parse([UInt8](text))
                var lease = Lease(
                    subnet: subnet,
                    ipv6Subnet: leaseKey.ipv6Subnet,
                    attributes: attributes,
                    vxlan: nil
                )
                if lease.isVXLAN { lease.vxlan = try attributes.vxlanData() }
                leases.append(lease)
            } catch let error as ConfigError {
                throw Failure(path: path, reason: "\(key): \(error.problem)")
            } catch {
                throw Failure(path: path, reason: "\(key): \(error)")
            }
        }
        self.leases = leases.sorted { $0.subnet.network < $1.subnet.network }
    }

    /// The lease whose PublicIP is `address`: our own, when it is the host's public IP.
    func lease(publicIP address: IPv4Address) -> Lease? {
        leases.first { $0.publicIP == address }
    }
}
