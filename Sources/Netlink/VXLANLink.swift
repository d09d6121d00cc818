import Addressing
import CShims
import Glibc

/// A kernel vxlan device as flanneld makes flannel.<VNI> (`VXLANLink`, an IPv4 underlay) and
/// flannel-v6.<VNI> (`IPv6VXLANLink`, an IPv6 underlay): what is set at creation, and what decides
/// whether an existing device can be kept.
public struct VXLANLinkOf<Address: IPAddress>: Equatable, Sendable {
    public var name: String
    public var vni: UInt32
    /// IFLA_VXLAN_LOCAL (IPv4) or IFLA_VXLAN_LOCAL6 (IPv6): the outer source address, the
    /// underlay interface's address of the family.
    public var local: Address?
    /// IFLA_VXLAN_LINK: the underlay interface the outer packets leave by.
    public var underlayIndex: Int32?
    /// IFLA_VXLAN_PORT: the outer destination port (host order here, network order on the wire).
    public var port: UInt16
    /// IFLA_VXLAN_LEARNING: off in flannel, whose entries are all permanent.
    public var learning: Bool
    /// IFLA_VXLAN_GBP: the group-policy extension, when the config asks for it.
    public var gbp: Bool
    /// IFLA_ADDRESS: the VTEP MAC peers hold in their neighbour and FDB entries.
    public var mac: MACAddress?
    public var mtu: Int?

    public init(
        name: String,
        vni: UInt32,
        local: Address?,
        underlayIndex: Int32?,
        port: UInt16,
        learning: Bool = false,
        gbp: Bool = false,
        mac: MACAddress? = nil,
        mtu: Int? = nil
    ) {
        self.name = name
        self.vni = vni
        self.local = local
        self.underlayIndex = underlayIndex
        self.port = port
        self.learning = learning
        self.gbp = gbp
        self.mac = mac
        self.mtu = mtu
    }

    /// Why `self` (a device found in the kernel) cannot serve as `wanted`, or nil when it can:
    /// flannel's vxlanLinksIncompat (VNI, underlay device, local address, port, GBP), plus learning,
    /// which Weft's permanent entries do not want either. MAC and MTU are set on a kept device.
    public func incompatibility(with wanted: Self) -> String? {
        if vni != wanted.vni { return "VNI \(vni), wanted \(wanted.vni)" }
        if let index = underlayIndex, let other = wanted.underlayIndex, index != other {
            return "underlay interface index \(index), wanted \(other)"
        }
        if let address = local, let other = wanted.local, address != other {
            return "local address \(address), wanted \(other)"
        }
        if port != 0 && wanted.port != 0 && port != wanted.port { return "port \(port), wanted \(wanted.port)" }
        if gbp != wanted.gbp { return "GBP \(gbp ? "on" : "off"), wanted \(wanted.gbp ? "on" : "off")" }
        if learning != wanted.learning {
            return "learning \(learning ? "on" : "off"), wanted \(wanted.learning ? "on" : "off")"
        }
        return nil
    }
}

public typealias VXLANLink = VXLANLinkOf<IPv4Address>
public typealias IPv6VXLANLink = VXLANLinkOf<IPv6Address>

/// A link as an RTM_GETLINK reply describes it: its index and state, and its vxlan attributes when
/// it is a vxlan device.
public struct LinkState: Equatable, Sendable {
    public var index: Int32
    public var name: String
    /// IFLA_INFO_KIND: "vxlan", "tun", "veth", ...; nil for a link without one.
    public var kind: String?
    public var isUp: Bool
    public var mac: MACAddress?
    public var mtu: Int?
    /// For kind "vxlan" with an IPv4 local address or none: the device's attributes (its MAC and
    /// MTU included).
    public var vxlan: VXLANLink?
    /// For kind "vxlan" with an IPv6 local address (IFLA_VXLAN_LOCAL6): the device's attributes.
    public var vxlan6: IPv6VXLANLink?

    public init(
        index: Int32,
        name: String,
        kind: String?,
        isUp: Bool,
        mac: MACAddress?,
        mtu: Int?,
        vxlan: VXLANLink?,
        vxlan6: IPv6VXLANLink? = nil
    ) {
        self.index = index
        self.name = name
        self.kind = kind
        self.isUp = isUp
        self.mac = mac
        self.mtu = mtu
        self.vxlan = vxlan
        self.vxlan6 = vxlan6
    }

    /// The vxlan attributes if the device's local address is of `family` (a device without one
    /// counts as IPv4's); nil for another kind or a vxlan device of the other family.
    public func vxlan<Address>(_ family: Address.Type) -> VXLANLinkOf<Address>? {
        Address.bitWidth == 32 ? vxlan as? VXLANLinkOf<Address> : vxlan6 as? VXLANLinkOf<Address>
    }
}

/// RTM_NEWLINK for a vxlan device and the RTM_GETLINK reply, both ways. Attribute numbers are
/// linux/if_link.h's (IFLA_VXLAN_*).
enum LinkMessage {
    /// RTM_NEWLINK with NLM_F_CREATE | NLM_F_EXCL, as `ip link add <name> address <mac> mtu <mtu>
    /// type vxlan id <vni> local <ip> dev <underlay> dstport <port> nolearning [gbp]` sends it.
    static func createVXLAN<Address>(_ link: VXLANLinkOf<Address>, sequence: UInt32) -> NetlinkMessage {
        var message = NetlinkMessage(
            type: UInt16(RTM_NEWLINK),
            flags: UInt16(NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL),
            sequence: sequence
        )
        message.appendLinkHeader(index: 0)
        message.appendAttribute(type: UInt16(IFLA_IFNAME), bytes: Array(link.name.utf8) + [0])
        if let mac = link.mac { message.appendAttribute(type: UInt16(IFLA_ADDRESS), bytes: mac.bytes) }
        if let mtu = link.mtu { message.appendAttribute(type: UInt16(IFLA_MTU), UInt32(mtu)) }
        let info = message.beginNested(type: UInt16(IFLA_LINKINFO))
        message.appendAttribute(type: UInt16(IFLA_INFO_KIND), bytes: Array("vxlan".utf8) + [0])
        let data = message.beginNested(type: UInt16(IFLA_INFO_DATA))
        message.appendAttribute(type: UInt16(IFLA_VXLAN_ID), link.vni)
        if let local = link.local {
            let type = Address.bitWidth == 32 ? IFLA_VXLAN_LOCAL : IFLA_VXLAN_LOCAL6
            message.appendAttribute(type: UInt16(type), bytes: local.networkBytes)
        }
        if let index = link.underlayIndex {
            message.appendAttribute(type: UInt16(IFLA_VXLAN_LINK), UInt32(bitPattern: index))
        }
        message.appendAttribute(type: UInt16(IFLA_VXLAN_PORT), bytes: [UInt8(link.port >> 8), UInt8(link.port & 0xFF)])
        message.appendAttribute(type: UInt16(IFLA_VXLAN_LEARNING), bytes: [link.learning ? 1 : 0])
        if link.gbp { message.appendAttribute(type: UInt16(IFLA_VXLAN_GBP), bytes: []) }
        message.endNested(data)
        message.endNested(info)
        return message
    }

    /// RTM_NEWLINK for link `index`: IFLA_ADDRESS and IFLA_MTU when given, and IFF_UP set or cleared.
    static func configure(index: Int32, mac: MACAddress?, mtu: Int?, up: Bool, sequence: UInt32) -> NetlinkMessage {
        var message = NetlinkMessage(
            type: UInt16(RTM_NEWLINK),
            flags: UInt16(NLM_F_REQUEST | NLM_F_ACK),
            sequence: sequence
        )
        message.appendLinkHeader(index: index, flags: up ? UInt32(IFF_UP) : 0, change: UInt32(IFF_UP))
        if let mac { message.appendAttribute(type: UInt16(IFLA_ADDRESS), bytes: mac.bytes) }
        if let mtu { message.appendAttribute(type: UInt16(IFLA_MTU), UInt32(mtu)) }
        return message
    }

    /// An RTM_NEWLINK payload. A short header or an attribute running past its parent throws EBADMSG.
    static func decode(_ payload: [UInt8]) throws(NetlinkError) -> LinkState {
        let operation = "RTM_GETLINK reply"
        try RouteNetlink.requireHeader(payload, RouteNetlink.linkHeaderSize, operation, "ifinfomsg")
        var state = LinkState(
            index: payload.loadNative(Int32.self, at: 4),
            name: "",
            kind: nil,
            isUp: payload.loadNative(UInt32.self, at: 8) & UInt32(IFF_UP) != 0,
            mac: nil,
            mtu: nil,
            vxlan: nil
        )
        var data: Range<Int>?
        for (type, value) in try RouteNetlink.attributes(
            payload,
            in: RouteNetlink.linkHeaderSize..<payload.count,
            operation,
            "ifinfomsg"
        ) {
            switch type {
            case UInt16(IFLA_IFNAME): state.name = String(decoding: payload[value].prefix { $0 != 0 }, as: UTF8.self)
            case UInt16(IFLA_ADDRESS) where value.count == 6: state.mac = MACAddress(bytes: payload[value])
            case UInt16(IFLA_MTU) where value.count == 4:
                state.mtu = Int(payload.loadNative(UInt32.self, at: value.lowerBound))
            case UInt16(IFLA_LINKINFO):
                for (inner, range) in try RouteNetlink.attributes(payload, in: value, operation, "IFLA_LINKINFO") {
                    if inner == UInt16(IFLA_INFO_KIND) {
                        state.kind = String(decoding: payload[range].prefix { $0 != 0 }, as: UTF8.self)
                    }
                    if inner == UInt16(IFLA_INFO_DATA) { data = range }
                }
            default: break
            }
        }
        if state.kind == "vxlan", let data {
            var link = VXLANLink(
                name: state.name,
                vni: 0,
                local: nil,
                underlayIndex: nil,
                port: 0,
                mac: state.mac,
                mtu: state.mtu
            )
            var local6: IPv6Address?
            for (type, range) in try RouteNetlink.attributes(payload, in: data, operation, "IFLA_INFO_DATA") {
                switch (type, range.count) {
                case (UInt16(IFLA_VXLAN_ID), 4): link.vni = payload.loadNative(UInt32.self, at: range.lowerBound)
                case (UInt16(IFLA_VXLAN_LOCAL), 4):
                    link.local = IPv4Address(networkOrder: payload.loadNative(UInt32.self, at: range.lowerBound))
                case (UInt16(IFLA_VXLAN_LOCAL6), 16): local6 = IPv6Address(networkBytes: payload[range])
                case (UInt16(IFLA_VXLAN_LINK), 4):
                    let index = payload.loadNative(Int32.self, at: range.lowerBound)
                    link.underlayIndex = index == 0 ? nil : index
                case (UInt16(IFLA_VXLAN_PORT), 2):
                    link.port = UInt16(payload[range.lowerBound]) << 8 | UInt16(payload[range.lowerBound + 1])
                case (UInt16(IFLA_VXLAN_LEARNING), 1): link.learning = payload[range.lowerBound] != 0
                // A flag, absent when off; kernels since 5.x write it as a one-byte 1 in dumps.
                case (UInt16(IFLA_VXLAN_GBP), _): link.gbp = true
                default: break
                }
            }
            if let local6 {
                state.vxlan6 = IPv6VXLANLink(
                    name: link.name,
                    vni: link.vni,
                    local: local6,
                    underlayIndex: link.underlayIndex,
                    port: link.port,
                    learning: link.learning,
                    gbp: link.gbp,
                    mac: link.mac,
                    mtu: link.mtu
                )
            } else {
                state.vxlan = link
            }
        }
        return state
    }
}

extension RouteNetlink {
    /// Creates the vxlan device `link` and returns its index. EEXIST when the name is taken.
    @discardableResult
    public mutating func createVXLAN<Address>(_ link: VXLANLinkOf<Address>) throws(NetlinkError) -> Int32 {
        try request(LinkMessage.createVXLAN(link, sequence: nextSequence()), "RTM_NEWLINK vxlan", link.name)
        return try Self.interfaceIndex(link.name)
    }

    /// Link `index` as the kernel reports it, its vxlan attributes included.
    public mutating func linkState(index: Int32) throws(NetlinkError) -> LinkState {
        try LinkMessage.decode(linkPayload(index: index))
    }

    /// The link named `name`, nil when there is none in the calling thread's network namespace.
    public mutating func linkState(named name: String) throws(NetlinkError) -> LinkState? {
        guard let index = try? Self.interfaceIndex(name) else { return nil }
        do throws(NetlinkError) {
            return try linkState(index: index)
        } catch  where error.code == ENODEV {
            return nil  // deleted between the name lookup and the request
        }
    }

    /// Sets link `index`'s MAC and MTU (each when given) and brings it up.
    public mutating func configureLink(index: Int32, mac: MACAddress? = nil, mtu: Int? = nil) throws(NetlinkError) {
        try request(
            LinkMessage.configure(index: index, mac: mac, mtu: mtu, up: true, sequence: nextSequence()),
            "RTM_NEWLINK",
            "index \(index)"
        )
    }
}
