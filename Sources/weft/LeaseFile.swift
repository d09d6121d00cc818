import Addressing
import Foundation

/// A ROUTES.json file for `weft replay`: a JSON object mapping flannel lease keys to lease values
/// exactly as they sit in etcd under `<prefix>/subnets/`, e.g.
/// `{"10.244.2.0-24": {"PublicIP":"198.18.0.2","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:02"}}}`.
///
/// A minimal decoder of its own for now: the Config module will provide `LeaseAttributes` for the
/// lease value, and this file should then decode through it.
struct LeaseFile {
    struct Lease: Equatable {
        var subnet: IPv4Prefix
        var publicIP: IPv4Address
        /// "udp", "vxlan", "host-gw"… as written; nil when the lease has no BackendType.
        var backendType: String?
        var vni: UInt32?
        var vtepMAC: MACAddress?
    }

    /// Sorted by subnet, so output and errors do not depend on JSON key order.
    var leases: [Lease]

    struct Failure: Error, CustomStringConvertible {
        var path: String
        var reason: String
        var description: String { "cannot read routes \(path): \(reason)" }
    }

    private struct Value: Decodable {
        var PublicIP: IPv4Address
        var BackendType: String?
        var BackendData: BackendData?
    }

    private struct BackendData: Decodable {
        var VNI: Int?
        var VtepMAC: MACAddress?
    }

    init(leases: [Lease]) { self.leases = leases }

    init(path: String) throws(Failure) {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw Failure(path: path, reason: (error as NSError).localizedFailureReason ?? "\(error.localizedDescription)")
        }
        try self.init(json: data, path: path)
    }

    init(json: Data, path: String) throws(Failure) {
        let values: [String: Value]
        do {
            values = try JSONDecoder().decode([String: Value].self, from: json)
        } catch let error as DecodingError {
            throw Failure(path: path, reason: LeaseFile.describe(error))
        } catch {
            throw Failure(path: path, reason: "\(error)")
        }
        var leases: [Lease] = []
        for (key, value) in values {
            guard let subnet = IPv4Prefix(leaseKey: key) else {
                throw Failure(path: path, reason: "key \"\(key)\" is not a flannel subnet key (want e.g. 10.244.34.0-24)")
            }
            var vni: UInt32?
            if let number = value.BackendData?.VNI {
                guard (0...0xFF_FFFF).contains(number) else {
                    throw Failure(path: path, reason: "\(key): VNI \(number) does not fit in 24 bits (0...16777215)")
                }
                vni = UInt32(number)
            }
            leases.append(Lease(subnet: subnet, publicIP: value.PublicIP, backendType: value.BackendType,
                                vni: vni, vtepMAC: value.BackendData?.VtepMAC))
        }
        self.leases = leases.sorted { $0.subnet.network < $1.subnet.network }
    }

    /// The lease whose PublicIP is `address`: our own, when it is the host's public IP.
    func lease(publicIP address: IPv4Address) -> Lease? {
        leases.first { $0.publicIP == address }
    }

    /// One line: where in the JSON and what was wrong.
    private static func describe(_ error: DecodingError) -> String {
        func at(_ path: [any CodingKey]) -> String {
            path.isEmpty ? "" : path.map(\.stringValue).joined(separator: ": ") + ": "
        }
        switch error {
        case let .dataCorrupted(context):
            if context.codingPath.isEmpty { return "not valid JSON (want an object of lease key → lease value)" }
            return at(context.codingPath) + context.debugDescription
        case let .keyNotFound(key, context):
            return at(context.codingPath) + "missing \"\(key.stringValue)\""
        case let .typeMismatch(_, context) where context.codingPath.isEmpty:
            return "the top level must be a JSON object of lease key → lease value"
        case let .typeMismatch(_, context), let .valueNotFound(_, context):
            return at(context.codingPath) + context.debugDescription
        @unknown default:
            return "\(error)"
        }
    }
}
