import Addressing
import Config
import ControlPlane
import Routes
import Testing

/// A publication carries the peers' IPv6 halves, and a change to them alone is published: an IPv6
/// dataplane (host-gw's IPv6 routes) follows the publications, not the watcher's table.
struct PeerRoutesIPv6Tests {
    let dualStack = try! NetworkConfig.parse(
        #"{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"host-gw"}}"#
    )

    func lease(_ host: Int, publicIPv6: String?) -> PeerRecord {
        .lease(
            subnet: IPv4Prefix("10.244.\(host).0/24")!,
            attributes: .hostGateway(
                publicIP: IPv4Address("198.18.0.\(host)")!,
                publicIPv6: publicIPv6.flatMap { IPv6Address($0) }
            ),
            ipv6Subnet: IPv6Prefix("fc00:0:0:\(host)::/64")!
        )
    }

    func publish(_ routes: inout PeerRoutes, _ publisher: RouteTablePublisher) -> RoutePublication? {
        routes.publishIfChanged(
            to: publisher,
            localSubnet: IPv4Prefix("10.244.1.0/24"),
            localIPv6Subnet: IPv6Prefix("fc00:0:0:1::/64"),
            revision: 1,
            now: { .zero }
        ).publication
    }

    @Test func aPublicationHoldsTheIPv6PeersAndAnIPv6OnlyChangeIsPublished() throws {
        var routes = PeerRoutes(config: dualStack)
        let publisher = RouteTablePublisher(
            RouteSnapshot(routes: [], network: dualStack.network, subnetLength: 24, localSubnet: nil)
        )
        routes.table.put("own", lease(1, publicIPv6: "2001:db8::1"))
        routes.table.put("peer", lease(2, publicIPv6: "2001:db8::2"))
        let first = try #require(publish(&routes, publisher))
        #expect(first.routes.map(\.subnet) == [IPv4Prefix("10.244.2.0/24")!])
        #expect(first.ipv6Peers.map(\.subnet) == [IPv6Prefix("fc00:0:0:2::/64")!], "our own IPv6 subnet is left out")
        #expect(first.ipv6Peers.first?.publicIPv6 == IPv6Address("2001:db8::2"))
        #expect(publish(&routes, publisher) == nil, "nothing changed")

        // The peer's PublicIPv6 moves; its IPv4 route is as before.
        routes.table.put("peer", lease(2, publicIPv6: "2001:db8::22"))
        let second = try #require(publish(&routes, publisher), "an IPv6-only change is published")
        #expect(second.routes == first.routes)
        #expect(second.ipv6Peers.first?.publicIPv6 == IPv6Address("2001:db8::22"))
        #expect(second.generation == first.generation + 1)
    }

    @Test func anIPv4OnlyNetworkPublishesNoIPv6Peers() throws {
        let ipv4Only = try NetworkConfig.parse(#"{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}"#)
        var routes = PeerRoutes(config: ipv4Only)
        let publisher = RouteTablePublisher(
            RouteSnapshot(routes: [], network: ipv4Only.network, subnetLength: 24, localSubnet: nil)
        )
        routes.table.put("peer", lease(2, publicIPv6: "2001:db8::2"))
        let publication = try #require(publish(&routes, publisher))
        #expect(publication.routes.count == 1 && publication.ipv6Peers.isEmpty)
    }
}
