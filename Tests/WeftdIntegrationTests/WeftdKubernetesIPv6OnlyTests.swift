import Foundation
import KubeTestServer
import Testing

@testable import TestSupport

extension WeftdBeds {
    /// Kubernetes mode on an IPv6-only network (EnableIPv4 false), as kube-flannel runs one: each
    /// Node's IPv6 podCIDR is its lease, the annotations are flanneld's byte for byte, and the
    /// containers reach each other over IPv6 (host-gw routes, or flannel-v6.1 alone for vxlan).
    @Suite(.serialized, .enabled(if: kubeBedUnavailable == nil, "\(kubeBedUnavailable ?? "")"))
    struct WeftdKubernetesIPv6OnlyTests {
        typealias DualStack = WeftdDualStackTests

        @Test(.timeLimit(.minutes(2)), arguments: ["host-gw", "vxlan"])
        func nodesWithAnIPv6PodCIDRAlone(backend: String) throws {
            let kube = try KubeBed(hosts: 3, backend: backend)
            defer { kube.tearDown() }
            let bed = kube.bed
            try #"{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"\#(backend)"}}"#
                .write(toFile: kube.netConf, atomically: true, encoding: .utf8)
            let nodes = (1...3).map { index in
                Fixtures.node(bed.nodeName(index), podCIDRs: ["fc00:0:0:\(index)::/64"], internalIP: bed.hostIP(index))
            }
            try kube.startServer(nodes: nodes)
            for index in 1...3 { try DualStack.addIPv6Underlay(bed, index) }
            var daemons: [Int: Started] = [:]
            for index in 1...3 { daemons[index] = try bed.startWeftd(index, vxlanDataplane: "kernel") }
            var bases: [Int: String] = [:]
            let prefix = KubeBed.annotationPrefix
            for index in 1...3 {
                let ready = waitFor(.seconds(60), interval: .milliseconds(50)) {
                    bed.readyz(index) == 200 && DualStack.ipv6Base(bed, index) != nil
                }
                try #require(ready != nil, "weftd \(index): \(daemons[index]!.log.suffix(3000))")
                bases[index] = "fc00:0:0:\(index)::"
                #expect(DualStack.ipv6Base(bed, index) == bases[index], "\(bed.subnetEnv(index))")
                let env = bed.subnetEnv(index)
                #expect(env["FLANNEL_NETWORK"] == nil && env["FLANNEL_SUBNET"] == nil, "\(env)")
                #expect(env["FLANNEL_IPV6_NETWORK"] == "fc00::/48", "\(env)")

                let annotations = try kube.annotations(of: bed.nodeName(index)).filter { $0.key.hasPrefix(prefix) }
                var expected = [
                    prefix + "backend-type": backend, prefix + "kube-subnet-manager": "true",
                    prefix + "public-ipv6": DualStack.hostIPv6(index),
                ]
                if backend == "host-gw" {
                    // flanneld's host-gw leaves PublicIP unset without IPv4, and writes it and BackendData anyway.
                    expected[prefix + "public-ip"] = "0.0.0.0"
                    expected[prefix + "backend-data"] = "null"
                    expected[prefix + "backend-v6-data"] = "null"
                } else {
                    let v6Data = annotations[prefix + "backend-v6-data"] ?? ""
                    #expect(v6Data.wholeMatch(of: #/\{"VNI":1,"VtepMAC":"[0-9a-f:]{17}"\}/#) != nil, "\(annotations)")
                    expected[prefix + "backend-v6-data"] = v6Data
                }
                #expect(annotations == expected, "host\(index)")
                try DualStack.addressContainerIPv6(bed, index, base: bases[index]!)
            }
            if backend == "host-gw" {
                DualStack.expectIPv6Routes(bed, bases)
            } else {
                let links = try bed.exec(bed.host(1), ["/usr/sbin/ip", "-o", "link", "show"])
                #expect(links.contains("flannel-v6.1") && !links.contains("flannel.1"), "\(links)")
            }
            DualStack.ping6Matrix(bed, bases, "kube IPv6-only \(backend)")
            for index in 1...3 { #expect(daemons[index]!.stop(SIGTERM) == 0) }
        }
    }
}
