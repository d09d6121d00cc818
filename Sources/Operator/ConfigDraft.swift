/// A network config from `weft config set --network ... --backend ...` flags, so a common config
/// needs no hand-written JSON. Only what was given is written; flannel's defaults fill the rest,
/// and the text goes through the same validation as typed JSON.
public struct ConfigDraft: Equatable, Sendable {
    public var network: String
    public var subnetLength: Int?
    public var backend: String?
    public var vni: Int?
    public var port: Int?

    public init(network: String, subnetLength: Int? = nil, backend: String? = nil, vni: Int? = nil, port: Int? = nil) {
        self.network = network
        self.subnetLength = subnetLength
        self.backend = backend
        self.vni = vni
        self.port = port
    }

    /// Compact JSON in flannel's field order, e.g. {"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}.
    public var json: String {
        var text = "{\"Network\":\(Self.quoted(network))"
        if let subnetLength { text += ",\"SubnetLen\":\(subnetLength)" }
        if backend != nil || vni != nil || port != nil {
            var members: [String] = []
            // A VNI implies vxlan, the one backend that has one; a Port alone leaves Type out, and the
            // parser then asks for it rather than guessing.
            if let type = backend ?? (vni != nil ? "vxlan" : nil) { members.append("\"Type\":\(Self.quoted(type))") }
            if let vni { members.append("\"VNI\":\(vni)") }
            if let port { members.append("\"Port\":\(port)") }
            text += ",\"Backend\":{\(members.joined(separator: ","))}"
        }
        return text + "}"
    }

    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20:
                out +=
                    "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                    + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
