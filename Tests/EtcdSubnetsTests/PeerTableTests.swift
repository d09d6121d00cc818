import Addressing
import Config
import Etcd
import Routes
import Testing

@testable import ControlPlane
@testable import EtcdSubnets

/// Record validation and route building, without etcd.
struct PeerTableTests {
    let vxlan = try! NetworkConfig.parse(#"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","Port":4789}}"#)
    let udp = try! NetworkConfig.parse(#"{"Network":"10.244.0.0/16","Backend":{"Type":"udp","Port":9000}}"#)
    let hostGateway = try! NetworkConfig.parse(#"{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}"#)

    func put(_ name: String, _ value: String, revision: Int64 = 1) -> WatchEvent {
        WatchEvent(
            kind: .put,
            kv: KeyValue(
                key: "/coreos.com/network/subnets/\(name)",
                value: value,
                createRevision: revision,
                modRevision: revision,
                version: 1,
                lease: nil
            )
        )
    }

    func delete(_ name: String, revision: Int64) -> WatchEvent {
        WatchEvent(
            kind: .delete,
            kv: KeyValue(
                key: "/coreos.com/network/subnets/\(name)",
                value: "",
                createRevision: 0,
                modRevision: revision,
                version: 0,
                lease: nil
            )
        )
    }

    @Test func eachMalformedRecordIsSkippedForItsReasonAndTheRestStay() {
        var table = PeerTable(config: vxlan)
        let good = flannelVXLANValue(publicIP: "198.18.0.2", mac: "0a:00:00:00:00:02")
        table.apply(put("10.244.2.0-24", good))
        table.apply(put("garbage", good))
        table.apply(put("10.244.3.0-24", "{\"PublicIP\":"))
        table.apply(
            put(
                "10.244.4.0-24",
                #"{"PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0a:00:00:00:00:04"}}"#
            )
        )
        table.apply(put("10.99.5.0-24", flannelVXLANValue(publicIP: "198.18.0.5", mac: "0a:00:00:00:00:05")))
        table.apply(put("10.244.0.0-23", flannelVXLANValue(publicIP: "198.18.0.6", mac: "0a:00:00:00:00:06")))
        table.apply(put("10.244.7.0-24", #"{"PublicIP":"198.18.0.7","PublicIPv6":null,"BackendType":"vxlan"}"#))
        table.apply(put("10.244.1.0-24", flannelVXLANValue(publicIP: "198.18.0.1", mac: "0a:00:00:00:00:01")))

        let (routes, skipped) = table.routes(localSubnet: cidr("10.244.1.0/24"))
        let mac = MACAddress("0a:00:00:00:00:02")!
        #expect(
            routes == [
                Route(
                    subnet: cidr("10.244.2.0/24"),
                    nextHop: NextHop(publicIP: IPv4Address("198.18.0.2")!, port: 4789, vtepMAC: mac, backend: .vxlan)
                )
            ]
        )
        #expect(
            skipped == [
                .badKey: 1, .badJSON: 1, .missingPublicIP: 1, .outsideNetwork: 1, .overlapsLocal: 1, .badBackendData: 1,
            ]
        )
    }

    @Test func udpAndHostGatewayRoutesTakeThePortFromTheConfig() {
        var table = PeerTable(config: udp)
        table.apply(put("10.244.2.0-24", #"{"PublicIP":"198.18.0.2","PublicIPv6":null}"#))
        #expect(
            table.routes(localSubnet: nil).routes.map(\.nextHop) == [
                NextHop(publicIP: IPv4Address("198.18.0.2")!, port: 9000, backend: .udp)
            ]
        )

        var gateways = PeerTable(config: hostGateway)
        gateways.apply(put("10.244.2.0-24", #"{"PublicIP":"198.18.0.2","PublicIPv6":null,"BackendType":"host-gw"}"#))
        #expect(
            gateways.routes(localSubnet: nil).routes.map(\.nextHop) == [
                NextHop(publicIP: IPv4Address("198.18.0.2")!, port: 0, backend: .hostGateway)
            ]
        )
    }

    @Test func aHostGatewayNetworkSkipsLeasesOfOtherBackends() {
        var gateways = PeerTable(config: hostGateway)
        gateways.apply(put("10.244.2.0-24", #"{"PublicIP":"198.18.0.2","PublicIPv6":null,"BackendType":"host-gw"}"#))
        // flannel's udp node writes no BackendType; a vxlan node writes "vxlan" with its BackendData.
        gateways.apply(put("10.244.3.0-24", #"{"PublicIP":"198.18.0.3","PublicIPv6":null}"#))
        gateways.apply(put("10.244.4.0-24", flannelVXLANValue(publicIP: "198.18.0.4", mac: "0a:00:00:00:00:04")))
        let (routes, skipped) = gateways.routes(localSubnet: nil)
        #expect(routes.map(\.subnet) == [IPv4Prefix("10.244.2.0/24")!])
        #expect(skipped == [.otherBackend: 2])
    }

    @Test func deleteRemovesAndAReplacedListingReportsTheDifference() {
        var table = PeerTable(config: vxlan)
        let added = table.apply(
            put("10.244.2.0-24", flannelVXLANValue(publicIP: "198.18.0.2", mac: "0a:00:00:00:00:02"))
        )
        // Re-putting the same value changes nothing.
        let repeated = table.apply(
            put("10.244.2.0-24", flannelVXLANValue(publicIP: "198.18.0.2", mac: "0a:00:00:00:00:02"), revision: 2)
        )
        table.apply(put("10.244.3.0-24", flannelVXLANValue(publicIP: "198.18.0.3", mac: "0a:00:00:00:00:03")))
        let deleted = table.apply(delete("10.244.3.0-24", revision: 4))
        let deletedAgain = table.apply(delete("10.244.3.0-24", revision: 5))
        #expect(added && !repeated && deleted && !deletedAgain)

        let listing = [
            put("10.244.2.0-24", flannelVXLANValue(publicIP: "198.18.0.2", mac: "0a:00:00:00:00:22")).kv,
            put("10.244.8.0-24", flannelVXLANValue(publicIP: "198.18.0.8", mac: "0a:00:00:00:00:08")).kv,
        ]
        let difference = table.replace(with: listing)
        #expect(difference.added == 1)
        #expect(difference.removed == 0)
        #expect(difference.changed == 1)
        let emptied = table.replace(with: [])
        #expect(emptied == (added: 0, removed: 2, changed: 0))
        #expect(table.routes(localSubnet: nil).routes.isEmpty)
    }
}
