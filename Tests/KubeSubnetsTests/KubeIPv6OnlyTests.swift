import Addressing
import Config
import ControlPlane
import Foundation
import KubeTestServer
import Routes
import TestSupport
import Testing

@testable import KubeSubnets

/// Kubernetes mode on an IPv6-only net-conf.json (EnableIPv4 false), as kube-flannel runs one:
/// the Node's IPv6 podCIDR is the lease, the annotations are flanneld's, and the peers are the
/// other nodes' IPv6 halves.
@Suite(.timeLimit(.minutes(2)))
struct KubeIPv6OnlyTests {
    static func netConf(_ backend: String) -> String {
        #"{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"\#(backend)"}}"#
    }

    static func ipv6OnlyNode(_ name: String, _ host: Int, annotations: [String: String] = [:]) -> JSONValue {
        var node = Fixtures.node(name, podCIDRs: ["fc00:0:0:\(host)::/64"], annotations: annotations)
        node["kind"] = nil
        node["apiVersion"] = nil
        return node
    }

    /// What weftd asks to publish on host `host`: its interface has an IPv4 address too.
    static func request(_ backend: String, _ host: Int) -> LeaseRequest {
        let publicIP = IPv4Address("198.18.0.\(host)")!
        let publicIPv6 = IPv6Address("2001:db8::\(host)")!
        if backend == "vxlan" {
            return LeaseRequest(
                attributes: .vxlan(
                    publicIP: publicIP,
                    data: nil,
                    publicIPv6: publicIPv6,
                    dataV6: VXLANLeaseData(configuredVNI: 1, vtepMAC: MACAddress("0e:00:00:00:00:0\(host)")!)
                )
            )
        }
        return LeaseRequest(attributes: .hostGateway(publicIP: publicIP, publicIPv6: publicIPv6))
    }

    /// A bed on an IPv6-only `backend` network with n1 (ours) and n4 (a peer flanneld annotated
    /// for host-gw), each with only an IPv6 podCIDR, beside the bed's IPv4 nodes n2 and n3.
    static func withIPv6Only<T>(_ backend: String, _ body: (KubeBed) async throws -> T) async throws -> T {
        try await KubeBed.with { bed in
            try Data(netConf(backend).utf8).write(to: URL(fileURLWithPath: bed.netConfPath))
            bed.server.store.put(.nodes, ipv6OnlyNode("n1", 1))
            let peer = [
                "flannel.alpha.coreos.com/backend-data": "null",
                "flannel.alpha.coreos.com/backend-type": "host-gw",
                "flannel.alpha.coreos.com/backend-v6-data": "null",
                "flannel.alpha.coreos.com/kube-subnet-manager": "true",
                "flannel.alpha.coreos.com/public-ip": "0.0.0.0",
                "flannel.alpha.coreos.com/public-ipv6": "2001:db8::4",
            ]
            bed.server.store.put(.nodes, ipv6OnlyNode("n4", 4, annotations: peer))
            return try await body(bed)
        }
    }

    @Test func hostGatewayLeaseIsTheIPv6PodCIDRAndTheAnnotationsAreFlannels() async throws {
        try await Self.withIPv6Only("host-gw") { bed in
            let manager = try bed.manager(node: "n1")
            defer { Task { await manager.shutdown() } }
            let log = Lines()
            let lease = try await manager.leaseKeeper(Self.request("host-gw", 1), log: log.log).acquire()
            #expect(lease.subnet == nil)
            #expect(lease.ipv6Subnet == IPv6Prefix("fc00:0:0:1::/64"))
            #expect(lease.attributes.publicIPv6Address == IPv6Address("2001:db8::1"))
            let patches = bed.patches(to: "n1")
            #expect(patches.count == 2, "annotations, then NetworkUnavailable: \(patches.map(\.body))")
            #expect(
                patches.first?.body
                    == #"{"metadata":{"annotations":{"flannel.alpha.coreos.com/backend-data":"null","flannel.alpha.coreos.com/backend-type":"host-gw","flannel.alpha.coreos.com/backend-v6-data":"null","flannel.alpha.coreos.com/kube-subnet-manager":"true","flannel.alpha.coreos.com/public-ip":"0.0.0.0","flannel.alpha.coreos.com/public-ipv6":"2001:db8::1"}}}"#
            )
            let annotations = try bed.annotations(of: "n1")
            #expect(annotations["flannel.alpha.coreos.com/public-ip"] == "0.0.0.0")
            #expect(annotations["flannel.alpha.coreos.com/public-ipv6"] == "2001:db8::1")
            #expect(
                log.all.contains {
                    $0.hasPrefix("acquired fc00:0:0:1::/64 (node n1's podCIDR), public-ipv6 2001:db8::1")
                },
                "\(log.all)"
            )

            // A restart finds its annotations in place and patches none.
            let again = try bed.manager(node: "n1", setNodeNetworkUnavailable: false)
            defer { Task { await again.shutdown() } }
            let second = try await again.leaseKeeper(Self.request("host-gw", 1), log: { _, _ in }).acquire()
            #expect(second.ipv6Subnet == lease.ipv6Subnet && second.subnet == nil)
            #expect(bed.patches(to: "n1").count == 2)
        }
    }

    @Test func vxlanPublishesBackendV6DataAndNoIPv4Annotation() async throws {
        try await Self.withIPv6Only("vxlan") { bed in
            let manager = try bed.manager(node: "n1", setNodeNetworkUnavailable: false)
            defer { Task { await manager.shutdown() } }
            let lease = try await manager.leaseKeeper(Self.request("vxlan", 1), log: { _, _ in }).acquire()
            #expect(lease.ipv6Subnet == IPv6Prefix("fc00:0:0:1::/64") && lease.subnet == nil)
            #expect(
                bed.patches(to: "n1").map(\.body) == [
                    #"{"metadata":{"annotations":{"flannel.alpha.coreos.com/backend-type":"vxlan","flannel.alpha.coreos.com/backend-v6-data":"{\"VNI\":1,\"VtepMAC\":\"0e:00:00:00:00:01\"}","flannel.alpha.coreos.com/kube-subnet-manager":"true","flannel.alpha.coreos.com/public-ipv6":"2001:db8::1"}}}"#
                ]
            )
            let annotations = try bed.annotations(of: "n1")
            #expect(annotations["flannel.alpha.coreos.com/public-ip"] == nil)
            #expect(annotations["flannel.alpha.coreos.com/backend-data"] == nil)
        }
    }

    @Test func aNodeWithoutAnIPv6PodCIDRWaitsNamingTheFix() async throws {
        try await Self.withIPv6Only("host-gw") { bed in
            // n3: no podCIDR yet; n2: an IPv4 podCIDR only.
            let unassigned = try bed.manager(node: "n3")
            defer { Task { await unassigned.shutdown() } }
            let waiting = await #expect(throws: LeaseError.self) {
                try await unassigned.leaseKeeper(Self.request("host-gw", 3), log: { _, _ in }).acquire()
            }
            #expect(waiting?.description.contains(#"node "n3" pod cidr not assigned"#) == true)
            #expect(waiting?.description.contains("--cluster-cidr=fc00::/48") == true, "\(String(describing: waiting))")
            let ipv4Only = try bed.manager(node: "n2")
            defer { Task { await ipv4Only.shutdown() } }
            let refused = await #expect(throws: LeaseError.self) {
                try await ipv4Only.leaseKeeper(Self.request("host-gw", 2), log: { _, _ in }).acquire()
            }
            #expect(
                refused?.description.contains(#"node "n2" has only the IPv4 pod cidr 10.244.2.0/24"#) == true,
                "\(String(describing: refused))"
            )
            #expect(refused?.description.contains("IPv6 cluster CIDR inside fc00::/48") == true)
            #expect(bed.patches(to: "n3").isEmpty && bed.patches(to: "n2").isEmpty, "nothing published")
        }
    }

    @Test func peersAreTheOtherNodesIPv6Halves() async throws {
        try await Self.withIPv6Only("host-gw") { bed in
            let watch = try await bed.watchPeers(asNode: "n1", request: Self.request("host-gw", 1))
            defer { watch.stop() }
            let (watcher, publisher, log) = (watch.watcher, watch.publisher, watch.log)
            let n4 = IPv6Peer(
                subnet: IPv6Prefix("fc00:0:0:4::/64")!,
                nextHop: NextHop(publicIP: .any, port: 0, backend: .hostGateway),
                publicIPv6: IPv6Address("2001:db8::4"),
                vtepMAC: nil
            )
            #expect(await eventually { await watcher.ipv6Peers() == [n4] })
            // n2 (an IPv4-only flannel node) is unusable on an IPv6-only network, in flannel's words.
            #expect(
                await eventually {
                    log.all.contains { $0.contains("\"n2\"") && $0.contains("public-ipv6 is missing") }
                },
                "\(log.all)"
            )
            #expect(publisher.withCurrent { $0.routes.isEmpty }, "no IPv4 routes")

            // Another weftd joins on n5 and annotates its node: it becomes a peer.
            bed.server.store.put(.nodes, Self.ipv6OnlyNode("n5", 5))
            let other = try bed.manager(node: "n5", setNodeNetworkUnavailable: false)
            defer { Task { await other.shutdown() } }
            _ = try await other.leaseKeeper(Self.request("host-gw", 5), log: { _, _ in }).acquire()
            #expect(
                await eventually {
                    await watcher.ipv6Peers().map(\.publicIPv6) == [
                        IPv6Address("2001:db8::4"), IPv6Address("2001:db8::5"),
                    ]
                }
            )
        }
    }
}
