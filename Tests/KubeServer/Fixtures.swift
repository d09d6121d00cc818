/// Objects as a cluster holds them, for tests to put in the store: a kubelet-registered Node (Ready,
/// with addresses and the kubelet's ttl annotation) and a flannel DaemonSet Pod.
public enum Fixtures {
    /// `podCIDRs` empty leaves the node unassigned (flannel's "pod cidr not assigned"); `annotations`
    /// are added to the kubelet's, e.g. flannel's `kube-subnet-manager`/`public-ip` for a peer.
    public static func node(
        _ name: String,
        podCIDRs: [String] = [],
        internalIP: String = "192.168.0.1",
        annotations: [String: String] = [:],
        labels: [String: String] = [:]
    ) -> JSONValue {
        var spec: [String: JSONValue] = [:]
        if let first = podCIDRs.first {
            spec["podCIDR"] = .string(first)
            spec["podCIDRs"] = .array(podCIDRs.map(JSONValue.string))
        }
        let allLabels = ["kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"]
            .merging(labels) { _, new in new }
        let allAnnotations = ["node.alpha.kubernetes.io/ttl": "0"].merging(annotations) { _, new in new }
        return [
            "kind": "Node", "apiVersion": "v1",
            "metadata": [
                "name": .string(name),
                "labels": .object(allLabels.mapValues(JSONValue.string)),
                "annotations": .object(allAnnotations.mapValues(JSONValue.string)),
            ],
            "spec": .object(spec),
            "status": [
                "conditions": [
                    [
                        "type": "Ready", "status": "True", "reason": "KubeletReady",
                        "message": "kubelet is posting ready status",
                    ]
                ],
                "addresses": [
                    ["type": "InternalIP", "address": .string(internalIP)],
                    ["type": "Hostname", "address": .string(name)],
                ],
                "daemonEndpoints": ["kubeletEndpoint": ["Port": 10250]],
            ],
        ]
    }

    /// The pod weftd reads its node name from when only POD_NAME and POD_NAMESPACE are set.
    public static func pod(_ name: String, namespace: String = "kube-flannel", nodeName: String) -> JSONValue {
        [
            "kind": "Pod", "apiVersion": "v1",
            "metadata": [
                "name": .string(name), "namespace": .string(namespace), "labels": ["app": "flannel", "tier": "node"],
            ],
            "spec": ["nodeName": .string(nodeName), "serviceAccountName": "flannel", "hostNetwork": true],
            "status": ["phase": "Running"],
        ]
    }
}
