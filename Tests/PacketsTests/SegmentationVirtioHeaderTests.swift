import Packets
import TestSupport
import Testing

@Test func decodesAndEncodesLittleEndianVirtioHeader() {
    // flags NEEDS_CSUM, gso TCPV4|ECN, hdr_len 66, gso_size 1398 (0x0576), csum_start 20, csum_offset 16.
    let wire: [UInt8] = [0x01, 0x81, 0x42, 0x00, 0x76, 0x05, 0x14, 0x00, 0x10, 0x00]
    let header = wire.withUnsafeBytes { VirtioNetHeader(loadingFrom: $0.baseAddress!) }
    #expect(header.flags == .needsChecksum)
    #expect(header.gsoType.kind == .tcpV4)
    #expect(header.gsoType.hasECN)
    #expect(header.headerLength == 66)
    #expect(header.gsoSize == 1398)
    #expect(header.checksumStart == 20)
    #expect(header.checksumOffset == 16)

    var encoded = [UInt8](repeating: 0xEE, count: 12)
    encoded.withUnsafeMutableBytes { header.store(to: $0.baseAddress! + 1) }
    #expect(encoded == [0xEE] + wire + [0xEE])
    #expect(VirtioNetHeader.size == 10)
}

@Test func virtioHeaderRoundTripsEveryField() {
    var random = SplitMix64(seed: 99)
    for _ in 0..<200 {
        let header = VirtioNetHeader(
            flags: .init(rawValue: .random(in: 0...255, using: &random)),
            gsoType: .init(rawValue: .random(in: 0...255, using: &random)),
            headerLength: .random(in: 0...0xFFFF, using: &random),
            gsoSize: .random(in: 0...0xFFFF, using: &random),
            checksumStart: .random(in: 0...0xFFFF, using: &random),
            checksumOffset: .random(in: 0...0xFFFF, using: &random)
        )
        var bytes = [UInt8](repeating: 0, count: 11)
        bytes.withUnsafeMutableBytes { header.store(to: $0.baseAddress! + 1) }
        #expect(bytes[1] == header.flags.rawValue && bytes[2] == header.gsoType.rawValue)
        #expect(UInt16(bytes[9]) | UInt16(bytes[10]) << 8 == header.checksumOffset)
        #expect(bytes.withUnsafeBytes { VirtioNetHeader(loadingFrom: $0.baseAddress! + 1) } == header)
    }
}

@Test func gsoTypeECNBit() {
    #expect(VirtioNetHeader.GSOType.tcpV4.withECN(true).rawValue == 0x81)
    #expect(VirtioNetHeader.GSOType(rawValue: 0x81).withECN(false) == .tcpV4)
    #expect(VirtioNetHeader.GSOType(rawValue: 0x84).kind == .tcpV6)
    #expect(!VirtioNetHeader.GSOType.udpL4.hasECN)
}

@Test func validatesVirtioHeaderOnItsOwn() {
    let tso = VirtioNetHeader(
        flags: .needsChecksum,
        gsoType: .tcpV4,
        headerLength: 52,
        gsoSize: 1398,
        checksumStart: 20,
        checksumOffset: 16
    )
    #expect(tso.validate(packetLength: 64_052) == nil)
    #expect(VirtioNetHeader.plain.validate(packetLength: 0) == nil)
    // DATA_VALID and unknown flag bits are not reasons to drop.
    #expect(VirtioNetHeader(flags: .init(rawValue: 0x06)).validate(packetLength: 40) == nil)
    var ecn = tso
    ecn.gsoType = tso.gsoType.withECN(true)
    #expect(ecn.validate(packetLength: 64_052) == nil)

    var bad = tso
    bad.gsoSize = 0
    #expect(bad.validate(packetLength: 64_052) == .badVirtioHeader)
    bad = tso
    bad.headerLength = 0
    #expect(bad.validate(packetLength: 64_052) == .badVirtioHeader)
    bad = tso
    #expect(bad.validate(packetLength: 51) == .badVirtioHeader)  // hdr_len past the packet
    bad.gsoType = .init(rawValue: 2)
    #expect(bad.validate(packetLength: 64_052) == .badVirtioHeader)
    bad.gsoType = .init(rawValue: 6)
    #expect(bad.validate(packetLength: 64_052) == .badVirtioHeader)
    bad.gsoType = VirtioNetHeader.GSOType.udpL4.withECN(true)
    #expect(bad.validate(packetLength: 64_052) == .badVirtioHeader)
    let partial = VirtioNetHeader(flags: .needsChecksum, checksumStart: 20, checksumOffset: 16)
    #expect(partial.validate(packetLength: 38) == nil)
    #expect(partial.validate(packetLength: 37) == .badVirtioHeader)
    #expect(DropReason.badVirtioHeader.description == "bad_virtio_header")
    #expect(DropReason.badTCPHeader.description == "bad_tcp_header")
}
