import Addressing
import Routes
import Synchronization

/// The peers' underlay addresses as the running dataplane's peer watcher publishes them, handed on
/// to the one follower (the port filter of `LeaseTrafficRules`). Every dataplane's watcher feeds it
/// through `PeerFollowing`, on the watcher's task after a publish: never on the packet path.
final class PeerAddressFeed: Sendable {
    private let follower = Mutex<(@Sendable (PeerAddresses) -> Void)?>(nil)

    /// Hands every later publication's addresses to `follower`, replacing an earlier one.
    func follow(_ follower: @escaping @Sendable (PeerAddresses) -> Void) {
        self.follower.withLock { $0 = follower }
    }

    /// A publication's routes and IPv6 halves: each peer's PublicIP and PublicIPv6 once, whatever
    /// number of subnets it routes.
    func publish(_ routes: [Route], ipv6: [IPv6Peer] = []) {
        guard let follower = follower.withLock({ $0 }) else { return }
        follower(PeerAddresses(ipv4: Set(routes.map(\.nextHop.publicIP)), ipv6: Set(ipv6.compactMap(\.publicIPv6))))
    }
}

/// The peers' PublicIPs, and the PublicIPv6 of those whose lease publishes one (a dual-stack network).
struct PeerAddresses: Equatable, Sendable {
    var ipv4: Set<IPv4Address>
    /// Nil when not known: an earlier run's IPv4 set was found at startup but no IPv6 one.
    var ipv6: Set<IPv6Address>? = []
}
