import Config
import Foundation

/// The network config as flannel will use it: every field with the value in force, and whether
/// that value was written or is flannel's default, so `weft config get` shows what an operator
/// would otherwise have to work out (SubnetMin/Max, the backend's port).
public struct ConfigSummary: Equatable, Sendable {
    public struct Field: Equatable, Sendable, Encodable {
        /// As written in the JSON: "SubnetLen", "Backend.VNI".
        public var name: String
        public var value: String
        /// True when the JSON leaves the field out (or zero) and flannel's default applies.
        public var isDefault: Bool

        public init(name: String, value: String, isDefault: Bool) {
            self.name = name
            self.value = value
            self.isDefault = isDefault
        }
    }

    public var fields: [Field]

    /// `raw` is the JSON `config` was parsed from; it says which fields were written.
    public init(_ config: NetworkConfig, raw: String) {
        let written = WrittenFields(raw)
        var fields: [Field] = []
        func add(_ name: String, _ value: String, written isWritten: Bool) {
            fields.append(Field(name: name, value: value, isDefault: !isWritten))
        }
        if let ipv4 = config.ipv4 {
            add("Network", ipv4.network.description, written: true)
            add("SubnetLen", String(ipv4.subnetLength), written: written.has("SubnetLen", unlessZero: true))
            add("SubnetMin", ipv4.subnetMin.description, written: written.has("SubnetMin", unlessZero: true))
            add("SubnetMax", ipv4.subnetMax.description, written: written.has("SubnetMax", unlessZero: true))
        } else {
            add("EnableIPv4", "false", written: true)
        }
        if let ipv6 = config.ipv6 {
            add("EnableIPv6", "true", written: true)
            add("IPv6Network", ipv6.network.description, written: true)
            add("IPv6SubnetLen", String(ipv6.subnetLength), written: written.has("IPv6SubnetLen", unlessZero: true))
            add("IPv6SubnetMin", ipv6.subnetMin.description, written: written.has("IPv6SubnetMin"))
            add("IPv6SubnetMax", ipv6.subnetMax.description, written: written.has("IPv6SubnetMax"))
        }
        let backend = config.backend
        add("Backend.Type", backend.kind.rawValue, written: written.has("Backend", "Type"))
        switch backend.kind {
        case .vxlan:
            add("Backend.VNI", String(backend.vni), written: written.has("Backend", "VNI"))
            add(
                "Backend.Port",
                String(backend.effectivePort),
                written: written.has("Backend", "Port", unlessZero: true)
            )
            // Absent means "the interface's MTU", which only the host knows.
            if let mtu = backend.underlayMTU { add("Backend.MTU", String(mtu), written: true) }
            if backend.directRouting { add("Backend.DirectRouting", "true", written: true) }
        case .udp:
            add("Backend.Port", String(backend.effectivePort), written: written.has("Backend", "Port"))
        case .hostGateway:
            break
        }
        for (name, value) in backend.otherKeys.sorted(by: { $0.key < $1.key }) {
            add("Backend.\(name)", value, written: true)
        }
        if config.enableNFTables { add("EnableNFTables", "true", written: true) }
        self.fields = fields
    }

    public subscript(name: String) -> Field? { fields.first { $0.name == name } }

    /// One field whose value differs between two summaries; nil on a side that lacks it.
    public struct Change: Equatable, Sendable {
        public var name: String
        public var old: String?
        public var new: String?

        /// "SubnetLen: 24 → 26", "Backend.VNI: (none) → 1".
        public var line: String { "\(name): \(old ?? "(none)") → \(new ?? "(none)")" }
    }

    /// Fields in force that differ, in `new`'s order, then fields only `old` had.
    public static func changes(from old: ConfigSummary?, to new: ConfigSummary) -> [Change] {
        let before = old?.fields ?? []
        var changes: [Change] = []
        for field in new.fields {
            let previous = before.first { $0.name == field.name }?.value
            if previous != field.value { changes.append(Change(name: field.name, old: previous, new: field.value)) }
        }
        for field in before where new[field.name] == nil {
            changes.append(Change(name: field.name, old: field.value, new: nil))
        }
        return changes
    }
}

/// Which members the operator's JSON names, as flannel matches them (any case, last one wins).
struct WrittenFields {
    private let top: [String: Any]
    private let backend: [String: Any]

    init(_ raw: String) {
        let object = (try? JSONSerialization.jsonObject(with: Data(raw.utf8))) as? [String: Any] ?? [:]
        top = Self.lowercased(object)
        backend = Self.lowercased(top["backend"] as? [String: Any] ?? [:])
    }

    private static func lowercased(_ object: [String: Any]) -> [String: Any] {
        Dictionary(object.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { _, last in last })
    }

    /// `unlessZero`: flannel reads 0 and "0.0.0.0" as unset, so they count as defaulted.
    func has(_ name: String, unlessZero: Bool = false) -> Bool {
        Self.present(top[name.lowercased()], unlessZero: unlessZero)
    }

    func has(_ object: String, _ name: String, unlessZero: Bool = false) -> Bool {
        Self.present(backend[name.lowercased()], unlessZero: unlessZero)
    }

    private static func present(_ value: Any?, unlessZero: Bool) -> Bool {
        guard let value, !(value is NSNull) else { return false }
        guard unlessZero else { return true }
        if let number = value as? NSNumber { return number.intValue != 0 }
        if let text = value as? String { return text != "0.0.0.0" && !text.isEmpty }
        return true
    }
}
