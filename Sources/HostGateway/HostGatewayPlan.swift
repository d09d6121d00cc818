import Addressing
import CShims
import Netlink
import Routes

/// What one reconcile must do, decided from the kernel's main table and the wanted routes alone:
/// no syscalls, so every rule is testable without root.
struct HostGatewayPlan<Peer: HostGatewayPeer>: Equatable {
    typealias Address = Peer.Address
    typealias Keeper = HostGatewayRoutesOf<Peer>

    /// One route to install: added, or written over `replacing` (an owned route with the same
    /// destination and metric) with NLM_F_REPLACE so the peer never goes without a route.
    struct Step: Equatable {
        var route: Peer
        var desired: KernelRouteOf<Address>
        var replacing: KernelRouteOf<Address>?
    }

    var steps: [Step] = []
    /// Owned routes already exactly as wanted.
    var kept: [KernelRouteOf<Address>] = []
    /// Owned routes no wanted peer accounts for: stale from a previous run, a peer gone, a duplicate.
    var removals: [KernelRouteOf<Address>] = []
    var refused: [Keeper.Refusal] = []

    /// `backend` is the one the peers' leases must name: host-gw, or vxlan for DirectRouting's
    /// direct peers. `overlayIndex` is the vxlan device (kernel flannel.<VNI> or the engine's
    /// TUN) whose routes carry Weft's protocol too but belong to the vxlan dataplane: never owned here.
    /// The routes of `table` this keeper owns: Weft's protocol and unicast (its other routes under
    /// that protocol, BlackholeRoute's, are not peers' routes), inside the Network, and not through
    /// `overlayIndex` (the vxlan device's own routes).
    static func owned(
        _ table: [KernelRouteOf<Address>],
        network: Address.Prefix,
        overlayIndex: Int32?
    ) -> [KernelRouteOf<Address>] {
        table.filter {
            $0.routeProtocol == Keeper.routeProtocol && $0.type == UInt8(RTN_UNICAST)
                && network.contains($0.destination) && (overlayIndex == nil || $0.interfaceIndex != overlayIndex)
        }
    }

    init(
        table: [KernelRouteOf<Address>],
        wanted: [Peer],
        interfaceIndex: Int32,
        address: Address,
        segment: Address.Prefix,
        network: Address.Prefix,
        backend: Backend = .hostGateway,
        overlayIndex: Int32? = nil
    ) {
        let ours = Keeper.routeProtocol
        let owned = Self.owned(table, network: network, overlayIndex: overlayIndex)
        var foreign: [Address.Prefix: KernelRouteOf<Address>] = [:]
        for route in table where route.routeProtocol != ours && foreign[route.destination] == nil {
            foreign[route.destination] = route
        }

        var accepted: [Peer] = []
        var seen = Set<Address.Prefix>()
        for route in wanted {
            if let refusal = Self.refusal(
                route,
                foreign: foreign[route.subnet],
                interfaceIndex: interfaceIndex,
                address: address,
                segment: segment,
                network: network,
                backend: backend
            ) {
                refused.append(refusal)
            } else if seen.insert(route.subnet).inserted {  // a duplicate subnet: the first route given wins
                accepted.append(route)
            }
        }

        var handled = Set<KernelRouteOf<Address>>()
        for route in accepted {
            let desired = KernelRouteOf(
                destination: route.subnet,
                gateway: route.publicAddress,
                interfaceIndex: interfaceIndex,
                routeProtocol: ours
            )
            let current = owned.filter { $0.destination == route.subnet }
            if let existing = current.first(where: { Self.matches($0, desired) }) {
                kept.append(existing)
                handled.insert(existing)
            } else if let inPlace = current.first(where: { $0.priority == desired.priority }) {
                steps.append(Step(route: route, desired: desired, replacing: inPlace))
                handled.insert(inPlace)
            } else {
                steps.append(Step(route: route, desired: desired, replacing: nil))
            }
        }
        removals = owned.filter { !handled.contains($0) }
    }

    /// Exactly what Weft would install: same gateway and device, default metric, unicast.
    static func matches(_ route: KernelRouteOf<Address>, _ desired: KernelRouteOf<Address>) -> Bool {
        route.destination == desired.destination && route.gateway == desired.gateway
            && route.interfaceIndex == desired.interfaceIndex && route.priority == desired.priority
            && route.type == desired.type
    }

    static func refusal(
        _ route: Peer,
        foreign: KernelRouteOf<Address>?,
        interfaceIndex: Int32,
        address: Address,
        segment: Address.Prefix,
        network: Address.Prefix,
        backend: Backend = .hostGateway
    ) -> Keeper.Refusal? {
        let peer =
            "\(Keeper.logPrefix(backend)): refusing peer \(route.subnet) at \(route.publicAddress.map { "\($0)" } ?? "-")"
        func refuse(_ reason: Keeper.RefusalReason, _ why: String) -> Keeper.Refusal {
            Keeper.Refusal(route: route, reason: reason, description: "\(peer): \(why)")
        }
        guard let gateway = route.publicAddress else {
            return refuse(
                .noPublicAddress,
                "its lease has no PublicIPv6 to route its IPv6 subnet via; give that host an IPv6 address on its interface (or --public-ipv6) and restart its flanneld or weftd"
            )
        }
        if route.backend != backend {
            return refuse(
                .otherBackend,
                "its lease is for the \(route.backend.rawValue) backend, not \(backend.rawValue); all hosts of a network must use one backend"
            )
        }
        if !network.contains(route.subnet) {
            return refuse(.outsideNetwork, "the subnet is outside the Network \(network)")
        }
        if gateway == address {
            return refuse(.ownAddress, "that PublicIP is our own interface address; two hosts claim it")
        }
        if !segment.contains(gateway) {
            return refuse(
                .offSegment,
                "\(gateway) is not on our L2 segment \(segment) (interface index \(interfaceIndex)); host-gw needs every host on one L2 segment, use the vxlan backend"
            )
        }
        if let foreign {
            return refuse(
                .foreignRoute,
                "the main table already has \(foreign), which Weft did not add and will not change; delete it to let host-gw route this subnet"
            )
        }
        return nil
    }
}
