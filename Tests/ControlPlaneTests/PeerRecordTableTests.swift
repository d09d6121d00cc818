import Addressing
import Config
import ControlPlane
import Routes
import TestSupport
import TestThreads
import Testing

/// The peer table as any subnet manager feeds it: records by the store's own names (node names
/// here, as the Kubernetes manager will), already parsed as far as the store could.
@Suite(.computeLane) struct PeerRecordTableTests {
    let vxlan = try! NetworkConfig.parse(#"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}"#)

    func lease(_ subnet: String, _ publicIP: String, mac: String) -> PeerRecord {
        .lease(
            subnet: IPv4Prefix(subnet)!,
            attributes: .vxlan(
                publicIP: IPv4Address(publicIP)!,
                data: VXLANLeaseData(configuredVNI: 1, vtepMAC: MACAddress(mac)!)
            )
        )
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
        #expect(
            routes == [
                Route(
                    subnet: IPv4Prefix("10.244.2.0/24")!,
                    nextHop: NextHop(
                        publicIP: IPv4Address("198.18.0.2")!,
                        port: 8472,
                        vtepMAC: MACAddress("0a:00:00:00:00:02")!,
                        backend: .vxlan
                    )
                )
            ]
        )
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
        #expect(
            table.routes(localSubnet: nil).routes.map(\.subnet) == [
                IPv4Prefix("10.244.3.0/24")!, IPv4Prefix("10.244.4.0/24")!,
            ]
        )
    }

    /// The table keeps its routes ordered as records come and go; after any sequence of puts and
    /// removes they must be what a fresh listing of the same records gives, skips included.
    @Test func routesKeptInOrderMatchAFreshListingAfterEveryChange() {
        var generator = SplitMix64(seed: 17)
        var table = PeerTable(config: vxlan)
        var records: [String: PeerRecord] = [:]
        let local = IPv4Prefix("10.244.1.0/24")!
        for step in 0..<3000 {
            let name = "node-\(Int.random(in: 0..<40, using: &generator))"
            if Int.random(in: 0..<4, using: &generator) == 0 {
                #expect(table.remove(name) == (records.removeValue(forKey: name) != nil))
            } else {
                let record = randomRecord(using: &generator)
                table.put(name, record)
                records[name] = record
            }
            var fresh = PeerTable(config: vxlan)
            fresh.replace(with: records)
            for localSubnet in [nil, local] {
                let kept = table.routes(localSubnet: localSubnet)
                let rebuilt = fresh.routes(localSubnet: localSubnet)
                #expect(kept.skipped == rebuilt.skipped, "step \(step)")
                // Equal subnets from different nodes may sit in either order.
                #expect(kept.routes.map(\.subnet) == rebuilt.routes.map(\.subnet), "step \(step)")
                #expect(
                    kept.routes.map(\.description).sorted() == rebuilt.routes.map(\.description).sorted(),
                    "step \(step)"
                )
            }
            #expect(table.count == records.count)
        }
    }

    func randomRecord(using generator: inout SplitMix64) -> PeerRecord {
        let third = Int.random(in: 0..<12, using: &generator)
        switch Int.random(in: 0..<10, using: &generator) {
        case 0: return .unreadable(.badJSON, subnet: nil)
        // may overlap ours
        case 1: return lease("10.244.\(third & ~1).0/23", "198.18.0.\(third)", mac: "0a:00:00:00:00:01")
        case 2: return lease("10.99.\(third).0/24", "198.18.0.\(third)", mac: "0a:00:00:00:00:01")  // outside Network
        default:
            return lease(
                "10.244.\(third).0/24",
                "198.18.0.\(Int.random(in: 1..<4, using: &generator))",
                mac: "0a:00:00:00:00:0\(Int.random(in: 1..<4, using: &generator))"
            )
        }
    }

    @Test func aStoreThatIsAwayIsOneProblemWhateverEachAttemptSays() {
        let refused = LeaseError(
            .store,
            "etcd http://198.18.0.254:2379: connection refused",
            problem: "etcd unreachable"
        )
        let reset = LeaseError(.store, "etcd http://198.18.0.253:2379: connection reset", problem: "etcd unreachable")
        let missing = LeaseError(.configMissing, "network config not found")
        #expect(refused.problem == reset.problem)
        #expect(missing.problem == missing.description)
    }
}
