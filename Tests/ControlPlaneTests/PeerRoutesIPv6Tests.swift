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
            RouteSnapshot(routes: [], config: dualStack)
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
            RouteSnapshot(routes: [], config: ipv4Only)
        )
        routes.table.put("peer", lease(2, publicIPv6: "2001:db8::2"))
        let publication = try #require(publish(&routes, publisher))
        #expect(publication.routes.count == 1 && publication.ipv6Peers.isEmpty)
    }

    /// An IPv6-only network (EnableIPv4 false): every peer is its IPv6 half alone, reached over its
    /// PublicIPv6, and the IPv4 table stays empty.
    @Test func anIPv6OnlyNetworkPublishesIPv6PeersAndNoIPv4Routes() throws {
        let ipv6Only = try NetworkConfig.parse(
            #"{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"host-gw"}}"#
        )
        var routes = PeerRoutes(config: ipv6Only)
        let publisher = RouteTablePublisher(RouteSnapshot(routes: [], config: ipv6Only))
        func ipv6OnlyLease(_ host: Int, publicIPv6: String?) -> PeerRecord {
            .lease(
                subnet: nil,
                attributes: .hostGateway(publicIP: .any, publicIPv6: publicIPv6.flatMap { IPv6Address($0) }),
                ipv6Subnet: IPv6Prefix("fc00:0:0:\(host)::/64")!
            )
        }
        routes.table.put("own", ipv6OnlyLease(1, publicIPv6: "2001:db8::1"))
        routes.table.put("peer", ipv6OnlyLease(2, publicIPv6: "2001:db8::2"))
        routes.table.put("no PublicIPv6", ipv6OnlyLease(3, publicIPv6: nil))
        // A dual-stack lease left from before IPv4 was turned off still routes its IPv6 half.
        routes.table.put("dual-stack", lease(4, publicIPv6: "2001:db8::4"))
        routes.table.put(
            "outside",
            .lease(
                subnet: nil,
                attributes: .hostGateway(publicIP: .any, publicIPv6: IPv6Address("2001:db8::5")),
                ipv6Subnet: IPv6Prefix("fd00:0:0:5::/64")!
            )
        )
        let publication = try #require(
            routes.publishIfChanged(
                to: publisher,
                localSubnet: nil,
                localIPv6Subnet: IPv6Prefix("fc00:0:0:1::/64"),
                revision: 1,
                now: { .zero }
            ).publication
        )
        #expect(publication.routes.isEmpty)
        #expect(
            publication.ipv6Peers.map(\.subnet) == [IPv6Prefix("fc00:0:0:2::/64")!, IPv6Prefix("fc00:0:0:4::/64")!]
        )
        #expect(publication.ipv6Peers.map(\.publicIPv6) == [IPv6Address("2001:db8::2"), IPv6Address("2001:db8::4")])
        #expect(routes.skipped == [.missingPublicIP: 1, .outsideNetwork: 1])
        #expect(publisher.withCurrent { $0.count } == 0, "the IPv4 table is empty")
    }

    /// vxlan on an IPv6-only network: flanneld publishes BackendV6Data alone, and that is the MAC.
    @Test func anIPv6OnlyVXLANPeerIsReadFromBackendV6Data() throws {
        let ipv6Only = try NetworkConfig.parse(
            #"{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"vxlan"}}"#
        )
        var table = PeerTable(config: ipv6Only)
        let attributes = try LeaseAttributes.parse(
            #"{"PublicIP":"0.0.0.0","PublicIPv6":"2001:db8::2","BackendType":"vxlan","BackendV6Data":{"VNI":1,"VtepMAC":"0e:00:00:00:00:06"}}"#
        )
        table.put("peer", .lease(subnet: nil, attributes: attributes, ipv6Subnet: IPv6Prefix("fc00:0:0:2::/64")!))
        let peer = try #require(table.ipv6Peers(localSubnet: nil).first)
        #expect(peer.vtepMAC == MACAddress("0e:00:00:00:00:06") && peer.publicIPv6 == IPv6Address("2001:db8::2"))
        #expect(table.routes(localSubnet: nil).routes.isEmpty)
    }
}
