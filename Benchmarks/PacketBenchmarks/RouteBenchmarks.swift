import Addressing
import Benchmark
import Packets
import ReferencePaths
import Routes
import TestSupport

/// Route lookup at 1, 256 and 10,000 subnets against flannel's udp proxy table (a linear scan with
/// move-to-front). Destinations cycle through a pseudo-random order over all subnets so neither
/// side gets a free cache hit from repetition.
func registerRouteBenchmarks() {
    for count in [1, 256, 10_000] {
        let routes = uniformRoutes(count)
        let destinations = shuffledDestinations(routes)

        // Built once and kept for every sample, as the engine keeps a published table: rebuilding it
        // per sample would time cold caches, not lookups.
        let owner = SnapshotOwner(
            RouteSnapshot(
                routes: routes,
                network: IPv4Prefix(IPv4Address(10, 0, 0, 0), length: 8),
                subnetLength: 24
            )
        )
        Benchmark(
            "route lookup \(count) subnets: Weft table",
            configuration: .init(scalingFactor: .mega)
        ) { benchmark in
            let table = owner.snapshot.table
            var index = 0
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                blackHole(table.lookup(destinations[index]))
                index = index == destinations.count - 1 ? 0 : index + 1
            }
        }

        Benchmark("route lookup \(count) subnets: linear scan + move-to-front (flannel udp)") { benchmark in
            var cache = LinearRouteCache(routes: routes)
            var index = 0
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                blackHole(cache.lookup(destinations[index]))
                index = index == destinations.count - 1 ? 0 : index + 1
            }
        }
    }

    // IPv6 beside IPv4: flannel's layout (a /48 of /64s, direct index) and the same subnets under
    // a network that does not hold them (longest prefix), with the IPv4 longest-prefix row to
    // compare against.
    for count in [1, 256, 10_000] {
        let routes = uniformRoutesV6(count)
        let destinations = shuffledDestinationsV6(routes)
        let owner = IPv6SnapshotOwner(
            IPv6RouteSnapshot(routes: routes, network: IPv6Prefix("fc00:0:1::/48")!, subnetLength: 64)
        )
        Benchmark(
            "route lookup \(count) subnets: Weft IPv6 table",
            configuration: .init(scalingFactor: .mega)
        ) { benchmark in
            let table = owner.snapshot.table
            var index = 0
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                blackHole(table.lookup(destinations[index]))
                index = index == destinations.count - 1 ? 0 : index + 1
            }
        }
    }
    do {
        let routes = uniformRoutes(10_000)
        let destinations = shuffledDestinations(routes)
        let owner = SnapshotOwner(
            RouteSnapshot(
                routes: routes,
                network: IPv4Prefix(IPv4Address(192, 0, 0, 0), length: 8),
                subnetLength: 24
            )
        )
        Benchmark(
            "route lookup 10000 subnets: Weft table, longest prefix",
            configuration: .init(scalingFactor: .mega)
        ) { benchmark in
            let table = owner.snapshot.table
            var index = 0
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                blackHole(table.lookup(destinations[index]))
                index = index == destinations.count - 1 ? 0 : index + 1
            }
        }
        let routesV6 = uniformRoutesV6(10_000)
        let destinationsV6 = shuffledDestinationsV6(routesV6)
        let ownerV6 = IPv6SnapshotOwner(
            IPv6RouteSnapshot(routes: routesV6, network: IPv6Prefix("fd00::/48")!, subnetLength: 64)
        )
        Benchmark(
            "route lookup 10000 subnets: Weft IPv6 table, longest prefix",
            configuration: .init(scalingFactor: .mega)
        ) { benchmark in
            let table = ownerV6.snapshot.table
            var index = 0
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                blackHole(table.lookup(destinationsV6[index]))
                index = index == destinationsV6.count - 1 ? 0 : index + 1
            }
        }
    }

    // What a publish costs the control plane: building a snapshot from a peer table of 10,000
    // subnets, in the order the peer tables hand them over. Built from another module, as the
    // control plane builds it, so the builder must be specialized for the family to be fast.
    do {
        let routes = uniformRoutes(10_000).sorted { $0.subnet.network < $1.subnet.network }
        Benchmark("route snapshot build 10000 subnets") { benchmark in
            for _ in benchmark.scaledIterations {
                let snapshot = RouteSnapshot(
                    routes: routes,
                    network: IPv4Prefix(IPv4Address(10, 0, 0, 0), length: 8),
                    subnetLength: 24
                )
                blackHole(snapshot.table.count)
            }
        }
        let routesV6 = uniformRoutesV6(10_000)
        Benchmark("route snapshot build 10000 subnets: IPv6") { benchmark in
            for _ in benchmark.scaledIterations {
                let snapshot = IPv6RouteSnapshot(
                    routes: routesV6,
                    network: IPv6Prefix("fc00:0:1::/48")!,
                    subnetLength: 64
                )
                blackHole(snapshot.table.count)
            }
        }
    }

    // What the engine did until it gathered its sends (payload copied), and what it does now.
    Benchmark("segment 64 KB TCP super-packet (MSS 1398, vxlan gap)") { benchmark in
        withSuperPacket(outputBytes: 128 * 1024) { packet, header, output, capacity in
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                blackHole(
                    Segmentation.segment(packet, header: header, into: output, capacity: capacity, gap: VXLAN.overhead)
                )
            }
        }
    }

    Benchmark("segment headers of 64 KB TCP super-packet (MSS 1398, vxlan gap)") { benchmark in
        withSuperPacket(outputBytes: 32 * 1024) { packet, header, output, capacity in
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                blackHole(
                    Segmentation.segmentHeaders(
                        packet,
                        header: header,
                        into: output,
                        capacity: capacity,
                        gap: VXLAN.overhead
                    )
                )
            }
        }
    }
}

/// A 64 KB TCP super-packet as a TUN with vnet_hdr hands it out (MSS 1398, TCP checksum left
/// partial: the pseudo-header sum only) and an output region of `outputBytes` (set-up only).
private func withSuperPacket(
    outputBytes: Int,
    _ body: (PacketBuffer, VirtioNetHeader, UnsafeMutableRawPointer, Int) -> Void
) {
    let payload = 64_000
    let input = UnsafeMutableRawPointer.allocate(byteCount: 40 + payload, alignment: 64)
    let output = UnsafeMutableRawPointer.allocate(byteCount: outputBytes, alignment: 64)
    defer {
        input.deallocate()
        output.deallocate()
    }
    let header = VirtioNetHeader(
        flags: .needsChecksum,
        gsoType: .tcpV4,
        headerLength: 40,
        gsoSize: 1398,
        checksumStart: 20,
        checksumOffset: 16
    )
    body(makeTCPSuperPacket(at: input, payload: payload), header, output, outputBytes)
}

/// Keeps a snapshot alive across samples (benchmark set-up only, never on a hot path).
final class SnapshotOwner: Sendable {
    let snapshot: RouteSnapshot
    init(_ snapshot: consuming RouteSnapshot) { self.snapshot = snapshot }
}

/// Keeps an IPv6 snapshot alive across samples.
final class IPv6SnapshotOwner: Sendable {
    let snapshot: IPv6RouteSnapshot
    init(_ snapshot: consuming IPv6RouteSnapshot) { self.snapshot = snapshot }
}

/// flannel's IPv6 layout: /64s of fc00:0:1::/48, one per peer.
private func uniformRoutesV6(_ count: Int) -> [IPv6Route] {
    (0..<count).map { (i: Int) -> IPv6Route in
        let subnet = IPv6Prefix(IPv6Address(0xfc00_0000_0001 << 80 | UInt128(i) << 64), length: 64)
        let hop = NextHop(publicIP: IPv4Address(198, 18, UInt8(i >> 8), UInt8(i & 0xFF)), port: 8285, backend: .udp)
        return IPv6Route(subnet: subnet, nextHop: hop)
    }
}

private func shuffledDestinationsV6(_ routes: [IPv6Route]) -> [IPv6Address] {
    var generator = SplitMix64(seed: 42)
    var addresses = routes.map { $0.subnet.host(7) }
    while addresses.count < 4096 { addresses += addresses }
    addresses.shuffle(using: &generator)
    return addresses
}

private func uniformRoutes(_ count: Int) -> [Route] {
    (0..<count).map { (i: Int) -> Route in
        let high = UInt8(i >> 8)
        let low = UInt8(i & 0xFF)
        let subnet = IPv4Prefix(IPv4Address(10, high, low, 0), length: 24)
        let mac = MACAddress(0x0200_0000_0000 | UInt64(i))
        let hop = NextHop(publicIP: IPv4Address(198, 18, high, low), port: 8472, vtepMAC: mac, backend: .vxlan)
        return Route(subnet: subnet, nextHop: hop)
    }
}

private func shuffledDestinations(_ routes: [Route]) -> [IPv4Address] {
    var generator = SplitMix64(seed: 42)
    var addresses = routes.map { $0.subnet.host(7) }
    while addresses.count < 4096 { addresses += addresses }
    addresses.shuffle(using: &generator)
    return addresses
}

private func makeTCPSuperPacket(at base: UnsafeMutableRawPointer, payload: Int) -> PacketBuffer {
    let length = 40 + payload
    base.initializeMemory(as: UInt8.self, repeating: 0x5A, count: length)
    let packet = PacketBuffer(base: base, headroom: 0, length: length, capacity: length)
    writeSampleIPv4Header(packet, protocol: IPProtocol.tcp, flags: 0x4000)  // DF, as TCP sends
    let ip = IPv4Header(packet)
    packet.store16(40000, at: 20)
    packet.store16(5201, at: 22)
    packet.store32(1000, at: 24)
    packet.store32(1, at: 28)
    packet[32] = 0x50
    packet[33] = 0x18
    packet.store16(512, at: 34)
    let partial = InternetChecksum.pseudoHeaderSum(
        source: ip.source.networkOrder,
        destination: ip.destination.networkOrder,
        protocol: IPProtocol.tcp,
        length: 20 + payload
    )
    packet.start.storeBytes(of: ~InternetChecksum.finalize(partial), toByteOffset: 36, as: UInt16.self)
    packet.store16(0, at: 38)
    return packet
}
