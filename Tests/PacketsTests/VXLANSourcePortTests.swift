import TestSupport
import TestThreads
import Testing

@testable import Packets

@Suite(.computeLane) struct VXLANSourcePortTests {
    let buffer = TestBuffer()

    func port(_ bytes: [UInt8]) -> UInt16 { VXLAN.sourcePort(forInner: buffer.packet(bytes)) }

    func flow(
        source: [UInt8] = [10, 244, 1, 5],
        destination: [UInt8] = [10, 244, 2, 7],
        protocol proto: UInt8 = 6,
        ports: (UInt16, UInt16) = (40000, 5201),
        flagsAndOffset: UInt16 = 0x4000,
        payload: [UInt8] = []
    ) -> [UInt8] {
        let header: [UInt8] = [UInt8(ports.0 >> 8), UInt8(ports.0 & 0xFF), UInt8(ports.1 >> 8), UInt8(ports.1 & 0xFF)]
        return makeIPv4(
            source: source,
            destination: destination,
            protocol: proto,
            flagsAndOffset: flagsAndOffset,
            payload: header + payload
        )
    }

    @Test func sameFlowSamePort() {
        let first = port(flow(payload: Array(repeating: 1, count: 100)))
        #expect(port(flow(payload: Array(repeating: 2, count: 1000))) == first)
        // TTL, identification and checksum are not part of the flow.
        var other = flow()
        other[8] = 3
        other[4] = 0x77
        #expect(port(other) == first)
    }

    @Test func staysInTheEphemeralRange() {
        var random = SplitMix64(seed: 32768)
        for _ in 0..<20000 {
            let bytes = random.bytes(Int.random(in: 0...60, using: &random))
            #expect(VXLAN.sourcePortRange.contains(port(bytes)))
        }
        #expect(VXLAN.sourcePortRange == 32768...60999)
    }

    @Test func eachFlowFieldCounts() {
        var random = SplitMix64(seed: 9)
        var changed = [0, 0, 0, 0, 0]
        let rounds = 1000
        for _ in 0..<rounds {
            let source = random.bytes(4)
            let destination = random.bytes(4)
            let ports = (UInt16.random(in: 0...0xFFFF, using: &random), UInt16.random(in: 0...0xFFFF, using: &random))
            let base = port(flow(source: source, destination: destination, protocol: 17, ports: ports))
            var otherSource = source
            otherSource[3] &+= 1
            var otherDestination = destination
            otherDestination[0] &+= 1
            let variants = [
                flow(source: otherSource, destination: destination, protocol: 17, ports: ports),
                flow(source: source, destination: otherDestination, protocol: 17, ports: ports),
                flow(source: source, destination: destination, protocol: 6, ports: ports),
                flow(source: source, destination: destination, protocol: 17, ports: (ports.0 &+ 1, ports.1)),
                flow(source: source, destination: destination, protocol: 17, ports: (ports.0, ports.1 &+ 1)),
            ]
            for (index, variant) in variants.enumerated() where port(variant) != base { changed[index] += 1 }
        }
        // A collision in 28,232 ports is rare; each field must move the port almost always.
        for count in changed { #expect(count > rounds * 98 / 100, "\(changed)") }
    }

    @Test func spreadsFlowsEvenly() {
        // 8192 TCP connections from one client to one server, differing only in source port.
        let flows = 8192
        var seen = Set<UInt16>()
        var buckets = [Int](repeating: 0, count: 16)
        for sourcePort in UInt16(40000)..<UInt16(40000 + flows) {
            let p = port(flow(ports: (sourcePort, 443)))
            seen.insert(p)
            buckets[Int(p - 32768) * 16 / 28232] += 1
        }
        // Expected distinct ports for uniform hashing: 28232·(1 − e^(−8192/28232)) ≈ 7140.
        #expect(seen.count > 6900)
        let expected = flows / 16
        for count in buckets { #expect(abs(count - expected) < expected / 5, "\(buckets)") }
    }

    @Test func fragmentsOfOneDatagramShareAPort() {
        let unfragmentedA = port(flow(protocol: 17, ports: (1000, 2000), flagsAndOffset: 0))
        let unfragmentedB = port(flow(protocol: 17, ports: (1001, 2000), flagsAndOffset: 0))
        #expect(unfragmentedA != unfragmentedB)
        let first = port(flow(protocol: 17, ports: (1000, 2000), flagsAndOffset: 0x2000))
        let middle = port(flow(protocol: 17, ports: (7, 7), flagsAndOffset: 0x20B9))
        let last = port(flow(protocol: 17, ports: (9, 9), flagsAndOffset: 0x0172))
        #expect(first == middle && middle == last)
    }

    @Test func portsOnlyForTCPAndUDP() {
        // ICMP's "ports" (type, code, checksum) are not a flow key.
        #expect(port(flow(protocol: 1, ports: (0x0800, 1))) == port(flow(protocol: 1, ports: (0x0800, 2))))
    }

    @Test func readsNothingPastThePacket() {
        // A bare TCP header-less packet: whatever follows it in memory must not matter.
        let bytes = makeIPv4(protocol: 6, payload: [])
        let packet = buffer.packet(bytes)
        (packet.start + 20).initializeMemory(as: UInt8.self, repeating: 0x11, count: 8)
        let first = VXLAN.sourcePort(forInner: packet)
        (packet.start + 20).initializeMemory(as: UInt8.self, repeating: 0x99, count: 8)
        #expect(VXLAN.sourcePort(forInner: packet) == first)
    }

    @Test func malformedPacketsStillGetAPort() {
        #expect(VXLAN.sourcePortRange.contains(port([])))
        var badIHL = flow()
        badIHL[0] = 0x4F
        #expect(VXLAN.sourcePortRange.contains(port(badIHL)))
    }
}
