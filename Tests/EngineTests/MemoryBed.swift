import Addressing
import CShims
import Glibc
import Packets
import Routes
import Testing

@testable import Engine

struct BedFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A TUN made of SOCK_SEQPACKET socketpairs, as wireguard-go's tuntest makes one of channels: the
/// engine gets one end of each pair as a queue, the test the other. A seqpacket socket keeps
/// packet boundaries, so a read returns one packet and a write sends one, as on a TUN queue.
final class MemoryTUN {
    /// The test's ends, one per queue: what the test writes here the engine reads from its TUN.
    let ends: [Int32]
    private let engineEnds: [Int32]

    init(queues: Int = 1) throws {
        var ours: [Int32] = []
        var theirs: [Int32] = []
        for _ in 0..<queues {
            var pair: [Int32] = [-1, -1]
            guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0
            else {
                throw BedFailure("socketpair: errno \(errno)")
            }
            // Room for a 64 KB super-packet in one message, either way.
            for fd in pair {
                for option in [SO_SNDBUF, SO_RCVBUF] { _ = weft_setsockopt_int(fd, SOL_SOCKET, option, 1 << 20) }
            }
            ours.append(pair[1])
            theirs.append(pair[0])
        }
        ends = ours
        engineEnds = theirs
    }

    deinit { for fd in ends { close(fd) } }

    /// The engine's ends as a TUN device (it closes them).
    func device(offloads: TUNDevice.Offloads? = nil) -> TUNDevice {
        TUNDevice(adopting: engineEnds, name: "memory", offloads: offloads)
    }

    /// The engine reads `packet` from queue `queue`.
    func inject(_ packet: [UInt8], queue: Int = 0) throws {
        let written = packet.withUnsafeBytes { write(ends[queue], $0.baseAddress, $0.count) }
        guard written == packet.count else { throw BedFailure("write to the memory TUN: \(written), errno \(errno)") }
    }

    /// The next packet the engine wrote to any queue within `milliseconds`, or nil.
    func next(milliseconds: Int32 = 2000) -> [UInt8]? {
        var fds = ends.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        guard poll(&fds, nfds_t(fds.count), milliseconds) > 0,
            let ready = fds.first(where: { $0.revents & Int16(POLLIN) != 0 })
        else {
            return nil
        }
        var buffer = [UInt8](repeating: 0, count: 70_000)
        let count = buffer.withUnsafeMutableBytes { read(ready.fd, $0.baseAddress, $0.count) }
        return count > 0 ? Array(buffer[..<count]) : nil
    }
}

extension MemoryTUN {
    /// Reads TCP segments behind virtio-net headers (the TCP header at `tcpOffset`), each shown to
    /// `check`, until `length` bytes came or nothing more does; returns the stream from `sequence`
    /// on, in order, and how many packets carried it.
    func receiveStream(
        from sequence: UInt32,
        length: Int,
        tcpOffset tcp: Int,
        check: ([UInt8], VirtioNetHeader) -> Void
    ) -> (bytes: [UInt8], packets: Int) {
        var stream: [UInt32: [UInt8]] = [:]
        var packets = 0
        while stream.values.reduce(0, { $0 + $1.count }) < length, let arrived = next() {
            packets += 1
            let header = arrived.withUnsafeBytes { VirtioNetHeader(loadingFrom: $0.baseAddress!) }
            let packet = Array(arrived[VirtioNetHeader.size...])
            check(packet, header)
            let data = tcp + Int(packet[tcp + 12] >> 4) * 4
            let seq = packet[(tcp + 4)..<(tcp + 8)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            stream[seq] = Array(packet[data...])
        }
        var next = sequence
        var assembled: [UInt8] = []
        while let piece = stream[next] {
            assembled += piece
            next &+= UInt32(piece.count)
        }
        return (assembled, packets)
    }
}

/// Two engines in this process's own namespace, no root: hosts A (10.244.1.0/24) and B
/// (10.244.2.0/24) on 127.0.0.1 with ports of their own, each on a memory TUN, each routing the
/// other's subnet to it; with `ipv6`, also A's fc00:0:0:1::/64 and B's fc00:0:0:2::/64.
struct MemoryBed {
    static let network = IPv4Prefix("10.244.0.0/16")!
    static let subnetA = IPv4Prefix("10.244.1.0/24")!
    static let subnetB = IPv4Prefix("10.244.2.0/24")!
    static let ipv6Network = IPv6Prefix("fc00::/48")!
    static let ipv6SubnetA = IPv6Prefix("fc00:0:0:1::/64")!
    static let ipv6SubnetB = IPv6Prefix("fc00:0:0:2::/64")!
    static let loopback = IPv4Address(127, 0, 0, 1)
    static let macA = MACAddress("0a:00:00:00:00:0a")!
    static let macB = MACAddress("0a:00:00:00:00:0b")!

    let engineA: Engine
    let engineB: Engine
    let tunA: MemoryTUN
    let tunB: MemoryTUN
    let portA: UInt16
    let portB: UInt16

    static func with(
        _ kind: EngineConfiguration.Selection,
        backend: Backend,
        offloads: Bool = false,
        ipv6: Bool = false,
        _ body: (MemoryBed) throws -> Void
    ) throws {
        let portA = try freePort()
        let portB = try freePort()
        func configuration(_ subnet: IPv4Prefix, port: UInt16, mac: MACAddress) -> EngineConfiguration {
            let ipv6Subnet = subnet == subnetA ? ipv6SubnetA : ipv6SubnetB
            return EngineConfiguration(
                tunName: "memory",
                network: network,
                localSubnet: subnet,
                publicIP: loopback,
                port: port,
                backend: backend,
                vni: 1,
                vtepMAC: mac,
                engine: kind,
                workers: 1,
                sourcePortCount: 2,
                offloads: offloads,
                ipv6Network: ipv6 ? ipv6Network : nil,
                ipv6Subnet: ipv6 ? ipv6Subnet : nil
            )
        }
        func route(_ subnet: IPv4Prefix, port: UInt16, mac: MACAddress) -> Route {
            Route(subnet: subnet, nextHop: NextHop(publicIP: loopback, port: port, vtepMAC: mac, backend: backend))
        }
        func ipv6Routes(_ subnet: IPv6Prefix, port: UInt16, mac: MACAddress) -> [IPv6Route] {
            guard ipv6 else { return [] }
            let hop = NextHop(publicIP: loopback, port: port, vtepMAC: mac, backend: backend)
            return [IPv6Route(subnet: subnet, nextHop: hop)]
        }
        let engineA = Engine(
            configuration: configuration(subnetA, port: portA, mac: macA),
            routes: [route(subnetB, port: portB, mac: macB)],
            ipv6Routes: ipv6Routes(ipv6SubnetB, port: portB, mac: macB)
        )
        let engineB = Engine(
            configuration: configuration(subnetB, port: portB, mac: macB),
            routes: [route(subnetA, port: portA, mac: macA)],
            ipv6Routes: ipv6Routes(ipv6SubnetA, port: portA, mac: macA)
        )
        let tunA = try MemoryTUN()
        let tunB = try MemoryTUN()
        let virtio: TUNDevice.Offloads? = offloads ? [.checksum, .tso4, .tso6, .uso4, .uso6] : nil
        try engineA.start(adopting: tunA.device(offloads: virtio))
        defer { engineA.stop() }
        try engineB.start(adopting: tunB.device(offloads: virtio))
        defer { engineB.stop() }
        try body(MemoryBed(engineA: engineA, engineB: engineB, tunA: tunA, tunB: tunB, portA: portA, portB: portB))
        #expect(
            engineA.workerFailures.isEmpty && engineB.workerFailures.isEmpty,
            "\(engineA.workerFailures) \(engineB.workerFailures)"
        )
    }

    /// A UDP port nothing on 127.0.0.1 holds at the moment. getsockname gives it in network order;
    /// taken as it is, the engine bound the byte-swapped port, below 1024 now and then (refused without root).
    static func freePort() throws -> UInt16 {
        let fd = weft_udp_socket()
        guard fd >= 0 else { throw BedFailure("socket: \(-fd)") }
        defer { close(fd) }
        guard weft_bind_ipv4(fd, loopback.networkOrder, 0) == 0 else { throw BedFailure("bind 127.0.0.1:0") }
        return UInt16(bigEndian: UInt16(truncatingIfNeeded: weft_local_port(fd)))
    }
}

/// An IPv4 UDP packet from `source` to `destination` with `payload`, both checksums right.
func udpPacket(from source: IPv4Address, to destination: IPv4Address, ttl: UInt8 = 64, payload: [UInt8]) -> [UInt8] {
    let udpLength = 8 + payload.count
    var packet: [UInt8] = [
        0x45, 0, UInt8(truncatingIfNeeded: (20 + udpLength) >> 8), UInt8(truncatingIfNeeded: 20 + udpLength),
        0x12, 0x34, 0x40, 0, ttl, 17, 0, 0,
    ]
    for address in [source, destination] { withUnsafeBytes(of: address.networkOrder) { packet += $0 } }
    packet += [0x30, 0x39, 0x27, 0x0F, UInt8(udpLength >> 8), UInt8(truncatingIfNeeded: udpLength), 0, 0] + payload
    packet.withUnsafeMutableBytes { bytes in
        let ip = InternetChecksum.checksum(bytes.baseAddress!, count: 20)
        bytes.storeBytes(of: ip, toByteOffset: 10, as: UInt16.self)  // memory order, no swap
        let pseudo = InternetChecksum.pseudoHeaderSum(
            source: source.networkOrder,
            destination: destination.networkOrder,
            protocol: 17,
            length: udpLength
        )
        let udp = InternetChecksum.checksum(bytes.baseAddress! + 20, count: udpLength, initial: pseudo)
        bytes.storeBytes(of: udp == 0 ? 0xFFFF : udp, toByteOffset: 26, as: UInt16.self)
    }
    return packet
}

/// An IPv4 header's TTL, and whether its checksum holds.
func ipHeader(_ packet: [UInt8]) -> (ttl: UInt8, checksumHolds: Bool) {
    (packet[8], packet.withUnsafeBytes { InternetChecksum.isValid($0.baseAddress!, count: 20) })
}

/// An IPv6 packet from `source` to `destination` with `nextHeader` and `payload` (the upper-layer
/// packet, its checksum at `checksumOffset` filled in over the pseudo-header unless nil).
func ipv6Packet(
    from source: IPv6Address,
    to destination: IPv6Address,
    hopLimit: UInt8 = 64,
    nextHeader: UInt8 = 17,
    payload: [UInt8],
    checksumOffset: Int? = 6
) -> [UInt8] {
    var packet = [UInt8](repeating: 0, count: 40) + payload
    packet.withUnsafeMutableBytes { bytes in
        let header = IPv6Header(bytes.baseAddress!)
        header.initialize(
            payloadLength: payload.count,
            nextHeader: nextHeader,
            hopLimit: hopLimit,
            source: source,
            destination: destination
        )
        guard let checksumOffset else { return }
        bytes.storeBytes(of: 0, toByteOffset: 40 + checksumOffset, as: UInt16.self)
        let pseudo = header.pseudoHeaderSum(nextHeader: nextHeader, length: payload.count)
        let sum = InternetChecksum.checksum(bytes.baseAddress! + 40, count: payload.count, initial: pseudo)
        bytes.storeBytes(of: sum == 0 ? 0xFFFF : sum, toByteOffset: 40 + checksumOffset, as: UInt16.self)
    }
    return packet
}

/// An IPv6 UDP packet (ports 12345 → 9999) carrying `data`, checksums right.
func udp6Packet(from source: IPv6Address, to destination: IPv6Address, hopLimit: UInt8 = 64, data: [UInt8]) -> [UInt8] {
    let length = 8 + data.count
    let udp: [UInt8] = [0x30, 0x39, 0x27, 0x0F, UInt8(length >> 8), UInt8(truncatingIfNeeded: length), 0, 0] + data
    return ipv6Packet(from: source, to: destination, hopLimit: hopLimit, payload: udp)
}
