import Capture
import Foundation
import TestThreads
import Testing

/// Failures a user can act on: exit status 1 and one line on standard error.
@Suite(.ownThread) struct ReplayErrorTests {
    private func expectOneLine(_ result: WeftCommand.Result, _ expected: String) {
        #expect(result.status == 1)
        #expect(result.error == "weft: \(expected)\n", "\(result.error)")
        #expect(result.output.isEmpty)
    }

    @Test func unreadableInput() throws {
        let output = Fixture.temporaryPath("out.pcap")
        let result = try WeftCommand.run([
            "replay", "decap", "--backend", "udp", "--input", "/nonexistent-weft/in.pcap",
            "--output", output,
        ])
        expectOneLine(result, "cannot read capture /nonexistent-weft/in.pcap: No such file or directory")
    }

    @Test func unwritableOutput() throws {
        let result = try WeftCommand.run([
            "replay", "decap", "--backend", "udp", "--input", Fixture.path("udp-gso-underlay.pcap"),
            "--output", "/nonexistent-weft/out.pcap",
        ])
        expectOneLine(result, "cannot write capture /nonexistent-weft/out.pcap: No such file or directory")
    }

    /// host-gw moves no packet through Weft: the argument parser names the two backends it takes.
    @Test func hostGatewayIsNotABackendToReplay() throws {
        let result = try WeftCommand.run([
            "replay", "decap", "--backend", "host-gw", "--input", Fixture.path("udp-gso-underlay.pcap"),
            "--output", Fixture.temporaryPath("out.pcap"),
        ])
        #expect(result.status != 0)
        #expect(
            result.error.contains("'host-gw' is invalid") && result.error.contains("one of 'udp' and 'vxlan'"),
            "\(result.error)"
        )
    }

    @Test func vxlanDecapNeedsOurMAC() throws {
        let result = try WeftCommand.run([
            "replay", "decap", "--backend", "vxlan", "--input", Fixture.path("udp-gso-underlay.pcap"),
            "--output", Fixture.temporaryPath("out.pcap"),
        ])
        expectOneLine(
            result,
            "vxlan decap needs our VTEP MAC: pass --vtep-mac (or --routes and --public-ip of a lease with a VtepMAC)"
        )
    }

    @Test func encapNeedsOurLease() throws {
        let result = try WeftCommand.run([
            "replay", "encap", "--backend", "vxlan", "--routes", Fixture.path("bed-routes.json"),
            "--public-ip", "198.18.0.50", "--input", Fixture.path("golden-inner.pcap"),
            "--output", Fixture.temporaryPath("out.pcap"),
        ])
        expectOneLine(
            result,
            "--public-ip 198.18.0.50 owns no lease in \(Fixture.path("bed-routes.json")): encap needs our lease for the TUN address"
        )
    }

    // Lease values are read by Config's LeaseAttributes; these messages are its wording.
    @Test(arguments: [
        (#"[1, 2]"#, "the top level must be a JSON object of lease key → lease value"),
        (#"{"10.244.1.0-24": "#, "not valid JSON (want an object of lease key → lease value)"),
        (
            #"{"10.244.1.0/24": {"PublicIP": "198.18.0.1"}}"#,
            #"key "10.244.1.0/24" is not a flannel subnet key (want e.g. 10.244.34.0-24)"#
        ),
        (
            #"{"10.244.1.0-24": {"PublicIP": "198.18.0.300"}}"#,
            #"10.244.1.0-24: PublicIP "198.18.0.300" is not an IPv4 address; use a dotted quad, e.g. "PublicIP": "198.18.0.1""#
        ),
        (
            #"{"10.244.1.0-24": {"PublicIP": "198.18.0.1", "BackendType": "vxlan"}}"#,
            #"10.244.1.0-24: BackendData is missing, so the peer's VtepMAC is unknown; the peer must publish {"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"}"#
        ),
        (
            #"{"10.244.1.0-24": {"PublicIP": "198.18.0.1", "BackendType": "vxlan", "BackendData": {"VNI": 16777216}}}"#,
            #"10.244.1.0-24: BackendData.VNI 16777216 is outside 0...65535 (flannel reads it as uint16); publish e.g. "VNI": 1"#
        ),
        (
            #"{"10.244.1.0-24": {"PublicIP": "198.18.0.1", "BackendType": "vxlan", "BackendData": {"VNI": 1}}}"#,
            #"10.244.1.0-24: BackendData.VtepMAC is missing; the peer must publish e.g. "VtepMAC": "aa:bb:cc:dd:ee:ff""#
        ),
    ])
    func badRoutesFile(json: String, reason: String) throws {
        let routes = Fixture.temporaryPath("routes.json")
        try Data(json.utf8).write(to: URL(fileURLWithPath: routes))
        let result = try WeftCommand.run([
            "replay", "decap", "--backend", "vxlan", "--vtep-mac", "aa:bb:cc:dd:ee:02",
            "--routes", routes, "--input", Fixture.path("udp-gso-underlay.pcap"),
            "--output", Fixture.temporaryPath("out.pcap"),
        ])
        expectOneLine(result, "cannot read routes \(routes): \(reason)")
    }

    @Test func unsupportedLinkType() throws {
        let input = Fixture.temporaryPath("null.pcap")
        try Frames.write([[2, 0, 0, 0]], to: input, linkType: LinkType(rawValue: 0))
        let result = try WeftCommand.run([
            "replay", "decap", "--backend", "udp", "--input", input,
            "--output", Fixture.temporaryPath("out.pcap"),
        ])
        expectOneLine(result, "cannot replay \(input): link type NULL (want EN10MB, RAW, LINUX_SLL or LINUX_SLL2)")
    }
}
