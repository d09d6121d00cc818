import Addressing
import Testing

@Suite struct IPv4AddressTests {
    @Test(arguments: [
        ("10.244.0.1", UInt32(0x0AF4_0001)),
        ("0.0.0.0", UInt32(0)),
        ("255.255.255.255", UInt32.max),
        ("198.18.0.2", UInt32(0xC612_0002)),
    ])
    func parsesDottedQuad(text: String, value: UInt32) {
        let address = IPv4Address(text)
        #expect(address?.value == value)
        #expect(address?.description == text)
    }

    @Test(arguments: [
        "", "1", "1.2.3", "1.2.3.4.5", "256.0.0.1", "01.2.3.4", "1..2.3", "1.2.3.4.",
        ".1.2.3", "1.2.3.-4", " 1.2.3.4", "1.2.3.4/8", "1234.1.1.1", "a.b.c.d",
    ])
    func rejectsMalformed(text: String) {
        #expect(IPv4Address(text) == nil)
    }

    @Test func networkOrderRoundTrips() {
        let address = IPv4Address(192, 168, 0, 1)
        withUnsafeBytes(of: address.networkOrder) { bytes in
            #expect(Array(bytes) == [192, 168, 0, 1])
        }
        #expect(IPv4Address(networkOrder: address.networkOrder) == address)
    }

    @Test func randomAddressesRoundTripThroughText() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<1000 {
            let address = IPv4Address(UInt32.random(in: 0...UInt32.max, using: &generator))
            #expect(IPv4Address(address.description) == address)
        }
    }
}

@Suite struct IPv4PrefixTests {
    @Test func masksHostBitsAsFlannelDoes() {
        let prefix = IPv4Prefix("10.1.2.3/16")
        #expect(prefix?.network == IPv4Address(10, 1, 0, 0))
        #expect(prefix?.description == "10.1.0.0/16")
    }

    @Test func containmentAndOverlap() throws {
        let network = try #require(IPv4Prefix("10.244.0.0/16"))
        let subnet = try #require(IPv4Prefix("10.244.34.0/24"))
        let outside = try #require(IPv4Prefix("10.245.0.0/24"))
        #expect(network.contains(subnet))
        #expect(!subnet.contains(network))
        #expect(network.overlaps(subnet) && subnet.overlaps(network))
        #expect(!network.overlaps(outside))
        #expect(subnet.contains(IPv4Address(10, 244, 34, 255)))
        #expect(!subnet.contains(IPv4Address(10, 244, 35, 0)))
        #expect(subnet.last == IPv4Address(10, 244, 34, 255))
        #expect(subnet.host(1) == IPv4Address(10, 244, 34, 1))
        #expect(subnet.size == 256)
    }

    @Test func zeroLengthPrefixCoversEverything() throws {
        let all = try #require(IPv4Prefix("0.0.0.0/0"))
        #expect(all.contains(IPv4Address(UInt32.max)))
        #expect(all.size == UInt64(1) << 32)
        #expect(all.next == nil)
    }

    @Test func nextWalksSubnetsAndStopsAtTheEnd() throws {
        let subnet = try #require(IPv4Prefix("10.244.255.0/24"))
        #expect(subnet.next?.description == "10.245.0.0/24")
        #expect(IPv4Prefix("255.255.255.0/24")?.next == nil)
    }

    @Test func leaseKeyForm() throws {
        let prefix = try #require(IPv4Prefix(leaseKey: "10.244.34.0-24"))
        #expect(prefix.description == "10.244.34.0/24")
        #expect(prefix.leaseKey == "10.244.34.0-24")
        #expect(IPv4Prefix(leaseKey: "10.244.34.0/24") == nil)
        #expect(IPv4Prefix(leaseKey: "10.244.34.0-33") == nil)
        #expect(IPv4Prefix(leaseKey: "10.244.34.0-") == nil)
    }

    @Test(arguments: [
        "10.0.0.0", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/1a", "/8", "10.0.0/8",
        "10.0.0.0/008",
    ])
    func rejectsMalformedCIDR(text: String) {
        #expect(IPv4Prefix(text) == nil)
    }

    @Test func containsAgreesWithRangeArithmetic() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let length = Int.random(in: 0...32, using: &generator)
            let prefix = IPv4Prefix(IPv4Address(UInt32.random(in: 0...UInt32.max, using: &generator)), length: length)
            let probe = IPv4Address(UInt32.random(in: 0...UInt32.max, using: &generator))
            let inRange =
                UInt64(probe.value) >= UInt64(prefix.first.value) && UInt64(probe.value) <= UInt64(prefix.last.value)
            #expect(prefix.contains(probe) == inRange)
            #expect(prefix.contains(prefix.first) && prefix.contains(prefix.last))
            #expect(UInt64(prefix.last.value) - UInt64(prefix.first.value) + 1 == prefix.size)
        }
    }
}

@Suite struct MACAddressTests {
    @Test func parsesBothSeparatorsAndPrintsLowercase() {
        #expect(MACAddress("AA:bb:CC:dd:EE:0f")?.description == "aa:bb:cc:dd:ee:0f")
        #expect(MACAddress("aa-bb-cc-dd-ee-0f") == MACAddress("aa:bb:cc:dd:ee:0f"))
        #expect(MACAddress("aa:bb:cc:dd:ee:0f")?.value == 0xAABB_CCDD_EE0F)
        #expect(MACAddress("aa:bb:cc:dd:ee:0f")?.bytes == [0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0x0F])
    }

    @Test(arguments: [
        "", "aa:bb:cc:dd:ee", "aa:bb:cc:dd:ee:ff:00", "aa:bb-cc:dd:ee:ff", "gg:bb:cc:dd:ee:ff",
        "aabb.ccdd.eeff", "aa:bb:cc:dd:ee:f",
    ])
    func rejectsMalformed(text: String) {
        #expect(MACAddress(text) == nil)
    }

    @Test func randomVTEPMACsAreLocallyAdministeredUnicast() {
        var generator = SystemRandomNumberGenerator()
        var seen = Set<MACAddress>()
        for _ in 0..<500 {
            let mac = MACAddress.randomLocallyAdministered(using: &generator)
            #expect(mac.isLocallyAdministeredUnicast)
            #expect(MACAddress(mac.description) == mac)
            seen.insert(mac)
        }
        #expect(seen.count > 490)
        #expect(!MACAddress.broadcast.isLocallyAdministeredUnicast)
    }
}
