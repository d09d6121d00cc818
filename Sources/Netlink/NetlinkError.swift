import SystemCalls

/// A netlink request the kernel refused, or a reply that did not parse: which request, on what,
/// and the errno (EBADMSG for a malformed reply). The project's one errno error type.
public typealias NetlinkError = SystemCallError
