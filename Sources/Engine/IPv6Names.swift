import Addressing
import Glibc
import Routes

/// Reading and writing the sockaddr_in6 of the IPv6 underlay (the loops name peers with it).
enum IPv6Names {
    /// Where sin6_addr sits (after family, port and flow info), fixed by the Linux ABI.
    static var addressOffset: Int { 8 }

    /// `name` now names [hop.address]:hop.port.
    @inline(__always)
    static func set(_ name: UnsafeMutablePointer<sockaddr_in6>, _ hop: IPv6Hop) {
        name.pointee.sin6_family = sa_family_t(AF_INET6)
        name.pointee.sin6_port = hop.port.bigEndian
        hop.address.store(to: UnsafeMutableRawPointer(name) + addressOffset)
    }

    /// The address `name` holds.
    @inline(__always)
    static func address(_ name: UnsafePointer<sockaddr_in6>) -> IPv6Address {
        IPv6Address(loadingFrom: UnsafeRawPointer(name) + addressOffset)
    }
}
