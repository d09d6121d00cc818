/// client-go's rest.InClusterConfig: the kubernetes Service address from the kubelet's
/// environment and the pod's service-account files.
enum InClusterConfig {
    /// Where the kubelet mounts the service-account token, CA and namespace.
    static let serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

    static let notInCluster =
        "unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined"

    static func load(environment: [String: String], root: String) throws(KubeError) -> ClientConfig {
        let host = environment["KUBERNETES_SERVICE_HOST"] ?? ""
        let port = environment["KUBERNETES_SERVICE_PORT"] ?? ""
        guard !host.isEmpty, !port.isEmpty else {
            throw KubeError(
                .clientConfig,
                notInCluster,
                fix: "run weftd in a pod (the kubelet sets both), or pass --kubeconfig-file or --kube-api-url"
            )
        }
        let server = try ServerAddress.parse(
            "https://\(host.contains(":") ? "[\(host)]" : host):\(port)",
            defaultTLS: true,
            origin: "KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT"
        )
        let directory = root.hasSuffix("/") ? String(root.dropLast()) : root
        let tokenPath = "\(directory)/token"
        let token = try TokenSource.readToken(
            tokenPath,
            fix:
                "the pod needs its service-account token: set serviceAccountName (flannel in kube-flannel.yml) and do not set automountServiceAccountToken: false"
        )

        var warnings: [String] = []
        let caPath = "\(directory)/ca.crt"
        var authority: [UInt8]?
        do {
            let bytes = try FileContents.load(caPath)
            if PEM.containsCertificate(bytes) {
                authority = bytes
            } else {
                warnings.append(
                    "Expected to load root CA config from \(caPath), but got err: data does not contain any valid RSA or ECDSA certificates; the system roots are used instead, which will not verify the cluster's API server"
                )
            }
        } catch {
            warnings.append(
                "Expected to load root CA config from \(caPath), but got err: \(error.problem); the system roots are used instead, which will not verify the cluster's API server"
            )
        }

        // clientcmd's in-cluster namespace: POD_NAMESPACE first, then the service account's file.
        var namespace = environment["POD_NAMESPACE"] ?? ""
        if namespace.isEmpty, let bytes = try? FileContents.load("\(directory)/namespace") {
            namespace = String(decoding: bytes, as: UTF8.self).trimmingASCIIWhitespace
        }
        return ClientConfig(
            server: server,
            origin: .inCluster,
            certificateAuthority: authority,
            certificateAuthoritySource: authority == nil ? nil : caPath,
            bearerToken: .file(path: tokenPath, initial: token),
            namespace: namespace.isEmpty ? "default" : namespace,
            warnings: warnings
        )
    }
}

enum PEM {
    static func containsCertificate(_ bytes: [UInt8]) -> Bool {
        String(decoding: bytes, as: UTF8.self).contains("-----BEGIN CERTIFICATE-----")
    }
}
