import Addressing
import Operator
import Testing

@Suite struct LeaseRowTests {
    static let vxlanValue =
        #"{"PublicIP":"198.18.0.2","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:02"}}"#

    @Test func vxlanLeaseRow() {
        let row = LeaseRow(
            .init(key: "/coreos.com/network/subnets/10.244.2.0-24", value: Self.vxlanValue, expiry: .seconds(86399)),
            ownSubnet: IPv4Prefix("10.244.2.0/24")
        )
        #expect(row.cells == ["10.244.2.0/24", "198.18.0.2", "vxlan", "aa:bb:cc:dd:ee:02", "23h59m59s", "yes", ""])
        #expect(row.expiresInSeconds == 86399)
        #expect(row.problem == nil)
    }

    @Test func udpLeaseHasNoBackendTypeAndNoMAC() {
        let row = LeaseRow(
            .init(
                key: "/p/subnets/10.244.3.0-24",
                value: #"{"PublicIP":"198.18.0.3","PublicIPv6":null}"#,
                expiry: .seconds(61)
            ),
            ownSubnet: IPv4Prefix("10.244.2.0/24")
        )
        #expect(row.cells == ["10.244.3.0/24", "198.18.0.3", "udp", "-", "1m1s", "", ""])
    }

    @Test func reservationsAndExpiredLeases() {
        let reservation = LeaseRow(
            .init(key: "/p/subnets/10.244.4.0-24", value: #"{"PublicIP":"198.18.0.4"}"#, expiry: .never),
            ownSubnet: nil
        )
        #expect(reservation.expiresIn == "never (reservation)")
        #expect(reservation.expiresInSeconds == nil)
        let expired = LeaseRow(
            .init(key: "/p/subnets/10.244.5.0-24", value: #"{"PublicIP":"198.18.0.5"}"#, expiry: .expired),
            ownSubnet: nil
        )
        #expect(expired.expiresIn == "expired")
    }

    @Test func malformedRecordsAreRowsWithTheProblem() {
        let badKey = LeaseRow(.init(key: "/p/subnets/garbage", value: "{}", expiry: .never), ownSubnet: nil)
        #expect(badKey.subnet == "garbage")
        #expect(badKey.cells.last == "malformed: not a subnet key (want e.g. 10.244.34.0-24)")
        let badJSON = LeaseRow(
            .init(key: "/p/subnets/10.244.6.0-24", value: "{not json", expiry: .seconds(5)),
            ownSubnet: nil
        )
        #expect(badJSON.subnet == "10.244.6.0/24")
        #expect(badJSON.publicIP == nil)
        #expect(badJSON.cells[6].hasPrefix("malformed: "))
        let noMAC = LeaseRow(
            .init(
                key: "/p/subnets/10.244.7.0-24",
                value: #"{"PublicIP":"198.18.0.7","BackendType":"vxlan"}"#,
                expiry: .seconds(5)
            ),
            ownSubnet: nil
        )
        #expect(noMAC.publicIP == "198.18.0.7")
        #expect(noMAC.problem?.contains("BackendData is missing") == true)
    }

    @Test func rowsSortBySubnetWithBadKeysLast() {
        let records: [LeaseRecord] = [
            .init(key: "/p/subnets/zz", value: "", expiry: .never),
            .init(key: "/p/subnets/10.244.10.0-24", value: #"{"PublicIP":"198.18.0.10"}"#, expiry: .never),
            .init(key: "/p/subnets/10.244.9.0-24", value: #"{"PublicIP":"198.18.0.9"}"#, expiry: .never),
        ]
        #expect(LeaseRow.rows(records, ownSubnet: nil).map(\.subnet) == ["10.244.9.0/24", "10.244.10.0/24", "zz"])
    }

    @Test func durations() {
        #expect(LeaseRow.describe(seconds: 0) == "0s")
        #expect(LeaseRow.describe(seconds: 59) == "59s")
        #expect(LeaseRow.describe(seconds: 3600) == "1h")
        #expect(LeaseRow.describe(seconds: 3601) == "1h1s")
        #expect(LeaseRow.describe(seconds: 90061) == "1d1h1m1s")
    }
}
