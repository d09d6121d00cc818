import Addressing
import Engine
import Forwarding
import Packets
import TestSupport
import Testing

/// This host's VXLAN device and subnet, and the peer's device it sends to.
private let ourMAC = MACAddress(0x0200_C612_0002)
private let peerMAC = MACAddress(0x0200_C612_0001)
private let ourSubnet = IPv4Prefix(IPv4Address(10, 244, 2, 0), length: 24)

/// The choice of source-port socket by inner flow, without a kernel: fake fds stand for the pool.
struct SourcePortsTests {
    let vxlan = Forwarder(backend: .vxlan, vni: 1, vtepMAC: ourMAC, localSubnet: ourSubnet)
    let pool: [Int32] = [40, 41, 42, 43, 44, 45, 46, 47]

    /// `inner` framed as `fromTUN` leaves it for the wire: VXLAN header and inner Ethernet in front.
    func socket(
        _ inner: [UInt8],
        ports: SourcePorts,
        forwarder: Forwarder,
        vni: UInt32 = 1,
        destination: MACAddress = peerMAC
    ) -> Int32 {
        var bytes = vxlanFrame(inner, vni: vni, destination: destination.bytes, source: ourMAC.bytes)
        return bytes.withUnsafeMutableBytes { raw in
            let packet = PacketBuffer(base: raw.baseAddress!, headroom: 0, length: raw.count, capacity: raw.count)
            return ports.socket(for: packet, forwarder: forwarder, bound: 7)
        }
    }

    func flow(_ port: UInt16, payload: String = "x") -> [UInt8] {
        ipv4UDPPacket(
            source: [10, 244, 2, 2],
            destination: [10, 244, 1, 2],
            port: port,
            payload: Array(payload.utf8)
        )
    }

    @Test func oneFlowOneSocketAndFlowsSpreadOverThePool() {
        pool.withUnsafeBufferPointer { fds in
            let ports = SourcePorts(sockets: fds)
            var used: [Int32: Int] = [:]
            for port in UInt16(1000)..<UInt16(3000) {
                let chosen = socket(flow(port), ports: ports, forwarder: vxlan)
                // Payload, VNI and outer MACs are not part of the flow.
                #expect(
                    socket(
                        flow(port, payload: "longer payload"),
                        ports: ports,
                        forwarder: vxlan,
                        vni: 9,
                        destination: .broadcast
                    ) == chosen
                )
                used[chosen, default: 0] += 1
            }
            #expect(Set(used.keys) == Set(pool), "\(used)")
            // 2000 flows over 8 sockets: 250 each on average; a skewed hash would leave some far below.
            #expect(used.values.allSatisfy { $0 > 150 }, "\(used)")
        }
    }

    @Test func emptyPoolAndUDPBackendSendFromTheBoundSocket() {
        #expect(socket(flow(1), ports: .none, forwarder: vxlan) == 7)
        let udp = Forwarder(backend: .udp, localSubnet: ourSubnet)
        pool.withUnsafeBufferPointer { fds in
            let ports = SourcePorts(sockets: fds)
            // udp hashes nothing: every flow takes the pool's first socket (the engine gives udp no pool).
            #expect(Set((1...50).map { socket(flow(UInt16($0)), ports: ports, forwarder: udp) }) == [40])
        }
    }
}
