import Addressing

/// IPv6 next-header values Weft looks at (RFC 8200 §4, IANA protocol numbers).
public enum IPv6NextHeader {
    public static let hopByHop: UInt8 = 0
    public static let routing: UInt8 = 43
    public static let fragment: UInt8 = 44
    public static let encapsulatingSecurityPayload: UInt8 = 50
    public static let authentication: UInt8 = 51
    public static let icmpv6: UInt8 = 58
    public static let noNextHeader: UInt8 = 59
    public static let destinationOptions: UInt8 = 60

    /// An extension header (RFC 8200 §4.1 and the IANA list): what follows the fixed header is
    /// not the upper-layer header. Mobility, HIP and shim6 (135, 139, 140) count, so that a packet
    /// carrying them is never taken for TCP or UDP.
    @inlinable
    public static func isExtensionHeader(_ value: UInt8) -> Bool {
        switch value {
        case hopByHop, routing, fragment, encapsulatingSecurityPayload, authentication, destinationOptions, 135, 139,
            140:
            true
        default:
            false
        }
    }
}

/// A view of the 40-byte fixed IPv6 header at `bytes` (RFC 8200 §3). It reads and writes the
/// fields in place and checks nothing: run `IPv6.validate` on the packet first, which guarantees
/// the 40 bytes and the payload length are inside the buffer. Extension headers, if any, follow
/// the fixed header and are not part of this view.
public struct IPv6Header {
    public let bytes: UnsafeMutableRawPointer

    public static let length = 40
    /// The smallest MTU every IPv6 link carries (RFC 8200 §5): ICMPv6 errors fit in it.
    public static let minimumMTU = 1280

    @inlinable public init(_ bytes: UnsafeMutableRawPointer) { self.bytes = bytes }
    @inlinable public init(_ packet: PacketBuffer) { bytes = packet.start }

    @inlinable public var version: UInt8 { bytes.load(as: UInt8.self) >> 4 }

    /// The 8 bits between version and flow label: DSCP and ECN, as IPv4's TOS byte.
    @inlinable public var trafficClass: UInt8 {
        UInt8(truncatingIfNeeded: UInt32(bigEndian: bytes.loadUnaligned(as: UInt32.self)) >> 20)
    }

    @inlinable public var flowLabel: UInt32 { UInt32(bigEndian: bytes.loadUnaligned(as: UInt32.self)) & 0xF_FFFF }

    /// Bytes after the fixed header: extension headers and the upper-layer packet.
    @inlinable public var payloadLength: Int {
        get { Int(UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt16.self))) }
        nonmutating set {
            bytes.storeBytes(of: UInt16(truncatingIfNeeded: newValue).bigEndian, toByteOffset: 4, as: UInt16.self)
        }
    }

    /// The fixed header and payload: what IPv4 calls the total length.
    @inlinable public var totalLength: Int { IPv6Header.length + payloadLength }

    @inlinable public var nextHeader: UInt8 {
        get { bytes.load(fromByteOffset: 6, as: UInt8.self) }
        nonmutating set { bytes.storeBytes(of: newValue, toByteOffset: 6, as: UInt8.self) }
    }

    @inlinable public var hopLimit: UInt8 {
        get { bytes.load(fromByteOffset: 7, as: UInt8.self) }
        nonmutating set { bytes.storeBytes(of: newValue, toByteOffset: 7, as: UInt8.self) }
    }

    @inlinable public var source: IPv6Address {
        get { IPv6Address(loadingFrom: bytes + 8) }
        nonmutating set { newValue.store(to: bytes + 8) }
    }

    @inlinable public var destination: IPv6Address {
        get { IPv6Address(loadingFrom: bytes + 24) }
        nonmutating set { newValue.store(to: bytes + 24) }
    }

    /// Writes a whole fixed header: version 6, `trafficClass`, flow label 0.
    @inlinable
    public func initialize(
        payloadLength: Int,
        nextHeader: UInt8,
        hopLimit: UInt8,
        source: IPv6Address,
        destination: IPv6Address,
        trafficClass: UInt8 = 0
    ) {
        bytes.storeBytes(of: (UInt32(6) << 28 | UInt32(trafficClass) << 20).bigEndian, as: UInt32.self)
        self.payloadLength = payloadLength
        self.nextHeader = nextHeader
        self.hopLimit = hopLimit
        self.source = source
        self.destination = destination
    }

    /// The sum of the pseudo-header a TCP, UDP or ICMPv6 checksum covers (RFC 8200 §8.1) for an
    /// upper-layer packet of `length` bytes behind this header. The addresses are this header's:
    /// with a routing header the final destination would differ, which is why packets with
    /// extension headers are never checksummed by Weft.
    @inlinable
    public func pseudoHeaderSum(nextHeader: UInt8, length: Int) -> InternetChecksum.Sum {
        InternetChecksum.pseudoHeaderSum(addresses: bytes + 8, nextHeader: nextHeader, length: length)
    }
}
