import Addressing
import CShims
import Netlink
import Routes

/// flannel's vxlan `DirectRouting`: which peers get a host-gw route `<subnet> via <PublicIP>` and
/// which go through VXLAN, decided as flannel's ip.DirectRouting decides it, from the kernel's own
/// answer to "how do I reach this PublicIP" (RTM_GETROUTE): a route with no gateway means the peer
/// is on one of our segments and needs no tunnel. Pure: the lookups are given, so every rule is
/// testable without root; `DirectRoutes` feeds it the kernel's answers.
///
/// The split is remembered, so each call says which peers moved: one line when a peer becomes
/// direct, one when it goes back to VXLAN or its lease goes, as flanneld logs "Adding direct route"
/// and "Removing direct route".
///
/// One family per split: `DirectRoutingSplit` for the IPv4 peers, `IPv6DirectRoutingSplit` for
/// the IPv6 ones, looked up by their PublicIPv6.
public struct DirectRoutingSplitOf<Peer: HostGatewayPeer>: Sendable, Equatable {
    public typealias Address = Peer.Address
    /// How the kernel reaches a peer's PublicIP.
    public enum Reach: Hashable, Sendable, CustomStringConvertible {
        /// Directly connected through the underlay interface: a route via the PublicIP works.
        case direct
        /// Through a router: only VXLAN gets there.
        case gateway(Address)
        /// Directly connected, but through another interface than the one vxlan runs on (its
        /// index): flannel would route there too, but Weft keeps the overlay on the chosen interface.
        case otherInterface(Int32)
        /// The kernel's answer is not a unicast route (rtm_type: 2 local for our own address,
        /// 6 blackhole, 7 unreachable, ...).
        case notUnicast(UInt8)
        /// The lookup failed (no route at all): the error.
        case unreachable(String)

        public var description: String {
            switch self {
            case .direct: "directly connected"
            case .gateway(let router): "reached via the router \(router)"
            case .otherInterface(let index):
                "directly connected through interface index \(index), not the vxlan underlay"
            case .notUnicast(let type) where type == UInt8(RTN_LOCAL): "it is one of our own addresses"
            case .notUnicast(let type): "the kernel's route to it is not unicast (rtm_type \(type))"
            case .unreachable(let error): "no route to it (\(error))"
            }
        }
    }

    /// What `lookup` (the kernel's route to a PublicIP, `RouteNetlink.lookupRoute`) means for a
    /// vxlan dataplane on interface `underlay`. flannel asks only for "one route, no gateway"; a
    /// multipath answer comes back here without gateway or interface and is not direct.
    public static func reach(_ lookup: KernelRouteOf<Address>, underlay: Int32) -> Reach {
        guard lookup.type == UInt8(RTN_UNICAST) else { return .notUnicast(lookup.type) }
        if let gateway = lookup.gateway { return .gateway(gateway) }
        guard let index = lookup.interfaceIndex else { return .notUnicast(lookup.type) }
        return index == underlay ? .direct : .otherInterface(index)
    }

    /// One split of a publication's routes.
    public struct Result: Equatable, Sendable {
        /// vxlan peers the kernel reaches directly: a host-gw route each, no VXLAN entries.
        public var direct: [Peer] = []
        /// Everything else, in the order given: VXLAN as without DirectRouting (peers of another
        /// backend included, for the vxlan plan to refuse with its own reason).
        public var tunnelled: [Peer] = []
        /// One line per peer that became direct, left direct, or came as a tunnelled peer.
        public var moves: [String] = []
    }

    /// The peers routed directly after the last split: subnet → PublicIP.
    public private(set) var direct: [Address.Prefix: Address] = [:]
    /// The peers that went through VXLAN after the last split, with why.
    public private(set) var tunnelled: [Address.Prefix: Reach] = [:]

    public init() {}

    /// Splits `routes` by `reach` (asked once per PublicIP) and remembers the result.
    public mutating func split(_ routes: [Peer], reach: (Address) -> Reach) -> Result {
        var result = Result()
        var reaches: [Address: Reach] = [:]
        var nowDirect: [Address.Prefix: Address] = [:]
        var nowTunnelled: [Address.Prefix: Reach] = [:]
        for route in routes {
            // Without a PublicIP(v6) a peer cannot be routed directly: the device refuses it too.
            guard let publicIP = route.publicAddress, route.backend == .vxlan else {
                result.tunnelled.append(route)
                continue
            }
            let found = reaches[publicIP] ?? reach(publicIP)
            reaches[publicIP] = found
            let subnet = route.subnet
            if found == .direct {
                result.direct.append(route)
                nowDirect[subnet] = publicIP
                if direct[subnet] != publicIP {
                    let was =
                        tunnelled[subnet] != nil
                        ? "; was through VXLAN" : direct[subnet].map { "; was PublicIP \($0)" } ?? ""
                    result.moves.append(
                        "vxlan: adding direct route to subnet \(subnet) PublicIP \(publicIP) (directly connected\(was))"
                    )
                }
            } else {
                result.tunnelled.append(route)
                nowTunnelled[subnet] = found
                if let old = direct[subnet] {
                    result.moves.append(
                        "vxlan: subnet \(subnet) PublicIP \(publicIP) goes through VXLAN: \(found) (was a direct route via \(old))"
                    )
                } else if tunnelled[subnet] != found {
                    result.moves.append("vxlan: subnet \(subnet) PublicIP \(publicIP) goes through VXLAN: \(found)")
                }
            }
        }
        for (subnet, publicIP) in direct.sorted(by: { $0.key.network < $1.key.network })
        where nowDirect[subnet] == nil && nowTunnelled[subnet] == nil {
            result.moves.append(
                "vxlan: removing direct route to subnet \(subnet) PublicIP \(publicIP) (its lease is gone)"
            )
        }
        direct = nowDirect
        tunnelled = nowTunnelled
        return result
    }
}

public typealias DirectRoutingSplit = DirectRoutingSplitOf<Route>
public typealias IPv6DirectRoutingSplit = DirectRoutingSplitOf<IPv6Peer>
