import Foundation

/// Which node holds a lease, beside flannel's PublicIP: the value of `EtcdPath.owner`, as JSON
/// ({"Hostname":…,"NodeID":…}). The node ID is /etc/machine-id by default (weftd's --node-id).
public struct NodeOwner: Sendable, Equatable, Codable {
    public var nodeID: String
    public var hostname: String

    public init(nodeID: String, hostname: String) {
        self.nodeID = nodeID
        self.hostname = hostname
    }

    enum CodingKeys: String, CodingKey {
        case nodeID = "NodeID"
        case hostname = "Hostname"
    }

    /// What is written to the owner key.
    public var record: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    /// A record read back; nil when it is not one (treated as no owner).
    public init?(record: String) {
        guard let owner = try? JSONDecoder().decode(NodeOwner.self, from: Data(record.utf8)), !owner.nodeID.isEmpty
        else { return nil }
        self = owner
    }
}
