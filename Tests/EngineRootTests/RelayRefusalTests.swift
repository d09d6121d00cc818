import Addressing
import CShims
import Engine
import Foundation
import Glibc
import Packets
import TestSupport
import TestThreads
import Testing

/// The tunnel is not a relay: datagrams from a peer's PublicIP (which anyone on the underlay can
/// forge) carry inner packets to the stranger's underlay address, to B's own underlay address and
/// back into A's subnet. Written to B's TUN, B's kernel would forward or take them; the engine drops
/// them as `notOurSubnet`, and one to container B among them still arrives. On each I/O loop, and
/// with offloads as one UDP GSO send that reaches B's UDP_GRO socket as one receive.
/// In EngineForwardingTests' serialized suite: the flood test there measures the process's RSS.
extension EngineForwardingTests {
    @Test func mmsgEngineRefusesToRelay() throws {
        try refusesToRelay(.mmsg, offloads: false)
    }

    @Test(
        .enabled(if: Engine.uringUnavailable == nil, "io_uring engine: \(Engine.uringUnavailable?.description ?? "")")
    )
    func uringEngineRefusesToRelay() throws {
        try refusesToRelay(.uring, offloads: false)
    }

    @Test(
        .enabled(if: Engine.uringUnavailable == nil, "io_uring engine: \(Engine.uringUnavailable?.description ?? "")")
    )
    func uringEngineWithOffloadsRefusesToRelayInsideAGROBatch() throws {
        try refusesToRelay(.uring, offloads: true)
    }

    private func refusesToRelay(_ kind: EngineKind, offloads: Bool) throws {
        try TwoHostBed.with { bed in
            // The stranger takes datagrams from any source, so nothing but the engine can stop a relayed one.
            try TwoHostBed.sysctl(bed.stranger, "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.ul0.rp_filter=0")
            let engine = try bed.startEngine(in: bed.hostB, kind: kind, offloads: offloads)
            defer { engine.stop() }
            let port: UInt16 = 9999
            let inContainerB = try bed.containerB.enter { try openUDP(TwoHostBed.containerAddressB, port: port) }
            defer { close(inContainerB) }
            let atStranger = try bed.stranger.enter { try openUDP(TwoHostBed.publicStranger, port: port) }
            defer { close(atStranger) }
            let atHostB = try bed.hostB.enter { try openUDP(TwoHostBed.publicB, port: port) }
            defer { close(atHostB) }
            let forger = try bed.hostA.enter { try openUDP(TwoHostBed.publicA) }
            defer { close(forger) }

            // Equal sizes, so the four can also go as one UDP_SEGMENT send.
            func inner(_ tag: String, to destination: IPv4Address) -> [UInt8] {
                let payload = Array(tag.utf8) + [UInt8](repeating: 0x2E, count: 32 - tag.utf8.count)
                return ipv4UDPPacket(
                    source: TwoHostBed.containerAddressA,
                    destination: destination,
                    port: port,
                    payload: payload
                )
            }
            let datagrams = [
                inner("to-stranger", to: TwoHostBed.publicStranger),
                inner("to-host-b", to: TwoHostBed.publicB),
                inner("back-to-a", to: TwoHostBed.containerAddressA),
                inner("legitimate", to: TwoHostBed.containerAddressB),
            ]
            let before = engine.counters.snapshot()
            if offloads {
                guard weft_setsockopt_int(forger, Int32(IPPROTO_UDP), UDP_SEGMENT, Int32(datagrams[0].count)) == 0
                else {
                    throw TestFailure("UDP_SEGMENT \(datagrams[0].count) refused")
                }
                try sendUDP(forger, datagrams.flatMap { $0 }, to: TwoHostBed.publicB, port: TwoHostBed.port)
            } else {
                for datagram in datagrams {
                    try sendUDP(forger, datagram, to: TwoHostBed.publicB, port: TwoHostBed.port)
                }
            }

            let delivered = receiveUDP(inContainerB, milliseconds: 20_000)
            #expect(delivered.map { String(decoding: $0.payload.prefix { $0 != 0x2E }, as: UTF8.self) } == "legitimate")
            #expect(receiveUDP(atStranger, milliseconds: 300) == nil, "relayed onto the underlay")
            #expect(receiveUDP(atHostB, milliseconds: 100) == nil, "delivered to host B's underlay address")

            // The worker counts a TUN write after making it, so the listener may have the packet first.
            _ = waitUntil { engine.counters.snapshot()[.tunWrittenPackets] > before[.tunWrittenPackets] }
            let after = engine.counters.snapshot()
            #expect(after.drops[.notOurSubnet] - before.drops[.notOurSubnet] == 3)
            #expect(after.drops.total - before.drops.total == 3, "\(after.drops.nonZero)")
            #expect(after[.wireReceivedPackets] - before[.wireReceivedPackets] == 4)
            #expect(after[.tunWrittenPackets] - before[.tunWrittenPackets] == 1)
            // Nothing went back out to A: the one for A's subnet was not routed through flannel0 again.
            #expect(after[.tunReadPackets] == before[.tunReadPackets])
            #expect(engine.workerFailures.isEmpty, "\(engine.workerFailures)")
        }
    }
}
