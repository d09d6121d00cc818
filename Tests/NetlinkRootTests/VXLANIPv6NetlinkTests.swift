import Addressing
import CShims
import Foundation
import Glibc
import TestThreads
import Testing

@testable import Netlink

/// flannel-v6.1 with an IPv6 underlay, its NDP entry and its FDB remote at an IPv6 address, made
/// through RouteNetlink in a namespace and judged by iproute2's JSON, as VXLANNetlinkTests does for
/// flannel.1.
@Suite(
    .ownThread,
    .enabled(if: TestNamespace.missing == nil, "\(TestNamespace.missing ?? "")"),
    .timeLimit(.minutes(1))
)
struct VXLANIPv6NetlinkTests {
    static let gateway = IPv6Address("fc00:0:0:2::")!
    static let remote = IPv6Address("2001:db8::2")!

    @Test func ipv6DeviceNeighbourAndFDBRemoteRoundTrip() throws {
        try TestNamespace.with { namespace in
            for arguments in [
                ["link", "add", "d0", "type", "veth", "peer", "name", "d1"],
                ["addr", "add", "2001:db8::1/64", "dev", "d0", "nodad"], ["link", "set", "d0", "up"],
            ] {
                let (status, output) = try TestNamespace.run(["-n", namespace.name] + arguments)
                guard status == 0 else { throw TestFailure("ip \(arguments): \(output)") }
            }
            let read = try namespace.enter {
                () throws -> (LinkState, [IPv6NeighbourEntry], [IPv6FDBEntry], [FDBEntry], [IPv6NeighbourEntry]) in
                var netlink = try RouteNetlink()
                let link = IPv6VXLANLink(
                    name: "flannel-v6.1",
                    vni: 1,
                    local: IPv6Address("2001:db8::1"),
                    underlayIndex: try RouteNetlink.interfaceIndex("d0"),
                    port: 8472,
                    mac: VXLANNetlinkTests.vtep,
                    mtu: 1430
                )
                let index = try netlink.createVXLAN(link)
                try netlink.configureLink(index: index)
                let neighbour = IPv6NeighbourEntry(
                    interfaceIndex: index,
                    address: Self.gateway,
                    mac: VXLANNetlinkTests.peer
                )
                let fdb = IPv6FDBEntry(interfaceIndex: index, mac: VXLANNetlinkTests.peer, destination: Self.remote)
                try netlink.replaceNeighbour(neighbour)
                try netlink.replaceFDB(fdb)
                let state = try netlink.linkState(index: index)
                let neighbours = try netlink.neighbours(interfaceIndex: index, IPv6Address.self)
                let entries = try netlink.fdbEntries(interfaceIndex: index, IPv6Address.self)
                let asIPv4 = try netlink.fdbEntries(interfaceIndex: index)
                try netlink.deleteNeighbour(neighbour)
                try netlink.deleteFDB(fdb)
                #expect(
                    try netlink.fdbEntries(interfaceIndex: index, IPv6Address.self).allSatisfy { $0.destination == nil }
                )
                #expect(throws: NetlinkError.self) { try netlink.deleteNeighbour(neighbour) }
                return (
                    state, neighbours, entries, asIPv4, try netlink.neighbours(interfaceIndex: index, IPv6Address.self)
                )
            }
            let (state, neighbours, entries, asIPv4, afterDelete) = read
            #expect(state.vxlan6?.local == IPv6Address("2001:db8::1") && state.vxlan == nil)
            #expect(state.vxlan6?.vni == 1 && state.vxlan6?.port == 8472 && state.vxlan6?.learning == false)
            #expect(
                neighbours.contains {
                    $0.address == Self.gateway && $0.mac == VXLANNetlinkTests.peer && $0.isPermanent
                },
                "\(neighbours)"
            )
            #expect(
                entries.contains { $0.mac == VXLANNetlinkTests.peer && $0.destination == Self.remote },
                "\(entries)"
            )
            #expect(asIPv4.allSatisfy { $0.destination == nil }, "an IPv6 remote is no IPv4 entry's: \(asIPv4)")
            #expect(!afterDelete.contains { $0.address == Self.gateway })

            let shown = try #require(
                try VXLANNetlinkTests.json(namespace, ["-d", "link", "show", "flannel-v6.1"]).first
            )
            let info = (shown["linkinfo"] as? [String: Any])?["info_data"] as? [String: Any] ?? [:]
            #expect(info["local6"] as? String == "2001:db8::1", "\(info)")
            #expect(info["link"] as? String == "d0")
        }
    }
}
