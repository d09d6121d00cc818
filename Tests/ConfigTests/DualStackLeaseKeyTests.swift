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

    @Test func anIPv6OnlyLeaseIsWrittenWithTheEmptyIPv4Subnet() throws {
        // flanneld's MakeSubnetKey with EnableIPv4 false prints its zero IP4Net; read back, the
        // lease has no IPv4 subnet at all.
        let key = try #require(LeaseKey(parsing: "0.0.0.0-0&fc00:0:0:7::-64"))
        #expect(key.subnet == nil)
        #expect(key.ipv6Subnet == IPv6Prefix("fc00:0:0:7::/64"))
        #expect(key.label == "fc00:0:0:7::/64" && key.subnets == "fc00:0:0:7::/64")
        #expect(LeaseKey(subnet: nil, ipv6Subnet: IPv6Prefix("fc00:0:0:7::/64")).name == "0.0.0.0-0&fc00:0:0:7::-64")
        #expect(LeaseKey(subnet: nil, ipv6Subnet: IPv6Prefix("fc00:0:0:7::/64")) == key)
        // Alone, 0.0.0.0-0 stays an IPv4 key (one no Network fits).
        #expect(LeaseKey(parsing: "0.0.0.0-0")?.subnet == IPv4Prefix("0.0.0.0/0"))
    }

    @Test func anIPv6OnlyKeyFitsOnlyAnIPv6OnlyConfig() throws {
        let ipv6Only = try NetworkConfig.parse(#"{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48"}"#)
        let dualStack = try NetworkConfig.parse(
            #"{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48"}"#
        )
        let key = try #require(LeaseKey(parsing: "0.0.0.0-0&fc00:0:0:7::-64"))
        #expect(ipv6Only.fits(key))
        #expect(!dualStack.fits(key))
        #expect(!ipv6Only.fits(try #require(LeaseKey(parsing: "10.244.7.0-24&fc00:0:0:7::-64"))))
        #expect(!ipv6Only.fits(try #require(LeaseKey(parsing: "0.0.0.0-0&fd00:0:0:7::-64"))), "outside IPv6Network")
        #expect(ipv6Only.misfit(IPv4Prefix("10.244.7.0/24")!)?.contains("EnableIPv4 is false") == true)
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
