import Addressing
import CShims
import Engine
import Foundation
import Netlink
import TestThreads
import Testing

/// The RFC 1071 sum written the slow, obvious way, independent of Packets.InternetChecksum.
func referenceChecksumIsValid(_ bytes: ArraySlice<UInt8>) -> Bool {
    var sum: UInt32 = 0
    var index = bytes.startIndex
    while index < bytes.endIndex {
        let high = UInt32(bytes[index])
        let low = index + 1 < bytes.endIndex ? UInt32(bytes[index + 1]) : 0
        sum += high << 8 | low
        index += 2
    }
    while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
    return sum == 0xFFFF
}

/// Waits up to `milliseconds` for an IPv4 packet on any of `fds` and reads it. IPv6 packets (the
/// kernel's router solicitations once the link is up) are read and skipped.
func readIPv4Packet(fromAnyOf fds: [Int32], milliseconds: Int) -> [UInt8]? {
    let deadline = Date().addingTimeInterval(Double(milliseconds) / 1000)
    while Date() < deadline {
        for fd in fds where weft_poll_readable(fd, 20) == 1 {
            var bytes = [UInt8](repeating: 0, count: 65536)
            let count = bytes.withUnsafeMutableBytes { weft_read(fd, $0.baseAddress, $0.count) }
            if count > 0, bytes[0] >> 4 == 4 { return Array(bytes[..<count]) }
        }
    }
    return nil
}

/// Configures `flannel0` as weftd does for the udp backend: 10.244.1.0/32, MTU 1472, 10.244.0.0/16 on the link.
func configureFlannel0() throws {
    var warnings: [String] = []
    try TUNLink(
        name: "flannel0",
        mtu: 1472,
        network: IPv4Prefix(IPv4Address(10, 244, 0, 0), length: 16),
        subnet: IPv4Prefix(IPv4Address(10, 244, 1, 0), length: 24)
    )
    .configure { warnings.append($0) }
    if !warnings.isEmpty { throw TestFailure("flannel0: \(warnings)") }
}

@Suite(
    .ownThread,
    .enabled(if: TestNamespace.missing == nil, "\(TestNamespace.missing ?? "")"),
    .timeLimit(.minutes(1))
)
struct TUNDeviceTests {
    @Test func multiQueueTUNIsConfiguredByNetlinkAndReceivesPing() throws {
        try TestNamespace.with { namespace in
            try namespace.enter {
                let tun = try TUNDevice(name: "flannel0", queueCount: 2)
                #expect(tun.queues.count == 2)
                #expect(tun.virtioHeaderSize == 0)
                try configureFlannel0()

                let (_, link) = try namespace.ip("-d", "link", "show", "flannel0")
                #expect(link.contains("mtu 1472"), "\(link)")
                #expect(link.contains(",UP"), "\(link)")
                #expect(link.contains("tun type tun pi off vnet_hdr off multi_queue numqueues 2"), "\(link)")
                let (_, address) = try namespace.ip("-4", "addr", "show", "flannel0")
                #expect(address.contains("inet 10.244.1.0/32"), "\(address)")
                let (_, routes) = try namespace.ip("route")
                #expect(routes.contains("10.244.0.0/16 dev flannel0"), "\(routes)")

                let ping = try namespace.start(["ping", "-c", "5", "-i", "0.2", "-W", "1", "10.244.2.5"])
                defer {
                    ping.terminate()
                    ping.waitUntilExit()
                }
                let packet = try #require(
                    readIPv4Packet(fromAnyOf: tun.queues, milliseconds: 20_000),
                    "no packet on either TUN queue"
                )
                try #require(packet.count >= 28)
                #expect(packet[0] == 0x45)  // IPv4, IHL 5: no PI header in front
                #expect(Int(packet[2]) << 8 | Int(packet[3]) == packet.count)
                #expect(packet[9] == 1)  // ICMP
                #expect(Array(packet[12..<16]) == [10, 244, 1, 0])
                #expect(Array(packet[16..<20]) == [10, 244, 2, 5])
                #expect(referenceChecksumIsValid(packet[0..<20]))
                #expect(packet[20] == 8)  // echo request
                #expect(referenceChecksumIsValid(packet[20...]))
            }
        }
    }

    @Test func vnetHeaderAndOffloadsAreAccepted() throws {
        try TestNamespace.with { namespace in
            try namespace.enter {
                let tun = try TUNDevice(name: "weft-vnet", queueCount: 2, offloads: .all)
                #expect(tun.virtioHeaderSize == 10)
                let (_, link) = try namespace.ip("-d", "link", "show", "weft-vnet")
                #expect(link.contains("vnet_hdr on multi_queue numqueues 2"), "\(link)")
            }
        }
    }

    @Test func errorsNameTheCallAndTheValue() throws {
        try TestNamespace.with { namespace in
            try namespace.enter {
                #expect(throws: EngineError.self) {
                    _ = try TUNDevice(name: "a-name-far-too-long-for-linux", queueCount: 1)
                }
                do throws(NetlinkError) {
                    _ = try RouteNetlink.interfaceIndex("nonexistent0")
                    Issue.record("interfaceIndex of a missing link returned")
                } catch {
                    #expect(error.description.hasPrefix("if_nametoindex nonexistent0: "))
                }
                let device = try TUNDevice(name: "weft-dup", queueCount: 1)
                var netlink = try RouteNetlink()
                let index = try RouteNetlink.interfaceIndex(device.name)
                try netlink.setLinkUp(index: index)
                try netlink.addRoute(IPv4Prefix(IPv4Address(10, 9, 0, 0), length: 16), index: index)
                do throws(NetlinkError) {
                    try netlink.addRoute(IPv4Prefix(IPv4Address(10, 9, 0, 0), length: 16), index: index)
                    Issue.record("a duplicate route was accepted")
                } catch {
                    #expect(error.code == EEXIST)
                    #expect(error.description.hasPrefix("RTM_NEWROUTE 10.9.0.0/16: "), "\(error)")
                }
            }
        }
    }
}
