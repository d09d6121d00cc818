import Addressing
import ControlPlane
import Routes
import Status
import Synchronization

/// A dual-stack lease's IPv6 side as /v1/routes shows it: the IPv6Network, our IPv6 subnet and
/// the last publication's IPv6 peers (the IPv4 table has its own publisher; these have none the
/// reports can read). Each peer is shown with the address its packets go to: the PublicIPv6 for a
/// kernel dataplane (host-gw, flannel-v6), the IPv4 PublicIP for the engine over the IPv4
/// underlay, and for the engine with vxlan's IPv6 underlay whichever its route takes.
final class IPv6Side: Sendable {
    enum Underlay: Sendable {
        case ipv4
        case ipv6
        /// The engine with vxlan's IPv6 underlay: a peer with PublicIPv6 over it, others over IPv4.
        case perPeer
    }

    let network: IPv6Prefix
    let localSubnet: IPv6Prefix
    private let underlay: Underlay
    private let peers = Mutex<[IPv6Peer]>([])

    /// Nil for an IPv4-only lease.
    init?(_ lease: AcquiredLease, underlay: Underlay) {
        guard let localSubnet = lease.ipv6Subnet, let network = lease.config.ipv6?.network else { return nil }
        self.network = network
        self.localSubnet = localSubnet
        self.underlay = underlay
    }

    /// Each publication's peers, from the watcher's callback.
    func record(_ peers: [IPv6Peer]) {
        self.peers.withLock { $0 = peers }
    }

    var report: RoutesReport.IPv6Routes {
        let peers = peers.withLock { $0 }
        return RoutesReport.IPv6Routes(
            network: "\(network)",
            localSubnet: "\(localSubnet)",
            routes: peers.sorted { $0.subnet.network < $1.subnet.network }.map { peer in
                let sentTo: String =
                    switch underlay {
                    case .ipv4: "\(peer.nextHop.publicIP)"
                    case .ipv6: peer.publicIPv6.map { "\($0)" } ?? "-"
                    case .perPeer:
                        peer.route.hasIPv6Underlay ? "\(peer.route.publicIPv6)" : "\(peer.nextHop.publicIP)"
                    }
                return RoutesReport.Entry(
                    subnet: "\(peer.subnet)",
                    publicIP: sentTo,
                    port: underlay != .ipv6 && peer.nextHop.backend != .hostGateway ? peer.nextHop.port : nil,
                    backend: peer.nextHop.backend.rawValue,
                    vtepMAC: peer.vtepMAC.map { "\($0)" }
                )
            }
        )
    }
}
