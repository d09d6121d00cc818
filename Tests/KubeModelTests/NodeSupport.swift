@testable import KubeModel

extension Fixture {
    static func node(_ name: String) throws -> Node {
        try APIDecoding.node(try bytes(name))
    }
}

extension Node {
    /// A node as the API server would hold it, for tests that only vary a few fields.
    static func make(
        _ name: String,
        resourceVersion: String = "1",
        podCIDRs: [String] = [],
        annotations: [String: String]? = nil
    ) -> Node {
        Node(
            metadata: ObjectMeta(name: name, resourceVersion: resourceVersion, annotations: annotations),
            spec: NodeSpec(podCIDR: podCIDRs.first, podCIDRs: podCIDRs.isEmpty ? nil : podCIDRs)
        )
    }
}

/// flannel's annotations for a vxlan node, as its AcquireLease writes them.
func vxlanAnnotations(publicIP: String, mac: String, prefix: String = "flannel.alpha.coreos.com/") -> [String: String] {
    [
        "\(prefix)backend-data": "{\"VNI\":1,\"VtepMAC\":\"\(mac)\"}",
        "\(prefix)backend-type": "vxlan",
        "\(prefix)kube-subnet-manager": "true",
        "\(prefix)public-ip": publicIP,
    ]
}
