import Config
import ControlPlane
import Etcd

extension PeerRecord {
    /// A key and value under `<prefix>/subnets/`: the key names the subnet, the value is flannel's lease JSON.
    init(_ kv: KeyValue) {
        guard let key = LeaseKey(parsing: kv.key) else {
            self = .unreadable(.badKey, subnet: nil)
            return
        }
        guard let attributes = try? LeaseAttributes.parse(kv.value) else {
            self = .unreadable(.badJSON, subnet: key.subnet)
            return
        }
        self = .lease(subnet: key.subnet, attributes: attributes, ipv6Subnet: key.ipv6Subnet)
    }
}

extension PeerTable {
    /// Applies one watch event; returns whether the table changed.
    @discardableResult
    mutating func apply(_ event: WatchEvent) -> Bool {
        switch event.kind {
        case .put: put(event.kv.key, PeerRecord(event.kv))
        case .delete: remove(event.kv.key)
        }
    }

    /// Replaces everything with a listing of `<prefix>/subnets/`.
    @discardableResult
    mutating func replace(with kvs: [KeyValue]) -> (added: Int, removed: Int, changed: Int) {
        replace(with: Dictionary(kvs.map { ($0.key, PeerRecord($0)) }, uniquingKeysWith: { _, last in last }))
    }
}
