import Addressing
import TestSupport

@testable import Routes

/// The specification, computed independently of the table's two strategies: one dictionary per
/// prefix length keyed by the top `length` bits (a shift, not a mask), probed from /32 down to /0;
/// the first hit is the longest match. Equal prefixes: the later input overwrites the earlier.
/// `scan` is the same specification by brute force, used to check this reference itself.
struct ReferenceRoutes {
    let input: [Route]
    let local: IPv4Prefix?
    private var byLength: [[UInt64: Route]] = Array(repeating: [:], count: 33)

    init(input: [Route], local: IPv4Prefix?) {
        self.input = input
        self.local = local
        for route in input where route.subnet != local {
            byLength[route.subnet.length][UInt64(route.subnet.network.value) >> UInt64(32 - route.subnet.length)] =
                route
        }
    }

    func lookup(_ address: IPv4Address) -> Route? {
        for length in stride(from: 32, through: 0, by: -1) {
            if let route = byLength[length][UInt64(address.value) >> UInt64(32 - length)] { return route }
        }
        return nil
    }

    /// Every route, longest containing one kept; among equal prefixes the later wins.
    func scan(_ address: IPv4Address) -> Route? {
        var best: Route?
        for route in input where route.subnet != local {
            let hostBits = UInt64(32 - route.subnet.length)
            let matches = UInt64(address.value) >> hostBits == UInt64(route.subnet.network.value) >> hostBits
            if matches, route.subnet.length >= (best?.subnet.length ?? -1) { best = route }
        }
        return best
    }

    /// Distinct subnets (last wins, local removed), ascending by (network, length).
    var expectedRoutes: [Route] {
        var bySubnet: [IPv4Prefix: Route] = [:]
        for route in input where route.subnet != local { bySubnet[route.subnet] = route }
        return bySubnet.values.sorted {
            $0.subnet.network.value != $1.subnet.network.value
                ? $0.subnet.network.value < $1.subnet.network.value
                : $0.subnet.length < $1.subnet.length
        }
    }
}

func randomNextHop(using generator: inout SplitMix64) -> NextHop {
    let backend = Backend.allCases.randomElement(using: &generator)!
    return NextHop(
        publicIP: IPv4Address(
            198,
            18,
            UInt8.random(in: 0...255, using: &generator),
            UInt8.random(in: 1...254, using: &generator)
        ),
        port: backend == .udp ? 8285 : 8472,
        vtepMAC: backend == .vxlan ? .randomLocallyAdministered(using: &generator) : MACAddress(0),
        backend: backend
    )
}

/// flannel's layout: `count` distinct random subnets of length `subnetLength` in `network`.
func uniformRoutes(count: Int, network: IPv4Prefix, subnetLength: Int, using generator: inout SplitMix64) -> [Route] {
    let available = 1 << (subnetLength - network.length)
    precondition(count <= available)
    var chosen = Set<Int>()
    if count * 2 > available {
        chosen = Set((0..<available).shuffled(using: &generator).prefix(count))
    } else {
        while chosen.count < count { chosen.insert(Int.random(in: 0..<available, using: &generator)) }
    }
    return chosen.map { number in
        let base = network.network.value + UInt32(number) << UInt32(32 - subnetLength)
        return Route(
            subnet: IPv4Prefix(IPv4Address(base), length: subnetLength),
            nextHop: randomNextHop(using: &generator)
        )
    }
}

/// Addresses worth asking about: a random host, the first and last address, and the addresses
/// just outside each route; the edges of `network`; and uniformly random addresses.
func probeAddresses(
    for routes: [Route],
    network: IPv4Prefix?,
    random: Int,
    using generator: inout SplitMix64
) -> [IPv4Address] {
    var probes: [IPv4Address] = []
    for route in routes {
        let first = route.subnet.network.value
        let last = route.subnet.last.value
        probes += [first, last, first &- 1, last &+ 1].map { IPv4Address(UInt32($0)) }
        probes.append(IPv4Address(first &+ UInt32.random(in: 0...(last - first), using: &generator)))
    }
    if let network {
        probes += [network.first.value, network.last.value, network.first.value &- 1, network.last.value &+ 1]
            .map { IPv4Address(UInt32($0)) }
        for _ in 0..<random {
            probes.append(
                IPv4Address(
                    network.first.value
                        &+ UInt32(truncatingIfNeeded: UInt64.random(in: 0..<network.size, using: &generator))
                )
            )
        }
    }
    for _ in 0..<random { probes.append(IPv4Address(UInt32.random(in: 0...UInt32.max, using: &generator))) }
    return probes
}

/// Checks every probe against the reference; returns the first few disagreements, described.
func disagreements(_ table: RouteTable, _ reference: ReferenceRoutes, _ probes: [IPv4Address]) -> [String] {
    var found: [String] = []
    for address in probes {
        let expected = reference.lookup(address)
        let route = table.lookupRoute(address)
        let nextHop = table.lookup(address)
        if route != expected || nextHop != expected?.nextHop {
            found.append(
                "\(address): table \(route.map(\.description) ?? "nil"), reference \(expected.map(\.description) ?? "nil")"
            )
            if found.count == 5 { break }
        }
    }
    return found
}
