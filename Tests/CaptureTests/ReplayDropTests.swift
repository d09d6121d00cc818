import Capture
import Foundation
import TestThreads
import Testing

/// One generated frame per drop case, replayed in one capture: each reason must be counted once.
@Suite(.ownThread) struct ReplayDropTests {
    static let valid = Frames.innerUDP(source: "10.244.1.2", destination: "10.244.2.2")

    /// (frame, the reason it must be dropped for; nil = delivered).
    static let vxlanCases: [(String, [UInt8], String?)] = {
        let valid = ReplayDropTests.valid
        var badIHL = valid
        badIHL[0] = 0x44
        var longTotal = valid
        Frames.put(valid.count + 1, &longTotal, at: 2)
        var shortTotal = valid
        Frames.put(19, &shortTotal, at: 2)
        var version6 = valid
        version6[0] = 0x65
        let spoofed = Frames.innerUDP(source: "10.244.5.5", destination: "10.244.2.2")
        var outerTCP = Frames.outerFrame(Frames.vxlan(valid))
        outerTCP[14 + 9] = 6
        return [
            ("valid", Frames.outerFrame(Frames.vxlan(valid)), nil),
            ("broadcast", Frames.outerFrame(Frames.vxlan(valid, destinationMAC: "ff:ff:ff:ff:ff:ff")), nil),
            ("outer truncated", Array(Frames.outerFrame(Frames.vxlan(valid)).prefix(14 + 12)), "truncated"),
            ("inner truncated", Frames.outerFrame(Frames.vxlan(Array(valid.prefix(12)))), "truncated"),
            ("bad IHL", Frames.outerFrame(Frames.vxlan(badIHL)), "bad_ihl"),
            ("total length past the datagram", Frames.outerFrame(Frames.vxlan(longTotal)), "bad_total_length"),
            ("total length below the header", Frames.outerFrame(Frames.vxlan(shortTotal)), "bad_total_length"),
            ("wrong version", Frames.outerFrame(Frames.vxlan(version6)), "wrong_version"),
            ("wrong VNI", Frames.outerFrame(Frames.vxlan(valid, vni: 2)), "wrong_vni"),
            ("I flag clear", Frames.outerFrame(Frames.vxlan(valid, flags: 0)), "vxlan_flag_clear"),
            ("not our MAC", Frames.outerFrame(Frames.vxlan(valid, destinationMAC: "aa:bb:cc:dd:ee:03")), "not_our_mac"),
            ("inner ARP", Frames.outerFrame(Frames.vxlan(valid, etherType: 0x0806)), "not_ipv4"),
            ("unknown sender", Frames.outerFrame(Frames.vxlan(valid), source: "198.18.0.77"), "unknown_sender"),
            ("spoofed source", Frames.outerFrame(Frames.vxlan(spoofed)), "spoofed_source"),
            ("other port", Frames.outerFrame(Frames.vxlan(valid), destinationPort: 4789), "not_our_traffic"),
            ("outer TCP", outerTCP, "not_our_traffic"),
        ]
    }()

    private func replay(
        _ cases: [(String, [UInt8], String?)],
        backend: String,
        routes: String,
        extra: [String] = []
    ) throws -> (WeftCommand.Result, [[UInt8]]) {
        let input = Fixture.temporaryPath("drops.pcap")
        let output = Fixture.temporaryPath("out.pcap")
        try Frames.write(cases.map(\.1), to: input, linkType: .ethernet)
        let result = try WeftCommand.run(
            [
                "replay", "decap", "--backend", backend, "--routes", Fixture.path(routes),
                "--input", input, "--output", output,
            ] + extra
        )
        #expect(result.status == 0, "\(result.error)")
        return (result, try Frames.read(output).1.map(\.bytes))
    }

    private func expectCounts(_ result: WeftCommand.Result, _ cases: [(String, [UInt8], String?)]) {
        var expected: [String: UInt64] = [:]
        for (_, _, reason) in cases { if let reason { expected["drop.\(reason)", default: 0] += 1 } }
        let counts = result.counts
        for (key, value) in expected { #expect(counts[key] == value, "\(key)") }
        let reported = counts.filter { $0.key.hasPrefix("drop.") }
        #expect(reported == expected, "\(result.output)")
        #expect(counts["dropped"] == UInt64(cases.filter { $0.2 != nil }.count))
        #expect(counts["frames in"] == UInt64(cases.count))
    }

    @Test func vxlanDropsEachCaseForItsReason() throws {
        let cases = Self.vxlanCases
        let (result, delivered) = try replay(
            cases,
            backend: "vxlan",
            routes: "bed-routes.json",
            extra: ["--vtep-mac", "aa:bb:cc:dd:ee:02"]
        )
        expectCounts(result, cases)
        #expect(delivered == [Self.valid, Self.valid])
    }

    /// Each case alone, so a reason counted for the wrong frame cannot hide behind another's count.
    @Test(arguments: vxlanCases.map { ($0.0, $0.1, $0.2) })
    func vxlanCaseAlone(name: String, frame: [UInt8], reason: String?) throws {
        let (result, delivered) = try replay(
            [(name, frame, reason)],
            backend: "vxlan",
            routes: "bed-routes.json",
            extra: ["--vtep-mac", "aa:bb:cc:dd:ee:02"]
        )
        if let reason {
            #expect(result.counts["drop.\(reason)"] == 1, "\(name): \(result.output)")
            #expect(delivered.isEmpty)
        } else {
            #expect(delivered.count == 1, "\(name): \(result.output)")
        }
    }

    /// With --public-ip, replay knows our lease (10.244.2.0/24) and drops what a peer sends for
    /// anywhere else, as the engine does; without it our subnet is unknown and they pass.
    @Test(arguments: [("vxlan", "bed-routes.json"), ("udp", "bed-routes-udp.json")])
    func relayedPacketsAreNotOurSubnet(backend: String, routes: String) throws {
        func frame(to destination: String) -> [UInt8] {
            let inner = Frames.innerUDP(source: "10.244.1.2", destination: destination)
            return backend == "vxlan"
                ? Frames.outerFrame(Frames.vxlan(inner)) : Frames.outerFrame(inner, destinationPort: 8285)
        }
        let cases: [(String, [UInt8], String?)] = [
            ("to our subnet", frame(to: "10.244.2.2"), nil),
            ("to our broadcast", frame(to: "10.244.2.255"), nil),
            ("to the underlay", frame(to: "198.18.0.3"), "not_our_subnet"),
            ("to our own underlay address", frame(to: "198.18.0.2"), "not_our_subnet"),
            ("back to the sender's subnet", frame(to: "10.244.1.9"), "not_our_subnet"),
        ]
        let (result, delivered) = try replay(
            cases,
            backend: backend,
            routes: routes,
            extra: ["--public-ip", "198.18.0.2"]
        )
        expectCounts(result, cases)
        #expect(delivered.count == 2)

        let (unknownSubnet, passed) = try replay(
            cases,
            backend: backend,
            routes: routes,
            extra: ["--vtep-mac", "aa:bb:cc:dd:ee:02"]
        )
        #expect(unknownSubnet.counts["dropped"] == 0, "\(unknownSubnet.output)")
        #expect(passed.count == cases.count)
    }

    @Test func udpDropsEachCaseForItsReason() throws {
        let valid = Self.valid
        let expiring = Frames.innerUDP(source: "10.244.1.2", destination: "10.244.2.2", ttl: 1)
        let spoofed = Frames.innerUDP(source: "10.244.5.5", destination: "10.244.2.2")
        var badIHL = valid
        badIHL[0] = 0x43
        let cases: [(String, [UInt8], String?)] = [
            ("valid", Frames.outerFrame(valid, destinationPort: 8285), nil),
            ("TTL expired", Frames.outerFrame(expiring, destinationPort: 8285), "ttl_expired"),
            ("bad IHL", Frames.outerFrame(badIHL, destinationPort: 8285), "bad_ihl"),
            ("truncated", Frames.outerFrame(Array(valid.prefix(16)), destinationPort: 8285), "truncated"),
            (
                "unknown sender", Frames.outerFrame(valid, source: "198.18.0.77", destinationPort: 8285),
                "unknown_sender"
            ),
            ("spoofed source", Frames.outerFrame(spoofed, destinationPort: 8285), "spoofed_source"),
            ("vxlan port", Frames.outerFrame(valid, destinationPort: 8472), "not_our_traffic"),
        ]
        let (result, delivered) = try replay(cases, backend: "udp", routes: "bed-routes-udp.json")
        expectCounts(result, cases)
        // flannel's udp proxy decrements the TTL on receipt.
        #expect(delivered == [Frames.decrementingTTL(valid)])
    }
}
