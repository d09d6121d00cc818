import Addressing
import Testing

@testable import Config

@Suite struct DualStackLeaseKeys {
    @Test func parsesFlannelsDualStackKey() throws {
        // The reference's example key.
        let key = try #require(LeaseKey(parsing: "/coreos.com/network/subnets/10.5.52.0-24&fc00:0:0:5::-64"))
        #expect(key.subnet == IPv4Prefix("10.5.52.0/24"))
        #expect(key.ipv6Subnet == IPv6Prefix("fc00:0:0:5::/64"))
        #expect(key.name == "10.5.52.0-24&fc00:0:0:5::-64")
        #expect(key != LeaseKey(subnet: key.subnet), "the IPv6 half is part of the key")
    }

    @Test func writesTheKeyAsFlanneldDoes() {
        let key = LeaseKey(subnet: IPv4Prefix("10.244.1.0/24")!, ipv6Subnet: IPv6Prefix("fc00:0:0:5::/64"))
        #expect(key.path(prefix: EtcdPath.defaultPrefix) == "/coreos.com/network/subnets/10.244.1.0-24&fc00:0:0:5::-64")
        #expect(LeaseKey(parsing: key.path(prefix: "/x")) == key)
        #expect(EtcdPath.owner(prefix: "/x", subnet: key) == "/x/weft/owners/10.244.1.0-24&fc00:0:0:5::-64")
    }

    @Test(arguments: [
        // (key as read, key as flanneld writes it): RFC 5952, the longest zero run compressed.
        ("10.0.0.0-24&fc00:0000:0000:0005::-64", "10.0.0.0-24&fc00:0:0:5::-64"),
        ("10.0.0.0-24&2001:db8:0:0:1::-80", "10.0.0.0-24&2001:db8:0:0:1::-80"),
        ("10.0.0.0-24&2001:db8::1:0:0:0:0-80", "10.0.0.0-24&2001:db8:0:1::-80"),
        ("10.0.0.0-24&fc00:0:0:5::-0064", "10.0.0.0-24&fc00:0:0:5::-64"),
        ("10.0.0.0-24&fc00:0:0:5::1-64", "10.0.0.0-24&fc00:0:0:5::-64"),
    ])
    func keysComeOutCanonical(read: String, written: String) throws {
        #expect(try #require(LeaseKey(parsing: read)).name == written)
    }

    @Test func anIPv6OnlyLeaseHasTheEmptyIPv4Subnet() throws {
        // flanneld's MakeSubnetKey with EnableIPv4 false prints its zero IP4Net.
        let key = try #require(LeaseKey(parsing: "0.0.0.0-0&fc00:0:0:7::-64"))
        #expect(key.subnet == IPv4Prefix("0.0.0.0/0"))
        #expect(key.ipv6Subnet == IPv6Prefix("fc00:0:0:7::/64"))
        #expect(
            LeaseKey(subnet: IPv4Prefix(.any, length: 0), ipv6Subnet: IPv6Prefix("fc00:0:0:7::/64")).name
                == "0.0.0.0-0&fc00:0:0:7::-64"
        )
    }

    @Test func prefixLengthsAreFiveAndSevenBits() {
        #expect(LeaseKey(parsing: "10.0.0.0-24&fc00::-127")?.ipv6Subnet?.length == 127)
        #expect(LeaseKey(parsing: "10.0.0.0-24&fc00::-128") == nil)
        #expect(LeaseKey(parsing: "10.0.0.0-32&fc00::-64") == nil)
        #expect(LeaseKey(parsing: "10.0.0.0-24&fc00::-99999999999999999999999") == nil)
    }

    @Test(arguments: [
        "10.244.34.0-24&FC00::-64",
        "10.244.34.0-24&fc00:::-64",
        "10.244.34.0-24&::ffff:1.2.3.4-64",
        "10.244.34.0-24&fc00::%eth0-64",
        "10.244.34.0-24&fc00::-",
        "10.244.34.0-24&fc00::--64",
        "10.244.34.0-24&fc00::-64&fd00::-64",
        "10.244.34.0-24&fc00:1:2:3:4:5:6:7:8-64",
    ])
    func malformedIPv6HalvesAreNotASubnet(key: String) {
        #expect(LeaseKey(parsing: key) == nil)
    }
}
