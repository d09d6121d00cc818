import TestSupport
import TestThreads
import Testing

@testable import Config

/// Corrupts valid inputs (flip, insert, delete, truncate) and feeds them to every parser: each
/// must either parse or throw a one-line error, never trap.
@Suite(.computeLane) struct MalformedInput {
    static let seeds: [String] = [
        #"{"Network":"10.244.0.0/16","SubnetLen":24,"SubnetMin":"10.244.1.0","SubnetMax":"10.244.255.0","Backend":{"Type":"vxlan","VNI":1,"Port":8472}}"#,
        #"{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}"#,
        "export FLANNEL_NETWORK=\"10.1.0.0/16\"\nFLANNEL_SUBNET='10.1.74.1/24'\nFLANNEL_MTU=1472 # c\nFLANNEL_IPMASQ=false\n",
        #"{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","IPv6SubnetLen":64,"IPv6SubnetMin":"fc00:0:0:1::","IPv6SubnetMax":"fc00:0:0:ffff::"}"#,
        #"{"PublicIP":"192.168.64.3","PublicIPv6":"2001:db8::3","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"},"BackendV6Data":{"VNI":1,"VtepMAC":"d2:11:22:33:44:55"}}"#,
        "FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.72.1/24\nFLANNEL_IPV6_NETWORK=2001:cafe:42::/56\nFLANNEL_IPV6_SUBNET=2001:cafe:42::1/64\nFLANNEL_MTU=1450\n",
        "/coreos.com/network/subnets/10.5.52.0-24&fc00:0:0:5::-64",
    ]
    static let alphabet: [UInt8] =
        Array("{}[]\",:0123456789.-/\\u'#= \n\rtrue false null aAzZ\u{7F}".utf8) + [0x00, 0xC3, 0xE2, 0x80, 0xA8, 0xFF]

    func mutate(_ input: [UInt8], using random: inout SplitMix64) -> [UInt8] {
        var bytes = input
        for _ in 0..<Int.random(in: 1...4, using: &random) {
            let position = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &random)
            switch Int.random(in: 0..<4, using: &random) {
            case 0 where !bytes.isEmpty: bytes[position] = Self.alphabet.randomElement(using: &random)!
            case 1: bytes.insert(Self.alphabet.randomElement(using: &random)!, at: position)
            case 2 where !bytes.isEmpty: bytes.remove(at: position)
            default: bytes = Array(bytes.prefix(position))
            }
        }
        return bytes
    }

    func check(_ body: () throws(ConfigError) -> Void) {
        do {
            try body()
        } catch {
            #expect(!error.description.contains("\n"), "\(error.description)")
            #expect(!error.field.isEmpty)
        }
    }

    @Test func parsersSurviveCorruptedInput() {
        var random = SplitMix64(seed: 0x5EED)
        for round in 0..<6000 {
            let seed = Array(Self.seeds[round % Self.seeds.count].utf8)
            let bytes = mutate(seed, using: &random)
            check { () throws(ConfigError) in _ = try NetworkConfig.parse(bytes) }
            check { () throws(ConfigError) in _ = try NetworkConfig.validated(bytes, checks: .allocation) }
            check { () throws(ConfigError) in _ = try NetworkConfig.validated(bytes, checks: .podCIDRs) }
            check { () throws(ConfigError) in
                let lease = try LeaseAttributes.parse(bytes)
                // Whatever was accepted must encode to something that parses back to itself.
                #expect(try LeaseAttributes.parse(lease.json) == lease)
                _ = try? lease.vxlanData()
                _ = try? lease.vxlanV6Data()
            }
            let text = String(decoding: bytes, as: UTF8.self)
            check { () throws(ConfigError) in
                let env = try SubnetEnv.parse(text)
                // A /32 or /128 lease is written as its next address, as flanneld writes it.
                if (env.subnet?.length ?? 0) < 32 && (env.ipv6Subnet?.length ?? 0) < 128 {
                    #expect(try SubnetEnv.parse(env.text) == env)
                }
            }
            check { () throws(ConfigError) in _ = try DockerOptions().render(entries: SubnetEnv.parseEntries(text)) }
            if let key = LeaseKey(parsing: text) {
                #expect(LeaseKey(parsing: key.name) == key, "\(text)")
            }
        }
    }
}
