import Addressing
import Config
import Testing

@testable import KubeModel

/// An IPv6-only network (EnableIPv4 false) in Kubernetes mode, as flannel's AcquireLease and
/// nodeToLease take it: the IPv6 podCIDR alone, and annotations byte for byte as flannel writes
/// them (host-gw: public-ip "0.0.0.0" and backend-data "null"; vxlan: neither).
@Suite struct IPv6OnlyNodeTests {
    let ipv6Network = IPv6Prefix("fd00:10:244::/56")!
    let keys = AnnotationKeys.standard
    let mac = MACAddress("2a:0f:73:1c:9e:01")!
    /// What weftd asks to publish: the interface's addresses, whatever the network carries.
    var hostGateway: LeaseAttributes {
        .hostGateway(publicIP: IPv4Address(192, 168, 56, 11), publicIPv6: IPv6Address("fd00:56::11"))
    }
    var vxlan: LeaseAttributes {
        .vxlan(
            publicIP: IPv4Address(192, 168, 56, 11),
            data: nil,
            publicIPv6: IPv6Address("fd00:56::11"),
            dataV6: VXLANLeaseData(vni: 1, vtepMAC: mac)
        )
    }

    @Test func theIPv6PodCIDRAloneIsTheLease() throws {
        let own = try OwnSubnet.select(
            node: .make("v6", podCIDRs: ["fd00:10:244:7::/64"]),
            network: nil,
            ipv6Network: ipv6Network
        )
        #expect(own == OwnSubnet(subnet: nil, ipv6Subnet: IPv6Prefix("fd00:10:244:7::/64")))
        #expect(own.note(node: "v6") == nil)
        // A dual-stack node (IPv6 first or not): its IPv4 podCIDR is named, not carried.
        for node in [try Fixture.node("node-dualstack.json"), try Fixture.node("node-v6-first.json")] {
            let dual = try OwnSubnet.select(node: node, network: nil, ipv6Network: ipv6Network)
            #expect(dual.subnet == nil && dual.ipv6Subnet?.length == 64)
            let note = try #require(dual.note(node: node.name))
            #expect(
                note.contains("also has the IPv4 pod cidr 10.244.") && note.contains("IPv6-only (EnableIPv4 false)")
            )
            #expect(note.hasSuffix("so only \(dual.ipv6Subnet!) is carried"), "\(note)")
        }
    }

    @Test func aNodeWithoutPodCIDRWaitsAndTheFixNamesTheIPv6Network() throws {
        let error = #expect(throws: KubeError.self) {
            try OwnSubnet.select(node: Fixture.node("node-fresh.json"), network: nil, ipv6Network: ipv6Network)
        }
        #expect(error?.kind == .podCIDRNotAssigned)
        #expect(error?.problem == "node \"worker-3\" pod cidr not assigned")
        #expect(error?.fix.contains("--cluster-cidr=fd00:10:244::/56") == true, "\(String(describing: error))")
        #expect(error?.fix.contains("<a subnet of fd00:10:244::/56>") == true)
    }

    @Test func anIPv4OnlyNodeNamesTheFix() throws {
        let error = #expect(throws: KubeError.self) {
            try OwnSubnet.select(node: Fixture.node("node-vxlan.json"), network: nil, ipv6Network: ipv6Network)
        }
        #expect(error?.kind == .podCIDR)
        #expect(
            error?.problem
                == "node \"worker-1\" has only the IPv4 pod cidr 10.244.1.0/24, but the network config is IPv6-only (EnableIPv4 false, IPv6Network fd00:10:244::/56)"
        )
        #expect(error?.fix.contains("IPv6 cluster CIDR inside fd00:10:244::/56") == true)
        #expect(error?.fix.contains("EnableIPv4 true") == true)
        #expect(error.map { !$0.description.contains("\n") } == true)
        // And the other way round: an IPv6-only node on an IPv4 network.
        let ipv4 = #expect(throws: KubeError.self) {
            try OwnSubnet.select(
                node: .make("v6", podCIDRs: ["fd00:10:244:7::/64"]),
                network: IPv4Prefix("10.244.0.0/16")
            )
        }
        #expect(ipv4?.fix.contains("\"EnableIPv4\": false") == true, "\(String(describing: ipv4))")
    }

    @Test func anIPv6PodCIDROutsideTheIPv6NetworkIsFlannelsError() {
        let error = #expect(throws: KubeError.self) {
            try OwnSubnet.select(
                node: .make("v6", podCIDRs: ["fc00:0:0:7::/64"]),
                network: nil,
                ipv6Network: ipv6Network
            )
        }
        #expect(
            error?.problem
                == #"subnet "fd00:10:244::/56" specified in the flannel net config doesn't contain "fc00:0:0:7::/64" IPv6 PodCIDR of the "v6" node"#
        )
    }

    /// flannel's hostgw sets PublicIP only with EnableIPv4, and its AcquireLease writes public-ip
    /// and backend-data for any type but vxlan: "0.0.0.0" and "null".
    @Test func hostGatewayAnnotationsAreFlannelsBytes() throws {
        let node = Node.make("v6", podCIDRs: ["fd00:10:244:7::/64"])
        let lease = try OwnLease.acquire(
            node: node,
            network: nil,
            ipv6Network: ipv6Network,
            attributes: hostGateway,
            keys: keys
        )
        #expect(lease.subnet.ipv6Subnet == IPv6Prefix("fd00:10:244:7::/64") && lease.subnet.subnet == nil)
        #expect(lease.advertisedPublicIP == .any)
        #expect(lease.advertisedPublicIPv6 == IPv6Address("fd00:56::11"))
        #expect(
            lease.annotationPatch
                == #"{"metadata":{"annotations":{"flannel.alpha.coreos.com/backend-data":"null","flannel.alpha.coreos.com/backend-type":"host-gw","flannel.alpha.coreos.com/backend-v6-data":"null","flannel.alpha.coreos.com/kube-subnet-manager":"true","flannel.alpha.coreos.com/public-ip":"0.0.0.0","flannel.alpha.coreos.com/public-ipv6":"fd00:56::11"}}}"#
        )
        // Restarted on the annotated node: nothing to send.
        let annotated = [
            keys.backendData: "null", keys.backendType: "host-gw", keys.backendV6Data: "null",
            keys.kubeSubnetManager: "true", keys.publicIP: "0.0.0.0", keys.publicIPv6: "fd00:56::11",
        ]
        let again = try OwnLease.acquire(
            node: .make("v6", podCIDRs: ["fd00:10:244:7::/64"], annotations: annotated),
            network: nil,
            ipv6Network: ipv6Network,
            attributes: hostGateway,
            keys: keys
        )
        #expect(again.annotationPatch == nil)
    }

    /// vxlan's BackendData is "null" without flannel.<VNI>: flannel writes neither it nor public-ip.
    @Test func vxlanAnnotationsLeavePublicIPAndBackendDataOut() throws {
        let lease = try OwnLease.acquire(
            node: .make("v6", podCIDRs: ["fd00:10:244:7::/64"]),
            network: nil,
            ipv6Network: ipv6Network,
            attributes: vxlan,
            keys: keys
        )
        #expect(
            lease.annotationPatch
                == #"{"metadata":{"annotations":{"flannel.alpha.coreos.com/backend-type":"vxlan","flannel.alpha.coreos.com/backend-v6-data":"{\"VNI\":1,\"VtepMAC\":\"2a:0f:73:1c:9e:01\"}","flannel.alpha.coreos.com/kube-subnet-manager":"true","flannel.alpha.coreos.com/public-ipv6":"fd00:56::11"}}}"#
        )
        // flannel's check always finds public-ip missing here and sends an empty patch; Weft sends none.
        let annotated = [
            keys.backendType: "vxlan", keys.backendV6Data: #"{"VNI":1,"VtepMAC":"2a:0f:73:1c:9e:01"}"#,
            keys.kubeSubnetManager: "true", keys.publicIPv6: "fd00:56::11",
        ]
        let again = try OwnLease.acquire(
            node: .make("v6", podCIDRs: ["fd00:10:244:7::/64"], annotations: annotated),
            network: nil,
            ipv6Network: ipv6Network,
            attributes: vxlan,
            keys: keys
        )
        #expect(again.annotationPatch == nil)
    }

    @Test func publicIPv6OverwriteIsWhatPeersSee() throws {
        let node = Node.make(
            "v6",
            podCIDRs: ["fd00:10:244:7::/64"],
            annotations: [keys.publicIPv6Overwrite: "2001:db8::7"]
        )
        let lease = try OwnLease.acquire(
            node: node,
            network: nil,
            ipv6Network: ipv6Network,
            attributes: vxlan,
            keys: keys
        )
        #expect(lease.advertisedPublicIPv6 == IPv6Address("2001:db8::7"))
        #expect(lease.annotationPatch?.contains(#""flannel.alpha.coreos.com/public-ipv6":"2001:db8::7""#) == true)
        let bad = Node.make("v6", podCIDRs: ["fd00:10:244:7::/64"], annotations: [keys.publicIPv6Overwrite: "nat"])
        let error = #expect(throws: KubeError.self) {
            try OwnLease.acquire(node: bad, network: nil, ipv6Network: ipv6Network, attributes: vxlan, keys: keys)
        }
        #expect(error?.problem.hasSuffix(#"public-ipv6-overwrite "nat" is not an IPv6 address"#) == true)
    }

    /// nodeToLease with EnableIPv4 false reads no public-ip, backend-data nor IPv4 podCIDR.
    @Test func peersAreReadFromTheirIPv6HalfAlone() throws {
        let reader = PeerLeaseReader(keys: keys, ownNodeName: "me", ipv4: false, ipv6: true)
        // flannel's host-gw node: public-ip "0.0.0.0" and backend-data "null" are not looked at.
        let hostGatewayPeer = Node.make(
            "gw",
            podCIDRs: ["fd00:10:244:8::/64"],
            annotations: [
                keys.backendData: "null", keys.backendType: "host-gw", keys.backendV6Data: "null",
                keys.kubeSubnetManager: "true", keys.publicIP: "0.0.0.0", keys.publicIPv6: "fd00:56::12",
            ]
        )
        guard case .lease(let gateway) = reader.read(hostGatewayPeer) else {
            Issue.record("an IPv6-only host-gw node is a lease: \(reader.read(hostGatewayPeer))")
            return
        }
        #expect(gateway.subnet == nil && gateway.ipv6Subnet == IPv6Prefix("fd00:10:244:8::/64"))
        #expect(
            gateway.attributes.publicIP == .any && gateway.attributes.publicIPv6Address == IPv6Address("fd00:56::12")
        )
        #expect(gateway.attributes.backendType == "host-gw" && gateway.attributes.backendV6Data == nil)

        // A dual-stack vxlan node: the IPv6 half only, its IPv4 annotations unread.
        guard case .lease(let dual) = reader.read(try Fixture.node("node-dualstack.json")) else {
            Issue.record("a dual-stack node is an IPv6 peer")
            return
        }
        #expect(dual.subnet == nil && dual.ipv6Subnet == IPv6Prefix("fd00:10:244:2::/64"))
        #expect(dual.attributes.publicIP == .any && dual.attributes.backendData == nil)
        #expect(try dual.attributes.vxlanV6Data().vtepMAC == mac)

        // A vxlan peer without backend-v6-data, and an IPv4-only node, are unusable, named.
        var noData = hostGatewayPeer.annotations
        noData[keys.backendType] = "vxlan"
        guard
            case .unusable(let why) = reader.read(.make("x", podCIDRs: ["fd00:10:244:9::/64"], annotations: noData))
        else {
            Issue.record("a vxlan peer without its IPv6 VtepMAC is unusable")
            return
        }
        #expect(why.contains("backend-v6-data") && why.contains("\"x\""), "\(why)")
        guard case .unusable(let ipv4Only) = reader.read(try Fixture.node("node-vxlan.json")) else {
            Issue.record("an IPv4-only node is unusable on an IPv6-only network")
            return
        }
        #expect(ipv4Only.contains("public-ipv6 is missing"), "\(ipv4Only)")
        var annotated = vxlanAnnotations(publicIP: "192.168.56.13", mac: "0a:00:00:00:00:13")
        annotated[keys.publicIPv6] = "fd00:56::13"
        annotated[keys.backendV6Data] = #"{"VNI":1,"VtepMAC":"0e:00:00:00:00:13"}"#
        guard case .unusable(let noIPv6) = reader.read(.make("v4", podCIDRs: ["10.244.3.0/24"], annotations: annotated))
        else {
            Issue.record("a node without an IPv6 podCIDR is unusable on an IPv6-only network")
            return
        }
        #expect(noIPv6.contains("missing IPv6 address on n.Spec.PodCIDRs"), "\(noIPv6)")
    }
}
