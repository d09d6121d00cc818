import Addressing
import Testing

@testable import Routes

/// The IPv6 table's routes with vxlan's IPv6 underlay: what a lookup answers, and which senders
/// `isPeer` knows (a peer's IPv4 PublicIP and its PublicIPv6 both).
@Suite struct IPv6UnderlayRouteTests {
    static let hopA = NextHop(
        publicIP: IPv4Address(198, 18, 0, 1),
        port: 8472,
        vtepMAC: MACAddress("02:00:00:00:04:01")!,
        backend: .vxlan
    )
    static let hopC = NextHop(
        publicIP: IPv4Address(198, 18, 0, 3),
        port: 8472,
        vtepMAC: MACAddress("02:00:00:00:04:03")!,
        backend: .vxlan
    )
    static let publicIPv6A = IPv6Address("2001:db8::1")!
    static let macA6 = MACAddress("02:00:00:00:06:01")!

    static func snapshot() -> IPv6RouteSnapshot {
        IPv6RouteSnapshot(
            routes: [
                IPv6Peer(
                    subnet: IPv6Prefix("fc00:0:0:1::/64")!,
                    nextHop: hopA,
                    publicIPv6: publicIPv6A,
                    vtepMAC: macA6
                ).route,
                IPv6Peer(subnet: IPv6Prefix("fc00:0:0:3::/64")!, nextHop: hopC, publicIPv6: nil, vtepMAC: nil).route,
            ],
            network: IPv6Prefix("fc00::/48")!,
            subnetLength: 64
        )
    }

    @Test func aLookupAnswersTheIPv4HopAndTheRouteTheIPv6Underlay() throws {
        let snapshot = Self.snapshot()
        let table = snapshot.table
        #expect(table.lookup(IPv6Address("fc00:0:0:1::9")!) == Self.hopA)
        let route = try #require(table.lookupRoute(IPv6Address("fc00:0:0:1::9")!))
        #expect(route.hasIPv6Underlay)
        #expect(route.ipv6Hop == IPv6Hop(address: Self.publicIPv6A, peer: Self.hopA.publicIP, port: 8472))
        #expect(route.vtepMAC == Self.macA6)
        #expect(route.description == "fc00:0:0:1::/64 via [2001:db8::1]:8472 vxlan 02:00:00:00:06:01")
        let other = try #require(table.lookupRoute(IPv6Address("fc00:0:0:3::9")!))
        #expect(!other.hasIPv6Underlay)
        #expect(other.description == "fc00:0:0:3::/64 via 198.18.0.3:8472 vxlan 02:00:00:00:04:03")
    }

    @Test func isPeerKnowsBothUnderlaysOfAPeer() {
        let snapshot = Self.snapshot()
        let table = snapshot.table
        #expect(table.isPeer(publicIP: Self.publicIPv6A))
        #expect(table.isPeer(publicIP: Self.hopA.publicIP))
        #expect(table.isPeer(publicIP: Self.hopC.publicIP))
        #expect(!table.isPeer(publicIP: IPv6Address("2001:db8::3")!))
        #expect(!table.isPeer(publicIP: IPv4Address(198, 18, 0, 2)))
        // An IPv4 address's mapped form is not mistaken for an IPv6 sender's.
        #expect(!table.isPeer(publicIP: IPv6Address(UInt128(Self.hopA.publicIP.value))))
    }

    @Test func anIPv6RouteIsOneTrivialCacheLine() {
        #expect(MemoryLayout<IPv6Route>.stride == 64)
        #expect(_isPOD(IPv6Route.self))
        #expect(MemoryLayout<IPv6Hop>.stride == 32)
    }

    @Test func udpLeasesStayOnTheIPv4UnderlayWhateverTheyPublish() {
        let udp = NextHop(publicIP: IPv4Address(198, 18, 0, 1), port: 8285, backend: .udp)
        let route = IPv6Peer(
            subnet: IPv6Prefix("fc00:0:0:1::/64")!,
            nextHop: udp,
            publicIPv6: Self.publicIPv6A,
            vtepMAC: Self.macA6
        ).route
        #expect(!route.hasIPv6Underlay)
        #expect(route == IPv6Route(subnet: IPv6Prefix("fc00:0:0:1::/64")!, nextHop: udp))
    }
}
