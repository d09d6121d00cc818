import Addressing
import Routes

/// What a kernel vxlan device needs of a peer, in its device's family: the subnet to route, the
/// remote its FDB entry sends to, its VTEP MAC, and (in `nextHop`) its lease's backend. `Route` is
/// a peer of flannel.<VNI>; `IPv6Peer` (a lease's IPv6 half) one of flannel-v6.<VNI>, so one plan
/// and one device type serve both. The members carry a vxlan prefix so they cannot collide with
/// other modules' extensions of the same types (host-gw's `HostGatewayPeer`).
public protocol VXLANPeer: Hashable, Sendable {
    associatedtype Address: IPAddress
    var subnet: Address.Prefix { get }
    var nextHop: NextHop { get }
    /// The FDB entry's destination: PublicIP (PublicIPv6 for flannel-v6); nil when the lease has none.
    var vxlanRemote: Address? { get }
    /// BackendData's VtepMAC (BackendV6Data's for flannel-v6); nil when the lease has none.
    var vxlanMAC: MACAddress? { get }
}

extension Route: VXLANPeer {
    public var vxlanRemote: IPv4Address? { nextHop.publicIP == .any ? nil : nextHop.publicIP }
    /// A zero MAC is how a NextHop says it has none.
    public var vxlanMAC: MACAddress? { nextHop.vtepMAC == MACAddress(0) ? nil : nextHop.vtepMAC }
}

extension IPv6Peer: VXLANPeer {
    public var vxlanRemote: IPv6Address? { publicIPv6 }
    public var vxlanMAC: MACAddress? { vtepMAC }
}
