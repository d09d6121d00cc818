import Addressing
import Forwarding
import Packets
import Routes
import Testing

/// Host B (198.18.0.2, subnet 10.244.2.0/24) with peers A (10.244.1.0/24) and C (10.244.3.0/24).
struct Bed: ~Copyable {
    static let macA = MACAddress("aa:bb:cc:dd:ee:01")!
    static let macB = MACAddress("aa:bb:cc:dd:ee:02")!
    static let macC = MACAddress("aa:bb:cc:dd:ee:03")!
    static let publicA = IPv4Address(198, 18, 0, 1)
    static let publicB = IPv4Address(198, 18, 0, 2)
    static let publicC = IPv4Address(198, 18, 0, 3)
    static let stranger = IPv4Address(198, 18, 0, 99)

    let snapshot: RouteSnapshot

    init(backend: Backend) {
        let port: UInt16 = backend == .vxlan ? 8472 : 8285
        func hop(_ ip: IPv4Address, _ mac: MACAddress) -> NextHop {
            backend == .vxlan
                ? NextHop(publicIP: ip, port: port, vtepMAC: mac, backend: .vxlan)
                : NextHop(publicIP: ip, port: port, backend: .udp)
        }
        snapshot = RouteSnapshot(
            routes: [
                Route(subnet: IPv4Prefix("10.244.1.0/24")!, nextHop: hop(Bed.publicA, Bed.macA)),
                Route(subnet: IPv4Prefix("10.244.2.0/24")!, nextHop: hop(Bed.publicB, Bed.macB)),
                Route(subnet: IPv4Prefix("10.244.3.0/24")!, nextHop: hop(Bed.publicC, Bed.macC)),
            ],
            network: IPv4Prefix("10.244.0.0/16")!,
            subnetLength: 24,
            localSubnet: IPv4Prefix("10.244.2.0/24")!
        )
    }

    static func forwarder(_ backend: Backend) -> Forwarder {
        Forwarder(backend: backend, vni: 1, vtepMAC: macB, localSubnet: IPv4Prefix("10.244.2.0/24")!)
    }
}

@Suite struct FromTUNTests {
    let local = IPv4Address(10, 244, 2, 5)
    let remote = IPv4Address(10, 244, 3, 7)

    @Test func vxlanEncapsulatesForThePeerAndKeepsTheTTL() {
        let bed = Bed(backend: .vxlan)
        let inner = Reference.udpPacket(from: local, to: remote, ttl: 1)
        let buffer = TestBuffer(inner)
        let verdict = Bed.forwarder(.vxlan).fromTUN(&buffer.packet, table: bed.snapshot.table)
        #expect(verdict == .send(NextHop(publicIP: Bed.publicC, port: 8472, vtepMAC: Bed.macC, backend: .vxlan)))
        // TTL 1 still goes: the vxlan device never decrements, the kernel's forwarding hop did.
        #expect(buffer.bytes == Reference.vxlanFrame(vni: 1, destination: Bed.macC, source: Bed.macB, inner: inner))
    }

    @Test func udpDecrementsTheTTLAndWritesNoHeader() {
        let bed = Bed(backend: .udp)
        let inner = Reference.udpPacket(from: local, to: remote, ttl: 64)
        let buffer = TestBuffer(inner)
        let verdict = Bed.forwarder(.udp).fromTUN(&buffer.packet, table: bed.snapshot.table)
        #expect(verdict == .send(NextHop(publicIP: Bed.publicC, port: 8285, backend: .udp)))
        #expect(buffer.bytes == Reference.decrementingTTL(inner))
        #expect(buffer.bytes[8] == 63)
    }

    @Test func udpDropsWhenTheTTLWouldReachZero() {
        let bed = Bed(backend: .udp)
        let inner = Reference.udpPacket(from: local, to: remote, ttl: 1)
        let buffer = TestBuffer(inner)
        #expect(Bed.forwarder(.udp).fromTUN(&buffer.packet, table: bed.snapshot.table) == .drop(.ttlExpired))
    }

    @Test func trailingBytesPastTheTotalLengthAreCut() {
        let bed = Bed(backend: .vxlan)
        let inner = Reference.udpPacket(from: local, to: remote)
        let buffer = TestBuffer(inner + [0, 0, 0, 0, 0, 0])
        _ = Bed.forwarder(.vxlan).fromTUN(&buffer.packet, table: bed.snapshot.table)
        #expect(buffer.packet.length == VXLAN.overhead + inner.count)
    }

    @Test(arguments: [Backend.udp, .vxlan])
    func noRouteBecomesNetUnreachableFromTheTUNAddress(backend: Backend) {
        let bed = Bed(backend: backend)
        let inner = Reference.udpPacket(from: local, to: IPv4Address(10, 245, 0, 1))
        let buffer = TestBuffer(inner)
        #expect(Bed.forwarder(backend).fromTUN(&buffer.packet, table: bed.snapshot.table) == .replyToTUN(.noRoute))
        let reply = buffer.bytes
        #expect(reply.count == 20 + 8 + 20 + 8)
        #expect(Reference.checksum(reply[0..<20]) == 0)  // header sums to all ones
        #expect(Reference.checksum(reply[20...]) == 0)  // ICMP message too
        #expect(reply[9] == 1)  // ICMP
        #expect(Reference.address(reply, 12) == IPv4Address(10, 244, 2, 0))
        #expect(Reference.address(reply, 16) == local)
        #expect(reply[20] == 3 && reply[21] == 0)  // destination unreachable, net
        #expect(Array(reply[28...]) == Array(inner[0..<28]))  // offender's header + 8 bytes
    }

    @Test func noReplyForAnICMPError() {
        let bed = Bed(backend: .vxlan)
        // An ICMP destination unreachable (type 3) to an address with no route.
        var icmp = Reference.udpPacket(from: local, to: IPv4Address(10, 245, 0, 1))
        icmp[9] = 1
        icmp[20] = 3
        icmp[10] = 0
        icmp[11] = 0
        let value = Reference.checksum(icmp[0..<20])
        icmp[10] = UInt8(value >> 8)
        icmp[11] = UInt8(value & 0xFF)
        let buffer = TestBuffer(icmp)
        #expect(Bed.forwarder(.vxlan).fromTUN(&buffer.packet, table: bed.snapshot.table) == .drop(.noRoute))
        #expect(buffer.bytes == icmp)
    }

    @Test func ourOwnSubnetHasNoRoute() {
        // The local lease is never a next hop: a packet for it from the TUN would loop.
        let bed = Bed(backend: .vxlan)
        let buffer = TestBuffer(Reference.udpPacket(from: local, to: IPv4Address(10, 244, 2, 9)))
        #expect(Bed.forwarder(.vxlan).fromTUN(&buffer.packet, table: bed.snapshot.table) == .replyToTUN(.noRoute))
    }

    @Test(arguments: [
        ([UInt8](repeating: 0x45, count: 19), DropReason.truncated),
        ([0x65] + [UInt8](repeating: 0, count: 27), .wrongVersion),
        ([0x44, 0, 0, 28] + [UInt8](repeating: 0, count: 24), .badIHL),
        ([0x4F, 0, 0, 28] + [UInt8](repeating: 0, count: 24), .badIHL),
        ([0x45, 0, 0, 19] + [UInt8](repeating: 0, count: 24), .badTotalLength),
        ([0x45, 0, 0, 29] + [UInt8](repeating: 0, count: 24), .badTotalLength),
    ])
    func malformedPacketsFromTheTUN(bytes: [UInt8], reason: DropReason) {
        for backend in [Backend.udp, .vxlan] {
            let bed = Bed(backend: backend)
            let buffer = TestBuffer(bytes)
            #expect(Bed.forwarder(backend).fromTUN(&buffer.packet, table: bed.snapshot.table) == .drop(reason))
        }
    }

    @Test func vxlanWithoutHeadroomDropsInsteadOfCrashing() {
        let bed = Bed(backend: .vxlan)
        let buffer = TestBuffer(Reference.udpPacket(from: local, to: remote), headroom: 10)
        #expect(Bed.forwarder(.vxlan).fromTUN(&buffer.packet, table: bed.snapshot.table) == .drop(.oversize))
        #expect(Bed.forwarder(.vxlan).headroom == 22)
        #expect(Bed.forwarder(.udp).headroom == 0)
    }
}

@Suite struct FromWireTests {
    let fromA = IPv4Address(10, 244, 1, 2)
    let toB = IPv4Address(10, 244, 2, 2)

    private func receive(
        _ backend: Backend,
        _ payload: [UInt8],
        sender: IPv4Address = Bed.publicA
    )
        -> (ReceiveVerdict, [UInt8])
    {
        let bed = Bed(backend: backend)
        let buffer = TestBuffer(payload)
        let verdict = Bed.forwarder(backend).fromWire(&buffer.packet, sender: sender, table: bed.snapshot.table)
        return (verdict, buffer.bytes)
    }

    @Test func vxlanDeliversTheInnerPacketUntouched() {
        let inner = Reference.udpPacket(from: fromA, to: toB, ttl: 63)
        let (verdict, bytes) = receive(
            .vxlan,
            Reference.vxlanFrame(vni: 1, destination: Bed.macB, source: Bed.macA, inner: inner)
        )
        #expect(verdict == .deliver)
        #expect(bytes == inner)
    }

    @Test func vxlanAcceptsBroadcastAndCutsPadding() {
        let inner = Reference.udpPacket(from: fromA, to: toB, payload: [])
        let frame =
            Reference.vxlanFrame(vni: 1, destination: .broadcast, source: Bed.macA, inner: inner) + [0, 0, 0, 0]
        let (verdict, bytes) = receive(.vxlan, frame)
        #expect(verdict == .deliver)
        #expect(bytes == inner)
    }

    @Test func udpDecrementsTheTTL() {
        let inner = Reference.udpPacket(from: fromA, to: toB, ttl: 9)
        let (verdict, bytes) = receive(.udp, inner)
        #expect(verdict == .deliver)
        #expect(bytes == Reference.decrementingTTL(inner))
        #expect(receive(.udp, Reference.udpPacket(from: fromA, to: toB, ttl: 1)).0 == .drop(.ttlExpired))
    }

    @Test(arguments: [Backend.udp, .vxlan])
    func antiSpoofing(backend: Backend) {
        func payload(_ source: IPv4Address) -> [UInt8] {
            let inner = Reference.udpPacket(from: source, to: toB)
            return backend == .vxlan
                ? Reference.vxlanFrame(vni: 1, destination: Bed.macB, source: Bed.macA, inner: inner) : inner
        }
        #expect(receive(backend, payload(fromA)).0 == .deliver)
        // A stranger: no lease names its address.
        #expect(receive(backend, payload(fromA), sender: Bed.stranger).0 == .drop(.unknownSender))
        // A peer sending with a source from another peer's subnet, from outside the network, from ours.
        #expect(receive(backend, payload(IPv4Address(10, 244, 3, 2))).0 == .drop(.spoofedSource))
        #expect(receive(backend, payload(IPv4Address(192, 0, 2, 1))).0 == .drop(.spoofedSource))
        #expect(receive(backend, payload(IPv4Address(10, 244, 2, 7))).0 == .drop(.spoofedSource))
        // C is a peer too; A's subnet is not C's.
        #expect(receive(backend, payload(fromA), sender: Bed.publicC).0 == .drop(.spoofedSource))
    }

    /// B's subnet is 10.244.2.0/24: every address in it is for B, its network address (the TUN's,
    /// lease .0) and broadcast included; anything else a peer sends would be relayed by B's kernel.
    @Test(arguments: [Backend.udp, .vxlan])
    func onlyOurSubnetIsDelivered(backend: Backend) {
        func payload(to destination: IPv4Address) -> [UInt8] {
            let inner = Reference.udpPacket(from: fromA, to: destination)
            return backend == .vxlan
                ? Reference.vxlanFrame(vni: 1, destination: Bed.macB, source: Bed.macA, inner: inner) : inner
        }
        for inside in [
            IPv4Address(10, 244, 2, 0), IPv4Address(10, 244, 2, 1), IPv4Address(10, 244, 2, 254),
            IPv4Address(10, 244, 2, 255),
        ] {
            #expect(receive(backend, payload(to: inside)).0 == .deliver, "\(inside)")
        }
        let outside = [
            Bed.publicB, Bed.publicC, Bed.stranger,  // the underlay, B's own address included
            IPv4Address(10, 244, 1, 2),  // back into the sender's subnet
            IPv4Address(10, 244, 3, 2),  // a third peer's subnet
            IPv4Address(10, 244, 1, 255), IPv4Address(10, 244, 3, 0),  // just below and just above ours
            // the Network, no lease
            IPv4Address(10, 244, 99, 1), IPv4Address(10, 244, 0, 0), IPv4Address(10, 244, 255, 255),
            IPv4Address(127, 0, 0, 1), IPv4Address(224, 0, 0, 1), IPv4Address(255, 255, 255, 255), .any,
        ]
        for destination in outside {
            #expect(receive(backend, payload(to: destination)).0 == .drop(.notOurSubnet), "\(destination)")
        }
        // The sender is judged first: a stranger's or a spoofer's relay attempt counts as theirs.
        #expect(receive(backend, payload(to: Bed.publicB), sender: Bed.stranger).0 == .drop(.unknownSender))
        #expect(receive(backend, payload(to: Bed.publicB), sender: Bed.publicC).0 == .drop(.spoofedSource))
    }

    /// The subnet's own length decides, not a /24 assumption: a /26 lease admits .64 to .127 only.
    @Test func theLeaseLengthBoundsTheSubnet() {
        let bed = Bed(backend: .udp)
        let forwarder = Forwarder(backend: .udp, localSubnet: IPv4Prefix("10.244.2.64/26")!)
        func verdict(_ last: UInt8) -> ReceiveVerdict {
            let buffer = TestBuffer(Reference.udpPacket(from: fromA, to: IPv4Address(10, 244, 2, last)))
            return forwarder.fromWire(&buffer.packet, sender: Bed.publicA, table: bed.snapshot.table)
        }
        #expect(verdict(64) == .deliver && verdict(127) == .deliver)
        #expect(verdict(63) == .drop(.notOurSubnet) && verdict(128) == .drop(.notOurSubnet))
        #expect(forwarder.tunAddress == IPv4Address(10, 244, 2, 64))
    }

    @Test func vxlanDropReasons() {
        let inner = Reference.udpPacket(from: fromA, to: toB)
        let cases: [([UInt8], DropReason)] = [
            (
                Array(Reference.vxlanFrame(vni: 1, destination: Bed.macB, source: Bed.macA, inner: inner).prefix(21)),
                .truncated
            ),
            (Reference.vxlanFrame(vni: 2, destination: Bed.macB, source: Bed.macA, inner: inner), .wrongVNI),
            (
                Reference.vxlanFrame(vni: 1, destination: Bed.macB, source: Bed.macA, inner: inner, flags: 0x00),
                .vxlanFlagClear
            ),
            (Reference.vxlanFrame(vni: 1, destination: Bed.macC, source: Bed.macA, inner: inner), .notOurMAC),
            (
                Reference.vxlanFrame(vni: 1, destination: Bed.macB, source: Bed.macA, inner: inner, etherType: 0x0806),
                .notIPv4
            ),
            (
                Reference.vxlanFrame(vni: 1, destination: Bed.macB, source: Bed.macA, inner: Array(inner.prefix(12))),
                .truncated
            ),
        ]
        for (payload, reason) in cases {
            #expect(receive(.vxlan, payload).0 == .drop(reason), "\(reason)")
        }
    }

    @Test func decapsulateAloneSkipsAntiSpoofing() {
        let inner = Reference.udpPacket(from: IPv4Address(10, 244, 3, 2), to: toB)
        let buffer = TestBuffer(Reference.vxlanFrame(vni: 1, destination: Bed.macB, source: Bed.macA, inner: inner))
        #expect(Bed.forwarder(.vxlan).decapsulate(&buffer.packet) == nil)
        #expect(buffer.bytes == inner)
    }
}

@Suite struct DropCountersTests {
    @Test func countsEachReasonInItsOwnSlot() {
        var counters = DropCounters()
        #expect(DropReason.allCases.count <= DropCounters.capacity)
        for (index, reason) in DropReason.allCases.enumerated() {
            counters.count(reason, by: UInt64(index + 1))
        }
        for (index, reason) in DropReason.allCases.enumerated() {
            #expect(counters[reason] == UInt64(index + 1))
        }
        let n = UInt64(DropReason.allCases.count)
        #expect(counters.total == n * (n + 1) / 2)
        #expect(counters.nonZero.map(\.reason) == DropReason.allCases)
    }

    @Test func addsAndCompares() {
        var a = DropCounters()
        a.count(.noRoute)
        a.count(.noRoute)
        var b = DropCounters()
        b.count(.spoofedSource)
        a.add(b)
        #expect(a[.noRoute] == 2 && a[.spoofedSource] == 1 && a[.truncated] == 0)
        #expect(a.nonZero.map(\.reason) == [.noRoute, .spoofedSource])
        #expect(a != b)
        var c = DropCounters()
        c.count(.spoofedSource)
        #expect(c == b)
    }
}
