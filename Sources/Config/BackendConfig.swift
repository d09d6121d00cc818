import Routes

/// The "Backend" object of flannel's network config, for the backends Weft implements.
public struct BackendConfig: Equatable, Sendable {
    /// The backend a lease's "BackendType" and a route's next hop name: one enum for both.
    public typealias Kind = Backend

    public var kind: Kind
    /// vxlan only (flannel's default 1); 0 for the other backends.
    public var vni: UInt32
    /// As configured. vxlan: 0 means the kernel default 8472; udp: default 8285; host-gw: 0.
    public var port: UInt16
    /// vxlan only: Backend.MTU, the UNDERLAY MTU to use instead of the interface's (flannel
    /// subtracts the overhead from it). nil when absent or 0.
    public var underlayMTU: Int?
    /// vxlan only: Backend.DirectRouting, flannel's host-gw routes for peers whose PublicIP is
    /// directly connected, VXLAN for the rest.
    public var directRouting: Bool
    /// Members Weft does not interpret (e.g. Windows-only MacPrefix), as raw compact JSON by the
    /// member name as written, so nothing the operator wrote is silently lost from view.
    public var otherKeys: [String: String]

    public static let defaultVXLANPort: UInt16 = 8472
    public static let defaultUDPPort: UInt16 = 8285
    public static let defaultVNI: UInt32 = 1
    public static let maximumVNI: UInt32 = 0xFF_FFFF

    public init(
        kind: Kind,
        vni: UInt32 = 0,
        port: UInt16 = 0,
        underlayMTU: Int? = nil,
        directRouting: Bool = false,
        otherKeys: [String: String] = [:]
    ) {
        self.kind = kind
        self.vni = vni
        self.port = port
        self.underlayMTU = underlayMTU
        self.directRouting = directRouting
        self.otherKeys = otherKeys
    }

    /// What flannel uses when the config has no Backend at all (its code, not its docs, says udp).
    public static let udp = BackendConfig(kind: .udp, port: defaultUDPPort)
    public static let vxlan = BackendConfig(kind: .vxlan, vni: defaultVNI)
    public static let hostGateway = BackendConfig(kind: .hostGateway)

    /// The UDP port actually used on the wire (0 for host-gw, which has no tunnel).
    public var effectivePort: UInt16 {
        switch kind {
        case .vxlan: port == 0 ? BackendConfig.defaultVXLANPort : port
        case .udp: port
        case .hostGateway: 0
        }
    }

    /// Bytes each backend adds in front of an inner IPv4 packet: udp 20 IP + 8 UDP; vxlan
    /// 20 + 8 + 8 VXLAN + 14 inner Ethernet; host-gw routes natively.
    public var overhead: Int {
        switch kind {
        case .udp: 28
        case .vxlan: 50
        case .hostGateway: 0
        }
    }

    /// The overlay (TUN / flannel.1 / FLANNEL_MTU) MTU for an external interface MTU. Only vxlan
    /// honours Backend.MTU; flannel's udp backend ignores it.
    public func overlayMTU(underlayMTU interfaceMTU: Int) -> Int {
        let underlay = kind == .vxlan ? (underlayMTU ?? interfaceMTU) : interfaceMTU
        return underlay - overhead
    }

    /// flannel's other backend types, refused by name so the operator knows it is a Weft limit.
    static let flannelOnlyTypes: Set<String> = ["wireguard", "ipip", "ipsec", "alloc", "extension", "tencent-vpc"]
    static let supportedList = "udp, vxlan, host-gw"
}

extension BackendConfig {
    /// Reads the Backend object. `nil` (no Backend member) gives udp, as flannel's ParseConfig does.
    static func decode(_ value: JSONValue?, with decoder: FieldDecoder) throws(ConfigError) -> BackendConfig {
        guard let value else { return .udp }
        let example = "\"Backend\": {\"Type\": \"vxlan\"}"
        // flannel keeps Backend as raw JSON; null there decodes to an empty Type.
        let members = value.isNull ? [] : try decoder.members("Backend", value, example: example)
        let typeName =
            try members.decodeField("Type") { (v) throws(ConfigError) in
                try decoder.string("Backend.Type", v, example: "\"Type\": \"vxlan\"")
            } ?? ""
        let type = typeName.lowercased()
        guard !type.isEmpty else {
            throw decoder.error(
                "Backend.Type",
                "Backend.Type is missing; set it to one of \(supportedList) (e.g. \(example))"
            )
        }
        if flannelOnlyTypes.contains(type) {
            throw decoder.error(
                "Backend.Type",
                "backend \(type) is not supported by Weft (supported: \(supportedList))"
            )
        }
        guard let kind = Kind(rawValue: type) else {
            throw decoder.error(
                "Backend.Type",
                "unknown backend type: \(ConfigError.singleLine(String(typeName.prefix(60)))) (Backend.Type); use one of \(supportedList)"
            )
        }
        switch kind {
        case .vxlan: return try decodeVXLAN(members, with: decoder)
        case .udp: return try decodeUDP(members, with: decoder)
        case .hostGateway:
            return BackendConfig(kind: .hostGateway, otherKeys: others(members, known: ["Type"], decoder))
        }
    }

    private static func decodeVXLAN(
        _ members: [JSONMember],
        with decoder: FieldDecoder
    ) throws(ConfigError) -> BackendConfig {
        let vni =
            try members.decodeField("VNI") { (v) throws(ConfigError) -> UInt32 in
                let n = try decoder.integer("Backend.VNI", v, example: "\"VNI\": 1")
                guard (0...Int64(maximumVNI)).contains(n) else {
                    throw decoder.error(
                        "Backend.VNI",
                        "Backend.VNI \(n) is outside 0...\(maximumVNI) (VXLAN has 24 bits); use e.g. \"VNI\": 1"
                    )
                }
                return UInt32(n)
            } ?? defaultVNI
        let port = try decodePort(members, decoder, allowZero: true, example: "\"Port\": 8472") ?? 0
        let mtu = try members.decodeField("MTU") { (v) throws(ConfigError) -> Int in
            let n = try decoder.integer("Backend.MTU", v, example: "\"MTU\": 1500")
            // The overlay must still carry IPv4's minimum MTU of 68 after the 50-byte overhead.
            guard n == 0 || (118...65535).contains(n) else {
                throw decoder.error(
                    "Backend.MTU",
                    "Backend.MTU \(n) is outside 118...65535; give the underlay MTU, e.g. \"MTU\": 1500, or leave it out to use the interface's"
                )
            }
            return Int(n)
        }
        let directRouting =
            try members.decodeField("DirectRouting") { (v) throws(ConfigError) in
                try decoder.bool("Backend.DirectRouting", v)
            } ?? false
        for flag in ["GBP", "Learning"] {
            let on = try members.decodeField(flag) { (v) throws(ConfigError) in try decoder.bool("Backend.\(flag)", v) }
            if on == true {
                throw decoder.error(
                    "Backend.\(flag)",
                    "Backend.\(flag) true is not supported by Weft's vxlan backend; remove it or set \"\(flag)\": false"
                )
            }
        }
        let known = ["Type", "VNI", "Port", "MTU", "GBP", "DirectRouting", "Learning"]
        return BackendConfig(
            kind: .vxlan,
            vni: vni,
            port: port,
            underlayMTU: mtu == 0 ? nil : mtu,
            directRouting: directRouting,
            otherKeys: others(members, known: known, decoder)
        )
    }

    private static func decodeUDP(
        _ members: [JSONMember],
        with decoder: FieldDecoder
    ) throws(ConfigError) -> BackendConfig {
        // Port 0 would bind a random port, yet flannel sends to peers at its own port: refuse it.
        let port = try decodePort(members, decoder, allowZero: false, example: "\"Port\": 8285") ?? defaultUDPPort
        return BackendConfig(kind: .udp, port: port, otherKeys: others(members, known: ["Type", "Port"], decoder))
    }

    private static func decodePort(
        _ members: [JSONMember],
        _ decoder: FieldDecoder,
        allowZero: Bool,
        example: String
    ) throws(ConfigError) -> UInt16? {
        try members.decodeField("Port") { (v) throws(ConfigError) -> UInt16 in
            let n = try decoder.integer("Backend.Port", v, example: example)
            let range: ClosedRange<Int64> = allowZero ? 0...65535 : 1...65535
            guard range.contains(n) else {
                throw decoder.error(
                    "Backend.Port",
                    "Backend.Port \(n) is outside \(range.lowerBound)...65535; use e.g. \(example)"
                )
            }
            return UInt16(n)
        }
    }

    private static func others(_ members: [JSONMember], known: [String], _ decoder: FieldDecoder) -> [String: String] {
        var result: [String: String] = [:]
        for member in members.unmatched(by: known) {
            result[member.key] = decoder.document.compactText(of: member.value)
        }
        return result
    }
}
