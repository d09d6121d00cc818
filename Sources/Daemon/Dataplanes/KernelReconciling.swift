import Netlink
import Routes

/// What a `KernelKeeper` holds: kernel state a dataplane programs from the peer routes (host-gw
/// routes, a kernel vxlan device's entries, DirectRouting's routes).
protocol KernelReconciling: ~Copyable, Sendable {
    /// Makes the kernel's state a publication's.
    mutating func reconcileKernel(to wanted: [Route]) throws(NetlinkError)
    /// Makes it the last publication's again: puts back what someone removed, retries a failure.
    mutating func resyncKernel() throws(NetlinkError)
}
