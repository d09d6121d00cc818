/// The few IPv4, IPv6, TCP and UDP field offsets and big-endian accessors that segmentation and
/// coalescing need, on raw pointers. Kept to these files so they stay independent of the module's
/// IP views.
enum GSOFields {
    // IPv4 (offsets from the IP header).
    static let ipVersionIHL = 0
    static let ipTypeOfService = 1
    static let ipTotalLength = 2
    static let ipIdentification = 4
    static let ipFlagsFragment = 6
    static let ipProtocol = 9
    static let ipChecksum = 10
    static let ipSource = 12
    static let ipDestination = 16
    static let ipMinimumHeader = 20
    /// MF flag and 13-bit fragment offset: a packet with any of these set is a fragment.
    static let ipMoreFragmentsOrOffset: UInt16 = 0x3FFF
    static let ipFragmentOffset: UInt16 = 0x1FFF
    // IPv6 (offsets from the fixed header, which is all Weft segments or coalesces behind).
    static let ip6VersionClassFlow = 0
    static let ip6PayloadLength = 4
    static let ip6NextHeader = 6
    static let ip6HopLimit = 7
    static let ip6Source = 8
    static let ip6Header = 40

    static let protocolTCP: UInt8 = 6
    static let protocolUDP: UInt8 = 17

    // TCP (offsets from the TCP header).
    static let tcpSequence = 4
    static let tcpAcknowledgment = 8
    static let tcpDataOffset = 12
    static let tcpFlags = 13
    static let tcpChecksum = 16
    static let tcpMinimumHeader = 20

    static let tcpFIN: UInt8 = 0x01
    static let tcpSYN: UInt8 = 0x02
    static let tcpRST: UInt8 = 0x04
    static let tcpPSH: UInt8 = 0x08
    static let tcpURG: UInt8 = 0x20
    static let tcpCWR: UInt8 = 0x80

    // UDP (offsets from the UDP header).
    static let udpLength = 4
    static let udpChecksum = 6
    static let udpHeader = 8

    @inline(__always)
    static func load8(_ bytes: UnsafeRawPointer, _ offset: Int) -> UInt8 {
        bytes.load(fromByteOffset: offset, as: UInt8.self)
    }

    @inline(__always)
    static func load16(_ bytes: UnsafeRawPointer, _ offset: Int) -> UInt16 {
        UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inline(__always)
    static func load32(_ bytes: UnsafeRawPointer, _ offset: Int) -> UInt32 {
        UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    /// A 32-bit word as it sits in memory, for the pseudo-header sum and for equality tests.
    @inline(__always)
    static func loadRaw32(_ bytes: UnsafeRawPointer, _ offset: Int) -> UInt32 {
        bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
    }

    @inline(__always)
    static func store16(_ bytes: UnsafeMutableRawPointer, _ offset: Int, _ value: UInt16) {
        bytes.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt16.self)
    }

    @inline(__always)
    static func store32(_ bytes: UnsafeMutableRawPointer, _ offset: Int, _ value: UInt32) {
        bytes.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt32.self)
    }

    /// Stores a checksum already in memory order (as `InternetChecksum.finalize` returns it).
    @inline(__always)
    static func storeChecksum(_ bytes: UnsafeMutableRawPointer, _ offset: Int, _ value: UInt16) {
        bytes.storeBytes(of: value, toByteOffset: offset, as: UInt16.self)
    }

    /// Recomputes the IPv4 header checksum in place.
    @inline(__always)
    static func refreshIPChecksum(_ ip: UnsafeMutableRawPointer, headerLength: Int) {
        storeChecksum(ip, ipChecksum, 0)
        storeChecksum(ip, ipChecksum, InternetChecksum.checksum(ip, count: headerLength))
    }

    /// Pseudo-header sum for a transport segment of `length` bytes behind the IPv4 header at `ip`.
    @inline(__always)
    static func pseudoHeaderSum(_ ip: UnsafeRawPointer, protocol proto: UInt8, length: Int) -> InternetChecksum.Sum {
        InternetChecksum.pseudoHeaderSum(
            source: loadRaw32(ip, ipSource),
            destination: loadRaw32(ip, ipDestination),
            protocol: proto,
            length: length
        )
    }

    /// The same behind the IPv4 or (`isIPv6`) the IPv6 fixed header at `ip` (RFC 8200 §8.1).
    @inline(__always)
    static func pseudoHeaderSum(
        _ ip: UnsafeRawPointer,
        isIPv6: Bool,
        protocol proto: UInt8,
        length: Int
    ) -> InternetChecksum.Sum {
        isIPv6
            ? InternetChecksum.pseudoHeaderSum(addresses: ip + ip6Source, nextHeader: proto, length: length)
            : pseudoHeaderSum(ip, protocol: proto, length: length)
    }

    /// Sets the IP length field of a packet of `length` bytes whose IP header is `ipHeaderLength`
    /// bytes: IPv4's total length (and a fresh header checksum), IPv6's payload length.
    @inline(__always)
    static func storeIPLength(_ ip: UnsafeMutableRawPointer, isIPv6: Bool, length: Int, ipHeaderLength: Int) {
        if isIPv6 {
            store16(ip, ip6PayloadLength, UInt16(length - ip6Header))
        } else {
            store16(ip, ipTotalLength, UInt16(length))
            refreshIPChecksum(ip, headerLength: ipHeaderLength)
        }
    }
}
