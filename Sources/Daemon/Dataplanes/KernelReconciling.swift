import Netlink
import Routes

/// What a `KernelKeeper` holds: kernel state a dataplane programs from the peer routes (host-gw
/// routes, a kernel vxlan device's entries, DirectRouting's routes).
protocol KernelReconciling: ~Copyable, Sendable {
    /// Makes the kernel's state a publication's: its IPv4 routes and its peers' IPv6 halves
    /// (empty when the network has no IPv6; a keeper of one family ignores the other).
    mutating func reconcileKernel(to routes: [Route], ipv6: [IPv6Peer]) throws(NetlinkError)
    /// Makes it the last publication's again: puts back what someone removed, retries a failure.
    mutating func resyncKernel() throws(NetlinkError)
}

/// Runs both families' part of a reconcile or resync even when the first fails, so a problem in
/// one family's table does not hold the other's entries back; throws the first failure.
func eachFamily(
    _ ipv4: () throws(NetlinkError) -> Void,
    _ ipv6: () throws(NetlinkError) -> Void
) throws(NetlinkError) {
    var failure: NetlinkError?
    do { try ipv4() } catch { failure = error }
    do { try ipv6() } catch { failure = failure ?? error }
    if let failure { throw failure }
}
