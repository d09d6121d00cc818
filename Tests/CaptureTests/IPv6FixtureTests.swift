import Capture
import Foundation
import TestThreads
import Testing

/// The IPv6 captures (scripts/capture-fixtures.sh inner6 and underlay6) are what their names say,
/// as tshark dissects them: kernel VXLAN (VNI 1, port 8472) carrying inner IPv6 between the
/// containers' fc00:0:0:1::2 and fc00:0:0:2::2, over the IPv4 underlay with flannel.1's VtepMACs
/// (inner6), or over the IPv6 underlay with flannel-v6.1's (underlay6).
@Suite(.ownThread, .enabled(if: TShark.path != nil, "tshark is not installed"))
struct IPv6FixtureTests {
    static let fields = [
        "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "vxlan.vni", "eth.type", "eth.src", "frame.protocols",
    ]

    /// tshark's fields of every frame, by name.
    private func dissect(_ name: String) throws -> [[String: String]] {
        let lines = try TShark.fields(Fixture.path(name), Self.fields)
        let (_, frames) = try Frames.read(Fixture.path(name))
        #expect(lines.count == frames.count)
        return lines.map { line in
            let values = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            return Dictionary(uniqueKeysWithValues: zip(Self.fields, values))
        }
    }

    /// The protocols the bed's traffic must show somewhere in the capture: echo (ICMPv6), the
    /// 2000-byte pings' fragments, iperf3's TCP and the UDP datagrams to port 9.
    private func expectTheBedsTraffic(_ frames: [[String: String]]) {
        let protocols = frames.map { $0["frame.protocols"] ?? "" }
        for layer in [":ipv6:icmpv6", ":ipv6:ipv6.fraghdr", ":ipv6:tcp", ":ipv6:udp"] {
            #expect(protocols.contains { $0.contains(layer) }, "no \(layer) frame")
        }
    }

    @Test func inner6IsInnerIPv6InVXLANOverIPv4() throws {
        let frames = try dissect("inner6-underlay.pcap")
        let toB = [
            "ip.src": "198.18.0.1", "ip.dst": "198.18.0.2", "mac": "aa:bb:cc:dd:ee:01",
            "inner": "fc00:0:0:1::2", "peer": "fc00:0:0:2::2",
        ]
        let toA = [
            "ip.src": "198.18.0.2", "ip.dst": "198.18.0.1", "mac": "aa:bb:cc:dd:ee:02",
            "inner": "fc00:0:0:2::2", "peer": "fc00:0:0:1::2",
        ]
        for frame in frames {
            let way = frame["ip.src"] == "198.18.0.1" ? toB : toA
            #expect(frame["ip.dst"] == way["ip.dst"])
            #expect(frame["vxlan.vni"] == "1")
            #expect(frame["eth.type"] == "0x0800,0x86dd")
            #expect(frame["eth.src"]?.hasSuffix("," + way["mac"]!) == true)
            // An ICMPv6 error quotes the offending packet's addresses after its own.
            #expect(frame["ipv6.src"]?.hasPrefix(way["inner"]!) == true)
            #expect(frame["ipv6.dst"]?.hasPrefix(way["peer"]!) == true)
        }
        #expect(frames.contains { $0["ip.src"] == "198.18.0.1" } && frames.contains { $0["ip.src"] == "198.18.0.2" })
        expectTheBedsTraffic(frames)
    }

    @Test func underlay6IsInnerIPv6InVXLANOverIPv6() throws {
        let frames = try dissect("underlay6-underlay.pcap")
        for frame in frames {
            let fromA = frame["ipv6.src"]?.hasPrefix("2001:db8::1,") == true
            let (outer, mac, inner) =
                fromA
                ? ("2001:db8::1,", "aa:bb:cc:dd:ee:11", "fc00:0:0:1::2")
                : ("2001:db8::2,", "aa:bb:cc:dd:ee:12", "fc00:0:0:2::2")
            #expect(frame["ip.src"] == "")
            #expect(frame["ipv6.src"]?.hasPrefix(outer + inner) == true)
            #expect(frame["vxlan.vni"] == "1")
            #expect(frame["eth.type"] == "0x86dd,0x86dd")
            #expect(frame["eth.src"]?.hasSuffix("," + mac) == true)
        }
        expectTheBedsTraffic(frames)
    }

    /// What host B's device received: inner IPv6 from container A, from the sender's VtepMAC.
    @Test(arguments: [("inner6-flannel1.pcap", "aa:bb:cc:dd:ee:01"), ("underlay6-flannelv6.pcap", "aa:bb:cc:dd:ee:11")])
    func hostBsDeviceReceivedInnerIPv6(name: String, senderMAC: String) throws {
        let frames = try dissect(name)
        #expect(!frames.isEmpty)
        for frame in frames {
            #expect(frame["eth.type"] == "0x86dd")
            #expect(frame["eth.src"] == senderMAC)
            #expect(frame["ipv6.src"] == "fc00:0:0:1::2" && frame["ipv6.dst"] == "fc00:0:0:2::2")
        }
    }
}
