import Addressing
import TestSupport
import Testing

@testable import Packets

@Suite struct VXLANTests {
    let buffer = TestBuffer()
    let ours = MACAddress("02:00:00:00:00:01")!
    let peer = MACAddress("0e:2a:bb:cc:dd:ee")!

    @Test func overheadIs22() {
        #expect(VXLAN.overhead == 22)
        #expect(VXLAN.defaultPort == 8472)
    }

    @Test func encapsulatedBytesAreRFC7348() {
        let inner = makeIPv4()
        var packet = buffer.packet(inner, headroom: 64)
        #expect(VXLAN.encapsulate(&packet, vni: 1, source: ours, destination: peer))
        #expect(packet.headroom == 42 && packet.length == inner.count + 22)
        let bytes = packet.bytes
        #expect(Array(bytes[0..<8]) == [0x08, 0, 0, 0, 0, 0, 0x01, 0])
        #expect(Array(bytes[8..<14]) == [0x0e, 0x2a, 0xbb, 0xcc, 0xdd, 0xee])
        #expect(Array(bytes[14..<20]) == [0x02, 0, 0, 0, 0, 0x01])
        #expect(Array(bytes[20..<22]) == [0x08, 0x00])
        #expect(Array(bytes[22...]) == inner)
    }

    @Test(
        arguments: [
            (UInt32(1), [UInt8(0), 0, 1]), (UInt32(0x123456), [UInt8(0x12), 0x34, 0x56]),
            (UInt32(0xFF_FFFF), [UInt8(0xFF), 0xFF, 0xFF]), (UInt32(4096), [UInt8(0), 0x10, 0]),
        ] as [(UInt32, [UInt8])]
    )
    func vniSitsInTheUpper24Bits(vni: UInt32, expected: [UInt8]) {
        var packet = buffer.packet(makeIPv4())
        #expect(VXLAN.encapsulate(&packet, vni: vni, source: ours, destination: peer))
        #expect(Array(packet.bytes[4..<8]) == expected + [0])
    }

    @Test func encapsulateNeedsHeadroom() {
        var packet = buffer.packet(makeIPv4(), headroom: 21)
        #expect(!VXLAN.encapsulate(&packet, vni: 1, source: ours, destination: peer))
        #expect(packet.headroom == 21)
        var exact = buffer.packet(makeIPv4(), headroom: 22)
        #expect(VXLAN.encapsulate(&exact, vni: 1, source: ours, destination: peer))
        #expect(exact.headroom == 0)
    }

    @Test func roundTripGivesIdenticalInnerBytes() {
        var random = SplitMix64(seed: 7348)
        for _ in 0..<200 {
            let inner = makeIPv4(
                ttl: UInt8.random(in: 0...255, using: &random),
                payload: (0..<Int.random(in: 0...1400, using: &random)).map { _ in
                    UInt8.random(in: 0...255, using: &random)
                }
            )
            let vni = UInt32.random(in: 0...0xFF_FFFF, using: &random)
            var packet = buffer.packet(inner, headroom: 64)
            #expect(VXLAN.encapsulate(&packet, vni: vni, source: peer, destination: ours))
            #expect(VXLAN.decapsulate(&packet, vni: vni, localMAC: ours) == nil)
            #expect(packet.headroom == 64)
            #expect(packet.bytes == inner)
        }
    }

    /// A frame as the kernel sends it: VXLAN header, inner Ethernet, inner IPv4.
    func frame(
        flags: UInt8 = 0x08,
        vni: [UInt8] = [0, 0, 1],
        reserved: UInt8 = 0,
        destination: [UInt8] = [2, 0, 0, 0, 0, 1],
        etherType: [UInt8] = [0x08, 0x00],
        inner: [UInt8] = makeIPv4()
    ) -> [UInt8] {
        [flags, 0, 0, 0] + vni + [reserved] + destination + [0x0e, 0x2a, 0xbb, 0xcc, 0xdd, 0xee] + etherType + inner
    }

    func decapsulate(_ bytes: [UInt8]) -> (DropReason?, PacketBuffer) {
        var packet = buffer.packet(bytes)
        let reason = VXLAN.decapsulate(&packet, vni: 1, localMAC: ours)
        return (reason, packet)
    }

    @Test func decapsulateAcceptsKernelFrame() {
        let (reason, packet) = decapsulate(frame())
        #expect(reason == nil)
        #expect(packet.bytes == makeIPv4())
    }

    @Test func decapsulateTruncated() {
        for length in 0..<22 {
            let (reason, packet) = decapsulate(Array(frame()[0..<length]))
            #expect(reason == .truncated)
            #expect(packet.length == length)
        }
    }

    @Test func decapsulateFlagClear() {
        #expect(decapsulate(frame(flags: 0x00)).0 == .vxlanFlagClear)
        #expect(decapsulate(frame(flags: 0x80)).0 == .vxlanFlagClear)
        #expect(decapsulate(frame(flags: 0xF7)).0 == .vxlanFlagClear)
    }

    @Test func decapsulateIgnoresOtherFlagsAndReservedByte() {
        #expect(decapsulate(frame(flags: 0x88)).0 == nil)  // G (group policy) with I
        #expect(decapsulate(frame(flags: 0xFF)).0 == nil)
        #expect(decapsulate(frame(reserved: 0x5A)).0 == nil)
    }

    @Test func decapsulateWrongVNI() {
        #expect(decapsulate(frame(vni: [0, 0, 2])).0 == .wrongVNI)
        #expect(decapsulate(frame(vni: [1, 0, 1])).0 == .wrongVNI)
        #expect(decapsulate(frame(vni: [0, 0, 0])).0 == .wrongVNI)
    }

    @Test func decapsulateChecksInnerMAC() {
        #expect(decapsulate(frame(destination: [2, 0, 0, 0, 0, 2])).0 == .notOurMAC)
        #expect(decapsulate(frame(destination: [0x0e, 0x2a, 0xbb, 0xcc, 0xdd, 0xee])).0 == .notOurMAC)
        #expect(decapsulate(frame(destination: [0x01, 0x00, 0x5e, 0, 0, 1])).0 == .notOurMAC)
        #expect(decapsulate(frame(destination: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])).0 == nil)
    }

    @Test func decapsulateNotIPv4() {
        #expect(decapsulate(frame(etherType: [0x08, 0x06])).0 == .notIPv4)  // ARP
        #expect(decapsulate(frame(etherType: [0x86, 0xDD])).0 == .notIPv4)
        #expect(decapsulate(frame(etherType: [0x81, 0x00])).0 == .notIPv4)
    }

    @Test func decapsulateValidatesInnerIPv4() {
        #expect(decapsulate(frame(inner: [])).0 == .truncated)
        #expect(decapsulate(frame(inner: Array(makeIPv4()[0..<19]))).0 == .truncated)
        var version6 = makeIPv4()
        version6[0] = 0x65
        #expect(decapsulate(frame(inner: version6)).0 == .wrongVersion)
        var ihl = makeIPv4()
        ihl[0] = 0x43
        #expect(decapsulate(frame(inner: ihl)).0 == .badIHL)
        #expect(decapsulate(frame(inner: makeIPv4(totalLength: 500))).0 == .badTotalLength)
        let (reason, packet) = decapsulate(frame(inner: makeIPv4(totalLength: 500)))
        #expect(reason == .badTotalLength)
        #expect(packet.length == 22 + makeIPv4().count)  // left as it came
    }

    @Test func decapsulateTrimsPadding() {
        let inner = makeIPv4(protocol: 1, payload: [8, 0, 0, 0])
        let (reason, packet) = decapsulate(frame(inner: inner + [0, 0, 0, 0, 0, 0]))
        #expect(reason == nil)
        #expect(packet.bytes == inner)
    }
}

@Suite struct UDPBackendTests {
    let buffer = TestBuffer()

    @Test func payloadIsTheInnerPacket() {
        let inner = makeIPv4()
        var packet = buffer.packet(inner + [0, 0, 0])
        #expect(UDPBackend.encapsulate(&packet) == nil)
        #expect(packet.bytes == inner && packet.headroom == 64)
        var received = buffer.packet(inner + [9, 9])
        #expect(UDPBackend.decapsulate(&received) == nil)
        #expect(received.bytes == inner)
        #expect(UDPBackend.defaultPort == 8285)
    }

    @Test func dropsMalformed() {
        var short = buffer.packet([0x45, 0, 0])
        #expect(UDPBackend.decapsulate(&short) == .truncated)
        var version = makeIPv4()
        version[0] = 0x55
        var wrong = buffer.packet(version)
        #expect(UDPBackend.decapsulate(&wrong) == .wrongVersion)
        var long = buffer.packet(makeIPv4(totalLength: 1000))
        #expect(UDPBackend.encapsulate(&long) == .badTotalLength)
    }
}
