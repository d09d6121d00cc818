import Addressing
import Config
import ControlPlane
import Foundation
import KubeSubnets
import KubeTestServer
import Routes
import Synchronization
import TestSupport
import Testing

/// weftd's Kubernetes subnet manager against the API stand-in, with weftd's own RBAC (kube-flannel.yml's ClusterRole).
@Suite(.timeLimit(.minutes(2)))
struct KubeSubnetManagerTests {
    @Test func theLeaseIsTheNodesPodCIDRAndOnlyChangedAnnotationsArePatchedOnce() async throws {
        try await KubeBed.with { bed in
            let manager = try bed.manager(node: "n1")
            defer { Task { await manager.shutdown() } }
            #expect(try await manager.networkConfig().network == IPv4Prefix("10.244.0.0/16"))
            let keeper = manager.leaseKeeper(
                KubeBed.request(publicIP: "198.18.0.1", mac: "0a:00:00:00:00:01"),
                log: { _, _ in }
            )
            let lease = try await keeper.acquire()
            #expect(lease.subnet == IPv4Prefix("10.244.1.0/24"))
            #expect(lease.origin == .assigned)
            #expect(lease.ttl == nil)

            let annotations = try bed.annotations(of: "n1")
            #expect(annotations["flannel.alpha.coreos.com/public-ip"] == "198.18.0.1")
            #expect(annotations["flannel.alpha.coreos.com/backend-type"] == "vxlan")
            #expect(annotations["flannel.alpha.coreos.com/backend-data"] == #"{"VNI":1,"VtepMAC":"0a:00:00:00:00:01"}"#)
            #expect(annotations["flannel.alpha.coreos.com/kube-subnet-manager"] == "true")
            #expect(annotations["dummy"] == "value", "the node's other annotations stay")
            let patches = bed.patches(to: "n1")
            #expect(patches.count == 2, "\(patches.map(\.body))")
            #expect(
                patches.allSatisfy {
                    $0.contentType == "application/strategic-merge-patch+json" && $0.user == User.flannel
                        && $0.code == 200
                }
            )
            #expect(patches.first?.body.contains("\"annotations\"") == true)
            #expect(patches.last?.body.contains("\"NetworkUnavailable\"") == true)
            let conditions =
                try bed.server.store.get(.nodes, ObjectKey(name: "n1")).value(at: "status.conditions")?.array ?? []
            #expect(
                conditions.contains {
                    $0["type"]?.string == "NetworkUnavailable" && $0["status"]?.string == "False"
                        && $0["reason"]?.string == "FlannelIsUp"
                }
            )
            #expect(
                conditions.contains { $0["type"]?.string == "Ready" },
                "merged by type: the kubelet's Ready condition stays"
            )

            // A restart with the same attributes patches no annotation (and no condition, when told not to).
            let again = try bed.manager(node: "n1", setNodeNetworkUnavailable: false)
            defer { Task { await again.shutdown() } }
            let second = try await again.leaseKeeper(
                KubeBed.request(publicIP: "198.18.0.1", mac: "0a:00:00:00:00:01"),
                log: { _, _ in }
            ).acquire()
            #expect(second.subnet == lease.subnet)
            #expect(bed.patches(to: "n1").count == 2)
            #expect(
                try await again.storedVTEPMAC(publicIP: IPv4Address("198.18.0.1")!) == MACAddress("0a:00:00:00:00:01")
            )
        }
    }

    @Test func aNodeWithoutPodCIDRWaitsWithFlannelsLineAndAcquiresOnceOneIsAssigned() async throws {
        try await KubeBed.with { bed in
            let manager = try bed.manager(node: "n3")
            defer { Task { await manager.shutdown() } }
            let keeper = manager.leaseKeeper(
                KubeBed.request(publicIP: "198.18.0.3", mac: "0a:00:00:00:00:03"),
                log: { _, _ in }
            )
            do throws(LeaseError) {
                _ = try await keeper.acquire()
                Issue.record("a node without podCIDR must not get a lease")
            } catch {
                #expect(error.kind == .noSubnet)
                #expect(error.description.hasPrefix(#"node "n3" pod cidr not assigned; "#), "\(error)")
                #expect(error.description.contains(#"kubectl patch node n3 -p '{"spec":{"podCIDR":"#))
            }
            #expect(bed.patches(to: "n3").isEmpty, "nothing is published before the subnet is usable")
            // What kube-controller-manager (or an operator's kubectl patch) does.
            _ = try bed.server.store.patch(
                .nodes,
                ObjectKey(name: "n3"),
                type: .strategicMerge,
                ["spec": ["podCIDR": "10.244.3.0/24", "podCIDRs": ["10.244.3.0/24"]]]
            )
            let lease = try await keeper.acquire()
            #expect(lease.subnet == IPv4Prefix("10.244.3.0/24"))
        }
    }

    @Test func aPodCIDROutsideTheNetworkIsRefusedInFlannelsWords() async throws {
        try await KubeBed.with { bed in
            bed.server.store.put(.nodes, KubeBed.node("n9", podCIDR: "10.99.0.0/24"))
            let manager = try bed.manager(node: "n9")
            defer { Task { await manager.shutdown() } }
            do throws(LeaseError) {
                _ = try await manager.leaseKeeper(
                    KubeBed.request(publicIP: "198.18.0.9", mac: "0a:00:00:00:00:09"),
                    log: { _, _ in }
                ).acquire()
                Issue.record("a podCIDR outside Network must be refused")
            } catch {
                #expect(
                    error.description.contains(
                        #"subnet "10.244.0.0/16" specified in the flannel net config doesn't contain "10.99.0.0/24" PodCIDR of the "n9" node"#
                    ),
                    "\(error)"
                )
            }
        }
    }

    @Test func peersAreFollowedThroughAddsDeletesAndAWatchThatExpiredWhileTheServerWasDown() async throws {
        try await KubeBed.with { bed in
            let watch = try await bed.watchPeers(asNode: "n1")
            defer { watch.stop() }
            let seen = watch.seen
            let log = watch.log

            let n2 = Route(
                subnet: IPv4Prefix("10.244.2.0/24")!,
                nextHop: NextHop(
                    publicIP: IPv4Address("198.18.0.2")!,
                    port: 8472,
                    vtepMAC: MACAddress("0a:00:00:00:00:02")!,
                    backend: .vxlan
                )
            )
            #expect(
                await eventually { seen.latest == [n2] },
                "our own node and n3 (no annotations) are not routes: \(seen.latest)"
            )
            #expect(await eventually { seen.isConfirmed })

            bed.server.store.put(
                .nodes,
                KubeBed.node(
                    "n4",
                    podCIDR: "10.244.4.0/24",
                    annotations: KubeBed.flannelAnnotations(publicIP: "198.18.0.4", mac: "0a:00:00:00:00:04")
                )
            )
            #expect(
                await eventually {
                    seen.latest.map(\.subnet) == [IPv4Prefix("10.244.2.0/24")!, IPv4Prefix("10.244.4.0/24")!]
                }
            )
            // A changed public-ip replaces the route.
            _ = try bed.server.store.patch(
                .nodes,
                ObjectKey(name: "n4"),
                type: .merge,
                ["metadata": ["annotations": ["flannel.alpha.coreos.com/public-ip": "198.18.0.44"]]]
            )
            #expect(await eventually { seen.latest.last?.nextHop.publicIP == IPv4Address("198.18.0.44") })
            _ = try bed.server.store.delete(.nodes, ObjectKey(name: "n4"))
            #expect(await eventually { seen.latest == [n2] })

            // Away while n2 is deleted and the history compacted: the watch resumes from a
            // resourceVersion that is gone (410), relists, and n2's route goes too.
            await bed.server.goDown()
            #expect(await eventually { !seen.isConfirmed }, "an API server that is away leaves the table unconfirmed")
            #expect(seen.latest == [n2], "the dataplane keeps its routes while the API server is away")
            _ = try bed.server.store.delete(.nodes, ObjectKey(name: "n2"))
            bed.server.compactHistory()
            try await bed.server.comeUp()
            #expect(await eventually(timeout: .seconds(40)) { seen.latest.isEmpty }, "\(log.all)")
            #expect(await eventually { seen.isConfirmed })
            #expect(log.all.contains { $0.hasPrefix("re-listed ") && $0.contains("1 removed") }, "\(log.all)")
        }
    }

    @Test func aRotatedTokenIsReadAgainAfterTheServerRefusesTheOldOne() async throws {
        try await KubeBed.with { bed in
            let manager = try bed.manager(node: "n1")
            defer { Task { await manager.shutdown() } }
            _ = try await manager.storedVTEPMAC(publicIP: IPv4Address("198.18.0.1")!)
            // The kubelet rotates the projected token: the API server knows only the new one.
            try TokenFile.write(
                [
                    (KubeBed.adminToken, User(name: "kubernetes-admin", groups: ["system:masters"])),
                    ("rotated-token", User(name: User.flannel, groups: ["system:serviceaccounts"])),
                ],
                to: bed.tokens
            )
            try Data("rotated-token".utf8).write(to: URL(fileURLWithPath: bed.weftToken))
            #expect(
                await eventually {
                    (try? await manager.storedVTEPMAC(publicIP: IPv4Address("198.18.0.1")!)) != nil
                        || bed.server.requests.last?.user == User.flannel && bed.server.requests.last?.code == 200
                }
            )
            let last = try #require(bed.server.requests.last)
            #expect(last.code == 200 && last.user == User.flannel)
            #expect(bed.server.requests.contains { $0.code == 401 }, "the old token was refused first")
        }
    }

    @Test func aTokenRotatedUnderAnOpenWatchLeavesTheRouteTableConfirmed() async throws {
        try await KubeBed.with { bed in
            let watch = try await bed.watchPeers(asNode: "n1")
            defer { watch.stop() }
            let seen = watch.seen
            let log = watch.log
            #expect(await eventually { seen.isConfirmed && seen.latest.count == 1 })

            try TokenFile.write(
                [
                    (KubeBed.adminToken, User(name: "kubernetes-admin", groups: ["system:masters"])),
                    ("rotated-token", User(name: User.flannel, groups: ["system:serviceaccounts"])),
                ],
                to: bed.tokens
            )
            try Data("rotated-token".utf8).write(to: URL(fileURLWithPath: bed.weftToken))
            bed.server.closeWatches()
            bed.server.store.put(
                .nodes,
                KubeBed.node(
                    "n4",
                    podCIDR: "10.244.4.0/24",
                    annotations: KubeBed.flannelAnnotations(publicIP: "198.18.0.4", mac: "0a:00:00:00:00:04")
                )
            )
            #expect(await eventually { seen.latest.count == 2 }, "\(log.all)")
            #expect(
                bed.server.requests.contains { $0.code == 401 && $0.query.contains("watch=") },
                "the watch met the old token's refusal"
            )
            #expect(seen.unconfirmedEpisodes == 0, "a rotated token is no outage: \(log.all)")
        }
    }

    @Test func withoutTheNodesStatusPatchRuleTheErrorNamesTheMissingRule() async throws {
        try await KubeBed.with { bed in
            // A token for a user with no role at all: even the node GET is forbidden.
            try TokenFile.write(
                [(KubeBed.flannelToken, User(name: "system:serviceaccount:kube-flannel:other"))],
                to: bed.tokens
            )
            let manager = try bed.manager(node: "n1")
            defer { Task { await manager.shutdown() } }
            do throws(LeaseError) {
                _ = try await manager.leaseKeeper(
                    KubeBed.request(publicIP: "198.18.0.1", mac: "0a:00:00:00:00:01"),
                    log: { _, _ in }
                ).acquire()
                Issue.record("a forbidden GET must fail")
            } catch {
                #expect(error.description.contains("forbidden: weftd may not get nodes"), "\(error)")
                #expect(
                    error.description.contains("nodes/status patch"),
                    "the fix lists every rule weftd needs: \(error)"
                )
                #expect(!error.description.contains("\n"))
            }
        }
    }
}

/// What a watcher told, as it told it.
final class Observed: Sendable {
    private let state = Mutex<(routes: [Route], confirmed: Bool)>(([], false))
    func routes(_ routes: [Route]) { state.withLock { $0.routes = routes } }
    private let unconfirmed = Mutex(0)
    func freshness(_ freshness: RouteFreshness) {
        state.withLock { if case .confirmed = freshness { $0.confirmed = true } else { $0.confirmed = false } }
        if case .unconfirmed = freshness { unconfirmed.withLock { $0 += 1 } }
    }
    /// How often the table was said to be unconfirmed.
    var unconfirmedEpisodes: Int { unconfirmed.withLock { $0 } }
    var latest: [Route] { state.withLock { $0.routes } }
    var isConfirmed: Bool { state.withLock { $0.confirmed } }
}

/// `weft doctor`'s view of the API server, gathered as weftd's manager makes its requests.
@Suite(.timeLimit(.minutes(1)))
struct KubeDiagnosisTests {
    @Test func withFlannelsRoleEveryRuleWorksAndThePodCIDRAndPeersAreRead() async throws {
        try await KubeBed.with { bed in
            let manager = try bed.manager(node: "n1")
            defer { Task { await manager.shutdown() } }
            let diagnosis = await manager.diagnose(network: IPv4Prefix("10.244.0.0/16"))
            #expect(try diagnosis.node.get() == "n1")
            #expect(diagnosis.access.map(\.rule) == ["nodes get", "nodes list", "nodes watch", "nodes/status patch"])
            #expect(diagnosis.access.allSatisfy { $0.error == nil }, "\(diagnosis.access)")
            #expect(try diagnosis.podCIDR?.get() == IPv4Prefix("10.244.1.0/24"))
            #expect(diagnosis.peerPublicIPs == ["198.18.0.2"])
            let before = try bed.server.store.get(.nodes, ObjectKey(name: "n1")).value(at: "metadata.resourceVersion")
            #expect(bed.patches(to: "n1").count == 1, "the patch probe is an empty strategic-merge patch")
            #expect(
                try bed.server.store.get(.nodes, ObjectKey(name: "n1")).value(at: "metadata.resourceVersion") == before
            )
        }
    }

    @Test func aRoleWithoutTheStatusPatchFailsOnlyThatRule() async throws {
        try await KubeBed.with(roles: [User.flannel: Role(["nodes": ["get", "list", "watch"]])]) { bed in
            let manager = try bed.manager(node: "n1")
            defer { Task { await manager.shutdown() } }
            let diagnosis = await manager.diagnose(network: IPv4Prefix("10.244.0.0/16"))
            let failing = diagnosis.access.filter { $0.error != nil }
            #expect(failing.map(\.rule) == ["nodes/status patch"])
            #expect(failing.first?.error?.contains("forbidden") == true, "\(failing)")
        }
    }
}

/// node-public-ip (flannel's GetStoredPublicIP): read from our own node before the interface is chosen.
@Suite(.timeLimit(.minutes(2)))
struct KubeStoredPublicIPTests {
    @Test func theNodesNodePublicIPIsReadUnderTheConfiguredPrefixAndAMalformedOneIsOneLineWithTheFix() async throws {
        try await KubeBed.with { bed in
            bed.server.store.put(
                .nodes,
                KubeBed.node(
                    "n7",
                    podCIDR: "10.244.7.0/24",
                    annotations: [
                        "flannel.alpha.coreos.com/node-public-ip": "198.18.0.107",
                        "flannel.alpha.coreos.com/public-ip-overwrite": "203.0.113.7",
                    ]
                )
            )
            let manager = try bed.manager(node: "n7")
            defer { Task { await manager.shutdown() } }
            let stored = try await manager.storedPublicIP()
            #expect(
                stored
                    == StoredPublicIP(
                        address: IPv4Address("198.18.0.107")!,
                        node: "n7",
                        annotation: "flannel.alpha.coreos.com/node-public-ip"
                    ),
                "node-public-ip, not public-ip-overwrite (that one is what peers see, set at acquisition)"
            )

            let bare = try bed.manager(node: "n1")
            defer { Task { await bare.shutdown() } }
            #expect(try await bare.storedPublicIP() == nil, "a node without the annotation keeps the flags' choice")

            bed.server.store.put(
                .nodes,
                KubeBed.node(
                    "n8",
                    podCIDR: "10.244.8.0/24",
                    annotations: [
                        "flannel.alpha.coreos.com/node-public-ip": "eth0"
                    ]
                )
            )
            let broken = try bed.manager(node: "n8")
            defer { Task { await broken.shutdown() } }
            do throws(LeaseError) {
                let address = try await broken.storedPublicIP()
                Issue.record("node-public-ip=eth0 must not read: \(String(describing: address))")
            } catch {
                #expect(error.kind == .configInvalid)
                #expect(error.description.contains("flannel.alpha.coreos.com/node-public-ip"), "\(error)")
                #expect(error.description.contains("kubectl annotate node n8"), "names the fix: \(error)")
                #expect(!error.description.contains("\n"))
            }
        }
    }
}
