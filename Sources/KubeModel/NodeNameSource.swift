/// How weftd learns its node's name, as flannel does: NODE_NAME, else the pod named by POD_NAME
/// and POD_NAMESPACE, whose spec.nodeName the API server knows. kube-flannel.yml sets only the
/// pod variables, so a real deployment always makes the pod GET.
public enum NodeNameSource: Equatable, Sendable {
    case nodeName(String)
    case pod(namespace: String, name: String)

    public static func from(environment: [String: String]) throws(KubeError) -> NodeNameSource {
        if let name = environment["NODE_NAME"], !name.isEmpty { return .nodeName(name) }
        let pod = environment["POD_NAME"] ?? ""
        let namespace = environment["POD_NAMESPACE"] ?? ""
        guard !pod.isEmpty, !namespace.isEmpty else {
            throw KubeError(
                .nodeName,
                "env variables POD_NAME and POD_NAMESPACE must be set",
                fix:
                    "set NODE_NAME, or POD_NAME and POD_NAMESPACE from the downward API (fieldRef metadata.name and metadata.namespace, as kube-flannel.yml does)"
            )
        }
        return .pod(namespace: namespace, name: pod)
    }

    /// The GET to make, or nil when NODE_NAME already answered.
    public var podRequest: APIRequest? {
        guard case .pod(let namespace, let name) = self else { return nil }
        return .getPod(namespace: namespace, name: name)
    }

    /// The node name from the pod GET's body.
    public func nodeName(fromPod body: some Collection<UInt8>) throws(KubeError) -> String {
        switch self {
        case .nodeName(let name):
            return name
        case .pod(let namespace, let name):
            let pod: Pod
            do {
                pod = try APIDecoding.pod(body)
            } catch {
                throw lookupFailed(error)
            }
            guard let node = pod.spec?.nodeName, !node.isEmpty else {
                throw KubeError(
                    .nodeName,
                    "node name not present in pod spec '\(namespace)/\(name)'",
                    fix: "the pod is not scheduled yet; or set NODE_NAME from the downward API (fieldRef spec.nodeName)"
                )
            }
            return node
        }
    }

    /// flannel's wording for a failed pod GET, around the API error (401, 403, 404, unreachable).
    public func lookupFailed(_ error: KubeError) -> KubeError {
        guard case .pod(let namespace, let name) = self else { return error }
        return KubeError(
            error.kind,
            "error retrieving pod spec for '\(namespace)/\(name)': \(error.problem)",
            fix: error.fix,
            retryAfter: error.retryAfter
        )
    }
}
