import Addressing
import Foundation
import Testing

@Suite struct IPv6AddressTests {
    /// Text in, canonical text out (RFC 5952 §4 and its examples).
    @Test(arguments: [
        ("2001:db8::1", "2001:db8::1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("2001:DB8::AbCd", "2001:db8::abcd"),
        ("::", "::"),
        ("::1", "::1"),
        ("1::", "1::"),
        ("fc00::", "fc00::"),
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),  // one zero group is not compressed
        ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),  // the longest run
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),  // the first of equal runs
        ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
        ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"),  // "::" for a single group parses; it is written as 0
        ("::ffff:198.18.0.1", "::ffff:198.18.0.1"),
        ("::FFFF:c612:1", "::ffff:198.18.0.1"),
        ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
        ("fe80::1:2:3:4", "fe80::1:2:3:4"),
    ])
    func parsesAndWritesCanonicalText(text: String, canonical: String) throws {
        let address = try #require(IPv6Address(text), "\(text) must parse")
        #expect(address.description == canonical)
        #expect(IPv6Address(canonical) == address, "the canonical text parses back")
    }

    @Test(arguments: [
        "", ":", ":::", "1:2", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8",
        "1::2::3", "12345::", "g::", ":1::", "1:", "1::2:", " ::1", "::1 ", "fe80::1%eth0",
        "[::1]", "1.2.3.4", "::1.2.3", "::1.2.3.4:5", "1:2:3:4:5:6:7:1.2.3.4", "::256.0.0.1", "2001:db8::/32",
    ])
    func rejectsMalformed(text: String) {
        #expect(IPv6Address(text) == nil, "\(text) must not parse: \(String(describing: IPv6Address(text)))")
    }

    @Test func wireBytesRoundTripInNetworkOrder() throws {
        let address = try #require(IPv6Address("2001:db8:1:2:3:4:5:6"))
        var bytes = [UInt8](repeating: 0, count: 17)
        bytes.withUnsafeMutableBytes { address.store(to: $0.baseAddress! + 1) }  // unaligned on purpose
        #expect(Array(bytes[1...]) == [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6])
        #expect(bytes.withUnsafeBytes { IPv6Address(loadingFrom: $0.baseAddress! + 1) } == address)
        #expect(address.group(0) == 0x2001 && address.group(7) == 6)
    }

    @Test func randomAddressesRoundTripThroughText() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            // Zero groups are common in real addresses: make half the groups zero.
            let groups = (0..<8).map { _ in
                Bool.random(using: &generator) ? 0 : UInt16.random(in: 0...UInt16.max, using: &generator)
            }
            let address = IPv6Address(groups: groups)
            #expect(IPv6Address(address.description) == address, "\(groups) → \(address)")
        }
    }

    @Test func codableUsesTheText() throws {
        let address = try #require(IPv6Address("fc00::1"))
        let data = try JSONEncoder().encode([address])
        #expect(String(decoding: data, as: UTF8.self) == #"["fc00::1"]"#)
        #expect(try JSONDecoder().decode([IPv6Address].self, from: data) == [address])
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([IPv6Address].self, from: Data(#"["10.0.0.1"]"#.utf8))
        }
    }
}

@Suite struct IPv6PrefixTests {
    @Test func hostBitsAreMaskedAndTheEndsAreRight() throws {
        let prefix = try #require(IPv6Prefix("fc00:0:0:7::1/48"))
        #expect(prefix.description == "fc00::/48")
        #expect(prefix.first == IPv6Address("fc00::"))
        #expect(prefix.last == IPv6Address("fc00:0:0:ffff:ffff:ffff:ffff:ffff"))
        #expect(prefix.contains(IPv6Address("fc00:0:0:1234::5")!))
        #expect(!prefix.contains(IPv6Address("fc00:0:1::")!))
        #expect(prefix.contains(IPv6Prefix("fc00:0:0:3::/64")!))
        #expect(!IPv6Prefix("fc00:0:0:3::/64")!.contains(prefix))
        #expect(prefix.overlaps(IPv6Prefix("fc00::/16")!) && !prefix.overlaps(IPv6Prefix("fd00::/16")!))
        #expect(IPv6Prefix("fc00::/64")!.host(1) == IPv6Address("fc00::1"))
    }

    @Test func lengthsAtTheEdges() throws {
        let all = try #require(IPv6Prefix("::/0"))
        #expect(all.mask == 0 && all.contains(IPv6Address("ffff::1")!) && all.next == nil)
        let one = try #require(IPv6Prefix("2001:db8::1/128"))
        #expect(one.first == one.last && one.next == IPv6Prefix("2001:db8::2/128"))
        #expect(IPv6Prefix("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128")!.next == nil)
        for bad in [
            "fc00::/129", "fc00::/", "fc00::/-1", "fc00::/1a", "fc00::", "fc00::/64/1", "10.0.0.0/8", "fc00::/1000",
        ] {
            #expect(IPv6Prefix(bad) == nil, "\(bad)")
        }
    }

    @Test func nextWalksSubnetsOfTheSameLength() throws {
        var prefix = try #require(IPv6Prefix("fc00::/64"))
        for expected in ["fc00:0:0:1::/64", "fc00:0:0:2::/64", "fc00:0:0:3::/64"] {
            prefix = try #require(prefix.next)
            #expect(prefix.description == expected)
        }
    }

    @Test func flannelsLeaseKeyForm() throws {
        let prefix = try #require(IPv6Prefix(leaseKey: "fc00:0:0:2::-64"))
        #expect(prefix.description == "fc00:0:0:2::/64")
        #expect(prefix.leaseKey == "fc00:0:0:2::-64")
        #expect(IPv6Prefix(leaseKey: "fc00::-64")?.leaseKey == "fc00::-64")
        #expect(IPv6Prefix(leaseKey: "fc00::/64") == nil && IPv6Prefix(leaseKey: "10.244.1.0-24") == nil)
    }
}
