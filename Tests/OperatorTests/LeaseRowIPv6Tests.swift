import Addressing
import Operator
import Testing

/// `weft leases` on a dual-stack network: both halves of the key, both public IPs, both VtepMACs.
@Suite struct LeaseRowIPv6Tests {
    static let dualStackValue =
        #"{"PublicIP":"198.18.0.2","PublicIPv6":"2001:db8::2","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:02"},"BackendV6Data":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:62"}}"#

    @Test func dualStackLeaseShowsBothFamilies() {
        let row = LeaseRow(
            .init(
                key: "/coreos.com/network/subnets/10.244.2.0-24&fc00:0:0:2::-64",
                value: Self.dualStackValue,
                expiry: .seconds(60)
            ),
            ownSubnet: IPv4Prefix("10.244.2.0/24")
        )
        #expect(row.ipv6Subnet == "fc00:0:0:2::/64" && row.publicIPv6 == "2001:db8::2")
        #expect(
            row.cells(ipv6: true) == [
                "10.244.2.0/24", "fc00:0:0:2::/64", "198.18.0.2", "2001:db8::2", "vxlan",
                "aa:bb:cc:dd:ee:02 / aa:bb:cc:dd:ee:62", "1m", "yes", "",
            ]
        )
        #expect(LeaseRow.headers(ipv6: true).count == row.cells(ipv6: true).count)
        #expect(LeaseRow.headers(ipv6: true)[1] == "IPV6 SUBNET" && LeaseRow.headers(ipv6: true)[3] == "PUBLIC IPV6")
    }

    @Test func anIPv4LeaseAmongDualStackOnesHasDashesForIPv6() {
        let row = LeaseRow(
            .init(
                key: "/p/subnets/10.244.3.0-24",
                value: #"{"PublicIP":"198.18.0.3","PublicIPv6":null}"#,
                expiry: .never
            ),
            ownSubnet: nil
        )
        #expect(
            row.cells(ipv6: true) == [
                "10.244.3.0/24", "-", "198.18.0.3", "-", "udp", "-", "never (reservation)", "", "",
            ]
        )
        #expect(row.cells == ["10.244.3.0/24", "198.18.0.3", "udp", "-", "never (reservation)", "", ""])
    }
}
