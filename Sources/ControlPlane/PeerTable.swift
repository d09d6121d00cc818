import Addressing
import Config
import Etcd
import Routes

/// Why a record under `<prefix>/subnets/` does not become a route. Other records are unaffected.
public enum PeerSkipReason: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// The key is not `<a.b.c.d>-<len>` (flannel: "not a subnet").
    case badKey = "bad key"
    /// The value is not flannel's lease JSON.
    case badJSON = "bad JSON"
    /// The value has no PublicIP (or 0.0.0.0), so there is nowhere to send to.
    case missingPublicIP = "missing PublicIP"
    /// The subnet does not lie inside the Network.
    case outsideNetwork = "subnet outside Network"
    /// The subnet overlaps ours without being our own key.
    case overlapsLocal = "overlaps our subnet"
    /// A vxlan peer without a readable BackendData.VtepMAC.
    case badBackendData = "bad BackendData"
    /// A lease of another backend in a host-gw Network: flannel's hostgw ignores it ("Ignoring
    /// non-host-gw subnet"), since that host may not forward for its subnet from the underlay.
    case otherBackend = "BackendType is not host-gw"

    public var description: String { rawValue }
}

/// The leases under `<prefix>/subnets/` as last seen, by key, and the routes they make. Pure:
/// the watcher feeds it listings and watch events.
struct PeerTable {
    enum Record: Equatable {
        case peer(subnet: IPv4Prefix, nextHop: NextHop)
        case skipped(PeerSkipReason, subnet: IPv4Prefix?)
    }

    private(set) var records: [String: Record] = [:]
    let config: NetworkConfig

    init(config: NetworkConfig) {
        self.config = config
    }

    /// Applies one event; returns whether the table changed.
    @discardableResult
    mutating func apply(_ event: WatchEvent) -> Bool {
        switch event.kind {
        case .put:
            let record = Self.record(event.kv, config: config)
            defer { records[event.kv.key] = record }
            return records[event.kv.key] != record
        case .delete:
            return records.removeValue(forKey: event.kv.key) != nil
        }
    }

    /// Replaces everything with a fresh listing; returns how many keys were added, removed or changed.
    @discardableResult
    mutating func replace(with kvs: [KeyValue]) -> (added: Int, removed: Int, changed: Int) {
        var fresh: [String: Record] = [:]
        for kv in kvs { fresh[kv.key] = Self.record(kv, config: config) }
        var added = 0
        var changed = 0
        for (key, record) in fresh {
            if let old = records[key] {
                if old != record { changed += 1 }
            } else {
                added += 1
            }
        }
        let removed = records.keys.count { fresh[$0] == nil }
        records = fresh
        return (added, removed, changed)
    }

    /// The routes to every valid peer: our own subnet is left out, and a record overlapping it
    /// is skipped. Also returns how many records each reason currently skips.
    func routes(localSubnet: IPv4Prefix?) -> (routes: [Route], skipped: [PeerSkipReason: Int]) {
        var routes: [Route] = []
        var skipped: [PeerSkipReason: Int] = [:]
        for record in records.values {
            switch record {
            case .skipped(let reason, _):
                skipped[reason, default: 0] += 1
            case .peer(let subnet, let nextHop):
                if subnet == localSubnet { continue }
                if let localSubnet, subnet.overlaps(localSubnet) {
                    skipped[.overlapsLocal, default: 0] += 1
                    continue
                }
                routes.append(Route(subnet: subnet, nextHop: nextHop))
            }
        }
        // A fixed order, so equal tables compare equal and the snapshot is built deterministically.
        routes.sort { ($0.subnet.network, $0.subnet.length) < ($1.subnet.network, $1.subnet.length) }
        return (routes, skipped)
    }

    static func record(_ kv: KeyValue, config: NetworkConfig) -> Record {
        guard let key = LeaseKey(parsing: kv.key) else { return .skipped(.badKey, subnet: nil) }
        let subnet = key.subnet
        guard let attributes = try? LeaseAttributes.parse(kv.value) else { return .skipped(.badJSON, subnet: subnet) }
        let publicIP = attributes.publicIP
        guard publicIP != .any else { return .skipped(.missingPublicIP, subnet: subnet) }
        guard config.network.contains(subnet) else { return .skipped(.outsideNetwork, subnet: subnet) }
        let port = config.backend.effectivePort
        switch config.backend.kind {
        case .udp:
            return .peer(subnet: subnet, nextHop: NextHop(publicIP: publicIP, port: port, backend: .udp))
        case .hostGateway:
            guard attributes.backendType == Backend.hostGateway.rawValue else { return .skipped(.otherBackend, subnet: subnet) }
            return .peer(subnet: subnet, nextHop: NextHop(publicIP: publicIP, port: 0, backend: .hostGateway))
        case .vxlan:
            guard let data = try? attributes.vxlanData() else { return .skipped(.badBackendData, subnet: subnet) }
            return .peer(subnet: subnet, nextHop: NextHop(publicIP: publicIP, port: port, vtepMAC: data.vtepMAC, backend: .vxlan))
        }
    }
}
