import Addressing

/// IP protocol numbers Weft looks at.
public enum IPProtocol {
    public static let icmp: UInt8 = 1
    public static let tcp: UInt8 = 6
    public static let udp: UInt8 = 17
}

/// A view of the IPv4 header at `bytes`. It reads and writes the fields in place and checks
/// nothing: run `IPv4.validate` on the packet first, which guarantees the 20 fixed bytes and
/// the options IHL claims are all inside the buffer.
public struct IPv4Header {
    public let bytes: UnsafeMutableRawPointer

    public static let minimumLength = 20
    /// IHL is 4 bits of 32-bit words: 15·4.
    public static let maximumLength = 60

    @inlinable public init(_ bytes: UnsafeMutableRawPointer) { self.bytes = bytes }
    @inlinable public init(_ packet: PacketBuffer) { bytes = packet.start }

    @inlinable func load16(_ offset: Int) -> UInt16 {
        UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inlinable func store16(_ value: UInt16, at offset: Int) {
        bytes.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt16.self)
    }

    @inlinable public var version: UInt8 { bytes.load(as: UInt8.self) >> 4 }

    /// IHL·4: bytes of header including options.
    @inlinable public var headerLength: Int { Int(bytes.load(as: UInt8.self) & 0x0F) << 2 }

    /// Bytes of header and payload as the header states them.
    @inlinable public var totalLength: Int {
        get { Int(load16(2)) }
        nonmutating set { store16(UInt16(truncatingIfNeeded: newValue), at: 2) }
    }

    @inlinable public var identification: UInt16 {
        get { load16(4) }
        nonmutating set { store16(newValue, at: 4) }
    }

    /// The 3 flag bits: 0x4 reserved, 0x2 don't fragment, 0x1 more fragments.
    @inlinable public var flags: UInt8 { bytes.load(fromByteOffset: 6, as: UInt8.self) >> 5 }
    @inlinable public var dontFragment: Bool { flags & 0x2 != 0 }
    @inlinable public var moreFragments: Bool { flags & 0x1 != 0 }

    /// Offset of this fragment's data in the original datagram, in 8-byte units.
    @inlinable public var fragmentOffset: UInt16 { load16(6) & 0x1FFF }

    /// Part of a fragmented datagram: more fragments follow, or this one is not the first.
    @inlinable public var isFragment: Bool { load16(6) & 0x3FFF != 0 }

    /// Carries the start of its datagram's payload (offset 0), so the transport header is here;
    /// true for an unfragmented packet too.
    @inlinable public var isFirstFragment: Bool { fragmentOffset == 0 }

    @inlinable public var ttl: UInt8 {
        get { bytes.load(fromByteOffset: 8, as: UInt8.self) }
        nonmutating set { bytes.storeBytes(of: newValue, toByteOffset: 8, as: UInt8.self) }
    }

    @inlinable public var `protocol`: UInt8 {
        get { bytes.load(fromByteOffset: 9, as: UInt8.self) }
        nonmutating set { bytes.storeBytes(of: newValue, toByteOffset: 9, as: UInt8.self) }
    }

    /// Header checksum as the number on the wire (what tcpdump prints).
    @inlinable public var checksum: UInt16 {
        get { load16(10) }
        nonmutating set { store16(newValue, at: 10) }
    }

    @inlinable public var source: IPv4Address {
        get { IPv4Address(networkOrder: bytes.loadUnaligned(fromByteOffset: 12, as: UInt32.self)) }
        nonmutating set { bytes.storeBytes(of: newValue.networkOrder, toByteOffset: 12, as: UInt32.self) }
    }

    @inlinable public var destination: IPv4Address {
        get { IPv4Address(networkOrder: bytes.loadUnaligned(fromByteOffset: 16, as: UInt32.self)) }
        nonmutating set { bytes.storeBytes(of: newValue.networkOrder, toByteOffset: 16, as: UInt32.self) }
    }

    /// The checksum the header should carry (wire number), whatever the field holds now.
    @inlinable public var computedChecksum: UInt16 {
        let length = headerLength
        // Sum with the field's current content subtracted out, so the header is not written.
        let field = bytes.loadUnaligned(fromByteOffset: 10, as: UInt16.self)
        let sum = InternetChecksum.sum(bytes, count: length) &+ InternetChecksum.Sum(~field)
        return UInt16(bigEndian: InternetChecksum.finalize(sum))
    }

    /// Computes the header checksum and writes it into the header.
    @inlinable public func storeChecksum() {
        bytes.storeBytes(of: 0, toByteOffset: 10, as: UInt16.self)
        let value = InternetChecksum.checksum(bytes, count: headerLength)
        bytes.storeBytes(of: value, toByteOffset: 10, as: UInt16.self)
    }

    /// The header, options included, sums to all ones.
    @inlinable public var hasValidChecksum: Bool { InternetChecksum.isValid(bytes, count: headerLength) }
}
