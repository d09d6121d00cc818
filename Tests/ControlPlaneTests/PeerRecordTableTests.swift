import Addressing
import Config
import ControlPlane
import Routes
import Testing

/// The peer table as any subnet manager feeds it: records by the store's own names (node names
/// here, as the Kubernetes manager will), already parsed as far as the store could.
struct PeerRecordTableTests {
    let vxlan = try! NetworkConfig.parse(#"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}"#)

    func lease(_ subnet: String, _ publicIP: String, mac: String) -> PeerRecord {
        .lease(subnet: IPv4Prefix(subnet)!, attributes: .vxlan(publicIP: IPv4Address(publicIP)!,
                                                              data: VXLANLeaseData(configuredVNI: 1, vtepMAC: MACAddress(mac)!)))
    }

    @Test func recordsByNodeNameBecomeRoutesAndUnreadableOnesAreCountedByReason() {
        var table = PeerTable(config: vxlan)
        let added = table.put("node-a", lease("10.244.2.0/24", "198.18.0.2", mac: "0a:00:00:00:00:02"))
        let again = table.put("node-a", lease("10.244.2.0/24", "198.18.0.2", mac: "0a:00:00:00:00:02"))
        #expect(added)
        #expect(!again, "the same record again changes nothing")
        table.put("node-b", .unreadable(.badJSON, subnet: IPv4Prefix("10.244.3.0/24")))
        table.put("node-c", lease("10.99.0.0/24", "198.18.0.4", mac: "0a:00:00:00:00:04"))
        let (routes, skipped) = table.routes(localSubnet: IPv4Prefix("10.244.1.0/24"))
        #expect(routes == [Route(subnet: IPv4Prefix("10.244.2.0/24")!,
                                 nextHop: NextHop(publicIP: IPv4Address("198.18.0.2")!, port: 8472, vtepMAC: MACAddress("0a:00:00:00:00:02")!, backend: .vxlan))])
        #expect(skipped == [.badJSON: 1, .outsideNetwork: 1])
        #expect(table.count == 3)
    }

    @Test func aChangedPublicIPReplacesTheRouteAndARemovedNodeTakesItsRouteAlong() {
        var table = PeerTable(config: vxlan)
        table.put("node-a", lease("10.244.2.0/24", "198.18.0.2", mac: "0a:00:00:00:00:02"))
        let moved = table.put("node-a", lease("10.244.2.0/24", "198.18.0.9", mac: "0a:00:00:00:00:02"))
        #expect(moved)
        #expect(table.routes(localSubnet: nil).routes.map(\.nextHop.publicIP) == [IPv4Address("198.18.0.9")!])
        let removed = table.remove("node-a")
        let removedAgain = table.remove("node-a")
        #expect(removed && !removedAgain)
        #expect(table.routes(localSubnet: nil).routes.isEmpty)
    }

    @Test func aRelistCountsWhatWasAddedRemovedAndChanged() {
        var table = PeerTable(config: vxlan)
        table.put("node-a", lease("10.244.2.0/24", "198.18.0.2", mac: "0a:00:00:00:00:02"))
        table.put("node-b", lease("10.244.3.0/24", "198.18.0.3", mac: "0a:00:00:00:00:03"))
        let difference = table.replace(with: [
            "node-b": lease("10.244.3.0/24", "198.18.0.33", mac: "0a:00:00:00:00:03"),
            "node-c": lease("10.244.4.0/24", "198.18.0.4", mac: "0a:00:00:00:00:04"),
        ])
        #expect(difference.added == 1 && difference.removed == 1 && difference.changed == 1)
        #expect(table.routes(localSubnet: nil).routes.map(\.subnet) == [IPv4Prefix("10.244.3.0/24")!, IPv4Prefix("10.244.4.0/24")!])
    }

    @Test func aStoreThatIsAwayIsOneProblemWhateverEachAttemptSays() {
        let refused = LeaseError(.store, "etcd http://198.18.0.254:2379: connection refused", problem: "etcd unreachable")
        let reset = LeaseError(.store, "etcd http://198.18.0.253:2379: connection reset", problem: "etcd unreachable")
        let missing = LeaseError(.configMissing, "network config not found")
        #expect(refused.problem == reset.problem)
        #expect(missing.problem == missing.description)
    }
}
