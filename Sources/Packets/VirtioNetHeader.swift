/// `struct virtio_net_hdr` (include/uapi/linux/virtio_net.h): the 10 bytes a TUN opened with
/// IFF_VNET_HDR puts in front of every packet it hands out and expects in front of every packet
/// written to it. It tells whether the packet is a GSO super-packet to be cut into `gsoSize`
/// payloads, and whether its transport checksum was left partial.
///
/// Multi-byte fields are little-endian ("virtio LE"): a TUN uses its native order, which is little
/// on x86-64 and arm64; a big-endian host would have to set TUNSETVNETLE for this layout to hold.
public struct VirtioNetHeader: Equatable, Hashable, Sendable {
    public static let size = 10

    public var flags: Flags
    public var gsoType: GSOType
    /// Bytes of headers (IP + transport) in a GSO packet. Linux fills it from `skb_headlen`, a hint
    /// that may exceed the real headers (a forwarded packet's whole linear part) but never falls short.
    public var headerLength: UInt16
    /// Payload bytes per segment (the MSS for TCP).
    public var gsoSize: UInt16
    /// Offset from the packet start where the checksummed region begins (the transport header).
    public var checksumStart: UInt16
    /// Offset from `checksumStart` of the checksum field: 16 for TCP, 6 for UDP.
    public var checksumOffset: UInt16

    public struct Flags: OptionSet, Hashable, Sendable {
        public let rawValue: UInt8
        @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// VIRTIO_NET_HDR_F_NEEDS_CSUM: the field at checksumStart + checksumOffset holds only the
        /// pseudo-header sum (Linux CHECKSUM_PARTIAL); the rest is to be summed from checksumStart on.
        public static let needsChecksum = Flags(rawValue: 1)
        /// VIRTIO_NET_HDR_F_DATA_VALID: the checksum was already verified.
        public static let dataValid = Flags(rawValue: 2)
    }

    /// `gso_type`: a kind in the low bits, plus the ECN bit (0x80) meaning the TCP super-packet
    /// carries CWR, which segmentation keeps on the first segment only.
    public struct GSOType: RawRepresentable, Hashable, Sendable {
        public let rawValue: UInt8
        @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let none = GSOType(rawValue: 0)
        public static let tcpV4 = GSOType(rawValue: 1)
        /// UFO (IPv4 fragmentation of one UDP datagram); never produced by the kernels Weft runs on.
        public static let udp = GSOType(rawValue: 3)
        public static let tcpV6 = GSOType(rawValue: 4)
        /// USO: UDP datagrams of `gsoSize` payload each.
        public static let udpL4 = GSOType(rawValue: 5)
        public static let ecnBit: UInt8 = 0x80

        /// The kind without the ECN bit.
        @inlinable public var kind: GSOType { GSOType(rawValue: rawValue & ~Self.ecnBit) }
        @inlinable public var hasECN: Bool { rawValue & Self.ecnBit != 0 }
        @inlinable public func withECN(_ ecn: Bool) -> GSOType {
            GSOType(rawValue: ecn ? rawValue | Self.ecnBit : rawValue & ~Self.ecnBit)
        }
    }

    /// The header of a plain packet: no GSO, checksum complete.
    public static let plain = VirtioNetHeader()

    @inlinable
    public init(
        flags: Flags = [],
        gsoType: GSOType = .none,
        headerLength: UInt16 = 0,
        gsoSize: UInt16 = 0,
        checksumStart: UInt16 = 0,
        checksumOffset: UInt16 = 0
    ) {
        self.flags = flags
        self.gsoType = gsoType
        self.headerLength = headerLength
        self.gsoSize = gsoSize
        self.checksumStart = checksumStart
        self.checksumOffset = checksumOffset
    }

    /// Decodes the 10 bytes at `bytes` (no alignment required).
    @inlinable
    public init(loadingFrom bytes: UnsafeRawPointer) {
        self.init(
            flags: Flags(rawValue: bytes.load(fromByteOffset: 0, as: UInt8.self)),
            gsoType: GSOType(rawValue: bytes.load(fromByteOffset: 1, as: UInt8.self)),
            headerLength: UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2, as: UInt16.self)),
            gsoSize: UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt16.self)),
            checksumStart: UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 6, as: UInt16.self)),
            checksumOffset: UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt16.self))
        )
    }

    /// Encodes into the 10 bytes at `bytes` (no alignment required).
    @inlinable
    public func store(to bytes: UnsafeMutableRawPointer) {
        bytes.storeBytes(of: flags.rawValue, toByteOffset: 0, as: UInt8.self)
        bytes.storeBytes(of: gsoType.rawValue, toByteOffset: 1, as: UInt8.self)
        bytes.storeBytes(of: headerLength.littleEndian, toByteOffset: 2, as: UInt16.self)
        bytes.storeBytes(of: gsoSize.littleEndian, toByteOffset: 4, as: UInt16.self)
        bytes.storeBytes(of: checksumStart.littleEndian, toByteOffset: 6, as: UInt16.self)
        bytes.storeBytes(of: checksumOffset.littleEndian, toByteOffset: 8, as: UInt16.self)
    }

    /// Checks the header on its own against the length of the packet it precedes; `nil` when
    /// consistent. Consistency with the packet's IP and transport headers is checked by
    /// `Segmentation`, which knows them. Unknown flag bits are ignored, as Linux does.
    @inlinable
    public func validate(packetLength: Int) -> DropReason? {
        let kind = gsoType.kind
        switch kind {
        case .none, .udp, .udpL4:
            if gsoType.hasECN { return .badVirtioHeader }
        case .tcpV4, .tcpV6:
            break
        default:
            return .badVirtioHeader
        }
        if kind != .none {
            if gsoSize == 0 || headerLength == 0 || Int(headerLength) > packetLength { return .badVirtioHeader }
        }
        if flags.contains(.needsChecksum) {
            if Int(checksumStart) + Int(checksumOffset) + 2 > packetLength { return .badVirtioHeader }
        }
        return nil
    }
}
