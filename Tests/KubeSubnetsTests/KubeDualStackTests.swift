import Addressing
import Config
import ControlPlane
import Foundation
import KubeTestServer
import Routes
import TestSupport
import Testing

@testable import KubeSubnets

/// Kubernetes mode on a dual-stack net-conf.json: both podCIDRs of a Node make the lease, and
/// the public-ipv6 and backend-v6-data annotations are written and read as flanneld does.
@Suite(.timeLimit(.minutes(2)))
struct KubeDualStackTests {
    static let netConf =
        #"{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"vxlan"}}"#

    static func dualStackNode(_ name: String, _ host: Int, annotations: [String: String] = [:]) -> JSONValue {
        var node = Fixtures.node(
            name,
            podCIDRs: ["10.244.\(host).0/24", "fc00:0:0:\(host)::/64"],
            annotations: annotations
        )
        node["kind"] = nil
        node["apiVersion"] = nil
        return node
    }

    static func request(_ host: Int) -> LeaseRequest {
        LeaseRequest(
            attributes: .vxlan(
                publicIP: IPv4Address("198.18.0.\(host)")!,
                data: VXLANLeaseData(configuredVNI: 1, vtepMAC: MACAddress("0a:00:00:00:00:0\(host)")!),
                publicIPv6: IPv6Address("2001:db8::\(host)")!,
                dataV6: VXLANLeaseData(configuredVNI: 1, vtepMAC: MACAddress("0e:00:00:00:00:0\(host)")!)
            )
        )
    }

    /// A dual-stack bed: n1 (ours) and n4 (a peer flanneld annotated with both families), both
    /// with an IPv4 and an IPv6 podCIDR.
    static func withDualStack<T>(_ body: (KubeBed) async throws -> T) async throws -> T {
        try await KubeBed.with { bed in
            try Data(netConf.utf8).write(to: URL(fileURLWithPath: bed.netConfPath))
            bed.server.store.put(.nodes, dualStackNode("n1", 1))
            var peer = KubeBed.flannelAnnotations(publicIP: "198.18.0.4", mac: "0a:00:00:00:00:04")
            peer["flannel.alpha.coreos.com/public-ipv6"] = "2001:db8::4"
            peer["flannel.alpha.coreos.com/backend-v6-data"] = #"{"VNI":1,"VtepMAC":"0e:00:00:00:00:04"}"#
            bed.server.store.put(.nodes, dualStackNode("n4", 4, annotations: peer))
            return try await body(bed)
        }
    }

    @Test func bothPodCIDRsMakeTheLeaseAndBothFamiliesAreAnnotated() async throws {
        try await Self.withDualStack { bed in
            let manager = try bed.manager(node: "n1")
            defer { Task { await manager.shutdown() } }
            let lease = try await manager.leaseKeeper(Self.request(1), log: { _, _ in }).acquire()
            #expect(lease.subnet == IPv4Prefix("10.244.1.0/24"))
            #expect(lease.ipv6Subnet == IPv6Prefix("fc00:0:0:1::/64"))
            let annotations = try bed.annotations(of: "n1")
            #expect(annotations["flannel.alpha.coreos.com/public-ip"] == "198.18.0.1")
            #expect(annotations["flannel.alpha.coreos.com/public-ipv6"] == "2001:db8::1")
            #expect(
                annotations["flannel.alpha.coreos.com/backend-v6-data"] == #"{"VNI":1,"VtepMAC":"0e:00:00:00:00:01"}"#
            )
            #expect(annotations["flannel.alpha.coreos.com/backend-data"] == #"{"VNI":1,"VtepMAC":"0a:00:00:00:00:01"}"#)
        }
    }

    @Test func anIPv6PodCIDROutsideTheIPv6NetworkIsRefusedInFlannelsWords() async throws {
        try await Self.withDualStack { bed in
            var node = Fixtures.node("n9", podCIDRs: ["10.244.9.0/24", "fd00:9::/64"])
            node["kind"] = nil
            node["apiVersion"] = nil
            bed.server.store.put(.nodes, node)
            let manager = try bed.manager(node: "n9")
            defer { Task { await manager.shutdown() } }
            let error = await #expect(throws: LeaseError.self) {
                try await manager.leaseKeeper(Self.request(9), log: { _, _ in }).acquire()
            }
            #expect(
                error?.description.contains(
                    #"subnet "fc00::/48" specified in the flannel net config doesn't contain "fd00:9::/64" IPv6 PodCIDR of the "n9" node"#
                ) == true,
                "\(String(describing: error))"
            )
        }
    }

    @Test func peersIPv6HalvesComeFromTheirPodCIDRsAndAnnotations() async throws {
        try await Self.withDualStack { bed in
            let watch = try await bed.watchPeers(asNode: "n1", request: Self.request(1))
            defer { watch.stop() }
            let (watcher, publisher, log) = (watch.watcher, watch.publisher, watch.log)
            let n4 = IPv6Peer(
                subnet: IPv6Prefix("fc00:0:0:4::/64")!,
                nextHop: NextHop(
                    publicIP: IPv4Address("198.18.0.4")!,
                    port: 8472,
                    vtepMAC: MACAddress("0a:00:00:00:00:04")!,
                    backend: .vxlan
                ),
                publicIPv6: IPv6Address("2001:db8::4"),
                vtepMAC: MACAddress("0e:00:00:00:00:04")
            )
            #expect(await eventually { await watcher.ipv6Peers() == [n4] })
            // n2 (the bed's IPv4-only flannel node) is unusable on a dual-stack network, in flannel's words.
            #expect(
                await eventually {
                    log.all.contains { $0.contains("\"n2\"") && $0.contains("public-ipv6 is missing") }
                },
                "\(log.all)"
            )
            #expect(publisher.withCurrent { $0.routes.map(\.subnet) } == [IPv4Prefix("10.244.4.0/24")!])

            // A peer that joins later with both families.
            var peer = KubeBed.flannelAnnotations(publicIP: "198.18.0.5", mac: "0a:00:00:00:00:05")
            peer["flannel.alpha.coreos.com/public-ipv6"] = "2001:db8::5"
            bed.server.store.put(.nodes, Self.dualStackNode("n5", 5, annotations: peer))
            #expect(
                await eventually {
                    await watcher.ipv6Peers().map(\.subnet) == [
                        IPv6Prefix("fc00:0:0:4::/64")!, IPv6Prefix("fc00:0:0:5::/64")!,
                    ]
                }
            )
            #expect(await watcher.ipv6Peers().last?.vtepMAC == nil, "no backend-v6-data: no IPv6 VtepMAC")
        }
    }
}
