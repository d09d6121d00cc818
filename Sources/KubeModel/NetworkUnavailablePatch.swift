import Foundation

/// flannel's CompleteLease under --set-node-network-unavailable (default true): the node's
/// NetworkUnavailable condition set to False, sent as a strategic merge patch of nodes/<name>/status.
/// Node conditions merge by `type` on the server, so Ready and the others stay.
public enum NetworkUnavailablePatch {
    public static let type = "NetworkUnavailable"
    public static let reason = "FlannelIsUp"
    /// flannel's own words; kept so `kubectl describe node` reads the same under weftd.
    public static let message = "Flannel is running on this node"

    public static func condition(at now: Date) -> NodeCondition {
        let time = RFC3339.format(secondsSince1970: Int64(now.timeIntervalSince1970.rounded(.down)))
        return NodeCondition(
            type: type,
            status: "False",
            lastHeartbeatTime: time,
            lastTransitionTime: time,
            reason: reason,
            message: message
        )
    }

    /// `{"status":{"conditions":[{"type":"NetworkUnavailable","status":"False","lastHeartbeatTime":...}]}}`
    /// byte for byte as flannel's json.Marshal writes it. The timestamps make it differ at every
    /// start, so it is always sent.
    public static func body(at now: Date) -> String {
        let c = condition(at: now)
        let fields = [
            ("type", c.type), ("status", c.status), ("lastHeartbeatTime", c.lastHeartbeatTime!),
            ("lastTransitionTime", c.lastTransitionTime!), ("reason", c.reason!), ("message", c.message!),
        ]
        let object = fields.map { "\(JSONText.quoted($0.0)):\(JSONText.quoted($0.1))" }.joined(separator: ",")
        return "{\"status\":{\"conditions\":[{\(object)}]}}"
    }
}

extension Array where Element == NodeCondition {
    /// The server's strategic merge of a conditions patch: an entry whose type is already there
    /// replaces that entry's given fields; a new type is appended; the rest stay as they were.
    public func mergedByType(_ patch: [NodeCondition]) -> [NodeCondition] {
        var result = self
        for entry in patch {
            guard let index = result.firstIndex(where: { $0.type == entry.type }) else {
                result.append(entry)
                continue
            }
            var merged = result[index]
            merged.status = entry.status
            merged.lastHeartbeatTime = entry.lastHeartbeatTime ?? merged.lastHeartbeatTime
            merged.lastTransitionTime = entry.lastTransitionTime ?? merged.lastTransitionTime
            merged.reason = entry.reason ?? merged.reason
            merged.message = entry.message ?? merged.message
            result[index] = merged
        }
        return result
    }
}
