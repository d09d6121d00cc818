import Addressing
import Routes
import Synchronization

/// The peers' PublicIPs as the running dataplane's peer watcher publishes them, handed on to the
/// one follower (the port filter of `LeaseTrafficRules`). Every dataplane's watcher feeds it
/// through `PeerFollowing`, on the watcher's task after a publish: never on the packet path.
final class PeerAddressFeed: Sendable {
    private let follower = Mutex<(@Sendable (Set<IPv4Address>) -> Void)?>(nil)

    /// Hands every later publication's addresses to `follower`, replacing an earlier one.
    func follow(_ follower: @escaping @Sendable (Set<IPv4Address>) -> Void) {
        self.follower.withLock { $0 = follower }
    }

    /// A publication's routes: each peer's PublicIP once, whatever number of subnets it routes.
    func publish(_ routes: [Route]) {
        guard let follower = follower.withLock({ $0 }) else { return }
        follower(Set(routes.map(\.nextHop.publicIP)))
    }
}
