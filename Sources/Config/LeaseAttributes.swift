import Addressing

/// The value of a lease key in etcd: flannel's LeaseAttrs, e.g.
/// {"PublicIP":"198.18.0.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"}}
public struct LeaseAttributes: Equatable, Sendable {
    /// The address peers send tunnel traffic to; 0.0.0.0 when the value has none, as in flannel.
    public var publicIP: IPv4Address
    /// The address peers send IPv6 tunnel traffic to, as flanneld's text ("2001:db8::1"); nil
    /// (written as null) when the lease has no IPv6 part. `publicIPv6Address` is the same, typed.
    public var publicIPv6: String?
    /// "vxlan", "host-gw", ...; empty when absent (flannel's udp backend writes none).
    public var backendType: String
    /// The backend's own JSON object, compact, as Go re-emits a json.RawMessage. nil when absent.
    public var backendData: String?
    /// flannel's IPv6 counterpart of BackendData (vxlan: the flannel-v6 device's VNI and
    /// VtepMAC), compact JSON; nil when absent, and then not written.
    public var backendV6Data: String?

    public init(
        publicIP: IPv4Address,
        publicIPv6: String? = nil,
        backendType: String = "",
        backendData: String? = nil,
        backendV6Data: String? = nil
    ) {
        self.publicIP = publicIP
        self.publicIPv6 = publicIPv6
        self.backendType = backendType
        self.backendData = backendData
        self.backendV6Data = backendV6Data
    }

    /// PublicIPv6 as an address. Setting it writes flanneld's text for it.
    public var publicIPv6Address: IPv6Address? {
        get { publicIPv6.flatMap(FlannelIPv6Text.parseAddress) }
        set { publicIPv6 = newValue.map(FlannelIPv6Text.address) }
    }

    /// What a vxlan node publishes; a dual-stack one adds its IPv6 address and the flannel-v6
    /// device's VNI and VtepMAC as BackendV6Data, and an IPv6-only one has that alone (no `data`).
    public static func vxlan(
        publicIP: IPv4Address,
        data: VXLANLeaseData?,
        publicIPv6: IPv6Address? = nil,
        dataV6: VXLANLeaseData? = nil
    ) -> LeaseAttributes {
        var attributes = LeaseAttributes(
            publicIP: publicIP,
            backendType: "vxlan",
            backendData: data?.json,
            backendV6Data: dataV6?.json
        )
        attributes.publicIPv6Address = publicIPv6
        return attributes
    }

    /// What a host-gw node publishes: no BackendData (nor BackendV6Data), PublicIPv6 when dual-stack.
    public static func hostGateway(publicIP: IPv4Address, publicIPv6: IPv6Address? = nil) -> LeaseAttributes {
        var attributes = LeaseAttributes(publicIP: publicIP, backendType: "host-gw")
        attributes.publicIPv6Address = publicIPv6
        return attributes
    }

    /// What flannel's udp backend publishes: no BackendType and no BackendData.
    public static func udp(publicIP: IPv4Address) -> LeaseAttributes {
        LeaseAttributes(publicIP: publicIP)
    }

    /// Byte for byte what Go's json.Marshal writes for flannel's LeaseAttrs: compact, fields in
    /// declaration order, PublicIPv6 always present (null), the rest omitted when empty.
    public var json: String {
        var text = "{\"PublicIP\":\(JSONWriter.quoted(publicIP.description)),\"PublicIPv6\":"
        text += publicIPv6.map(JSONWriter.quoted) ?? "null"
        if !backendType.isEmpty { text += ",\"BackendType\":\(JSONWriter.quoted(backendType))" }
        if let backendData { text += ",\"BackendData\":\(backendData)" }
        if let backendV6Data { text += ",\"BackendV6Data\":\(backendV6Data)" }
        return text + "}"
    }

    public static func parse(_ text: String) throws(ConfigError) -> LeaseAttributes {
        try parse(Array(text.utf8))
    }

    /// Decodes a lease value as Go decodes it into LeaseAttrs (member names in any case).
    public static func parse(_ bytes: [UInt8]) throws(ConfigError) -> LeaseAttributes {
        let document: JSONDocument
        do {
            document = try JSONDocument(bytes)
        } catch {
            throw ConfigError(
                source: "lease",
                field: "JSON",
                problem:
                    "\(error.summary); the lease value must be flannel's JSON, e.g. {\"PublicIP\":\"198.18.0.1\",\"PublicIPv6\":null}"
            )
        }
        let decoder = FieldDecoder(source: "lease", document: document)
        guard case .object(let members) = document.root.kind else {
            throw decoder.error(
                "JSON",
                "a lease value must be a JSON object, got \(document.root.kindName); write e.g. {\"PublicIP\":\"198.18.0.1\",\"PublicIPv6\":null}"
            )
        }
        let publicIP =
            try members.decodeField("PublicIP") { (v) throws(ConfigError) in
                try decoder.ipv4("PublicIP", v, example: "\"PublicIP\": \"198.18.0.1\"")
            } ?? .any
        // Decoded into flannel's ip.IP6 and so re-emitted as flanneld would: "FC00:0::1" is "fc00::1".
        let publicIPv6 = try members.decodeField("PublicIPv6") { (v) throws(ConfigError) in
            FlannelIPv6Text.address(
                try decoder.ipv6("PublicIPv6", v, example: "\"PublicIPv6\": \"2001:db8::1\" or null")
            )
        }
        let backendType =
            try members.decodeField("BackendType") { (v) throws(ConfigError) in
                try decoder.string("BackendType", v, example: "\"BackendType\": \"vxlan\"")
            } ?? ""
        // null is read as absent: flannel never writes it, and Weft would not re-emit it.
        func raw(_ field: String) -> String? {
            members.lastMatch(field).flatMap { $0.isNull ? nil : document.compactText(of: $0) }
        }
        return LeaseAttributes(
            publicIP: publicIP,
            publicIPv6: publicIPv6,
            backendType: backendType,
            backendData: raw("BackendData"),
            backendV6Data: raw("BackendV6Data")
        )
    }

    /// The vxlan fields of BackendData, for a lease whose BackendType is "vxlan".
    public func vxlanData() throws(ConfigError) -> VXLANLeaseData {
        try Self.vxlanData(backendData, field: "BackendData", mac: "VtepMAC", peer: "the peer")
    }

    /// The vxlan fields of BackendV6Data, for a dual-stack vxlan lease: the peer's flannel-v6
    /// device.
    public func vxlanV6Data() throws(ConfigError) -> VXLANLeaseData {
        try Self.vxlanData(backendV6Data, field: "BackendV6Data", mac: "IPv6 VtepMAC", peer: "a dual-stack vxlan peer")
    }

    /// `data`, the raw JSON of `field`, read as vxlan's; a lease without it leaves `peer`'s `mac` unknown.
    private static func vxlanData(
        _ data: String?,
        field: String,
        mac: String,
        peer: String
    ) throws(ConfigError) -> VXLANLeaseData {
        guard let data else {
            throw ConfigError(
                source: "lease",
                field: field,
                problem:
                    "\(field) is missing, so the peer's \(mac) is unknown; \(peer) must publish {\"VNI\":1,\"VtepMAC\":\"aa:bb:cc:dd:ee:ff\"}"
            )
        }
        return try VXLANLeaseData.parse(data, field: field)
    }
}

/// flannel's vxlanLeaseAttrs: {"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"}.
public struct VXLANLeaseData: Equatable, Sendable {
    /// flannel declares this field uint16 and converts the configured VNI with uint16(vni),
    /// so a VNI above 65535 is published truncated. Receivers do not use it.
    public var vni: UInt16
    public var vtepMAC: MACAddress

    public init(vni: UInt16, vtepMAC: MACAddress) {
        self.vni = vni
        self.vtepMAC = vtepMAC
    }

    /// From the configured VNI, truncated exactly as flannel does when it publishes.
    public init(configuredVNI: UInt32, vtepMAC: MACAddress) {
        self.init(vni: UInt16(truncatingIfNeeded: configuredVNI), vtepMAC: vtepMAC)
    }

    public var json: String { "{\"VNI\":\(vni),\"VtepMAC\":\"\(vtepMAC)\"}" }

    /// `field` names the lease member the object came from in errors: BackendData or BackendV6Data.
    public static func parse(_ text: String, field: String = "BackendData") throws(ConfigError) -> VXLANLeaseData {
        let document: JSONDocument
        do {
            document = try JSONDocument(Array(text.utf8))
        } catch {
            throw ConfigError(
                source: "lease",
                field: field,
                problem:
                    "\(field) is not valid JSON (\(error.summary)); the peer must publish e.g. {\"VNI\":1,\"VtepMAC\":\"aa:bb:cc:dd:ee:ff\"}"
            )
        }
        let decoder = FieldDecoder(source: "lease", document: document)
        let members = try decoder.members(
            field,
            document.root,
            example: "\"\(field)\": {\"VNI\":1,\"VtepMAC\":\"aa:bb:cc:dd:ee:ff\"}"
        )
        let vni =
            try members.decodeField("VNI") { (v) throws(ConfigError) -> UInt16 in
                let n = try decoder.integer("\(field).VNI", v, example: "\"VNI\": 1")
                guard let vni = UInt16(exactly: n) else {
                    throw decoder.error(
                        "\(field).VNI",
                        "\(field).VNI \(n) is outside 0...65535 (flannel reads it as uint16); publish e.g. \"VNI\": 1"
                    )
                }
                return vni
            } ?? 0
        // hardwareAddr.UnmarshalJSON in flannel runs even for null, and fails on it.
        let macValue = members.lastMatch("VtepMAC")
        guard let macValue else {
            throw decoder.error(
                "\(field).VtepMAC",
                "\(field).VtepMAC is missing; the peer must publish e.g. \"VtepMAC\": \"aa:bb:cc:dd:ee:ff\""
            )
        }
        guard case .string(let text) = macValue.kind, let mac = VXLANLeaseData.parseMAC(text) else {
            throw decoder.error(
                "\(field).VtepMAC",
                "\(field).VtepMAC \(decoder.shown(macValue)) is not a MAC address; the peer must publish e.g. \"VtepMAC\": \"aa:bb:cc:dd:ee:ff\""
            )
        }
        return VXLANLeaseData(vni: vni, vtepMAC: mac)
    }

    /// The 48-bit forms Go's net.ParseMAC reads: "aa:bb:cc:dd:ee:ff", "aa-bb-cc-dd-ee-ff" and
    /// "aabb.ccdd.eeff".
    static func parseMAC(_ text: String) -> MACAddress? {
        if let mac = MACAddress(text) { return mac }
        let groups = text.split(separator: ".", omittingEmptySubsequences: false)
        guard groups.count == 3, groups.allSatisfy({ $0.utf8.count == 4 }) else { return nil }
        var value: UInt64 = 0
        for group in groups {
            guard group.utf8.allSatisfy({ $0 != UInt8(ascii: "+") && $0 != UInt8(ascii: "-") }),
                let word = UInt16(group, radix: 16)
            else { return nil }
            value = value << 16 | UInt64(word)
        }
        return MACAddress(value)
    }
}

extension LeaseAttributes {
    /// Whether `other` was published by the host that publishes these: flannel knows a host by its
    /// PublicIP; on an IPv6-only network, where hosts may have no IPv4 address (PublicIP
    /// "0.0.0.0" for all), by its PublicIPv6.
    public func isSameHost(as other: LeaseAttributes, ipv6Only: Bool) -> Bool {
        ipv6Only ? publicIPv6Address != nil && publicIPv6Address == other.publicIPv6Address : publicIP == other.publicIP
    }

    /// The address that names the publishing host in log lines: PublicIPv6 on an IPv6-only network.
    public func hostName(ipv6Only: Bool) -> String {
        ipv6Only ? publicIPv6 ?? "no PublicIPv6" : publicIP.description
    }
}
