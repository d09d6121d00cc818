/// client-go's `clientcmd.BuildConfigFromFlags(masterUrl, kubeconfigPath)`, which flannel calls
/// with `--kube-api-url` and `--kubeconfig-file`.
public enum ClientConfigBuilder {
    /// client-go's warning when neither flag is given; flannel's logs carry it at every in-cluster start.
    public static let inClusterNotice =
        "Neither --kubeconfig nor --master was specified.  Using the inClusterConfig.  This might not work."

    /// - Parameters:
    ///   - apiURL: `--kube-api-url`; replaces the kubeconfig's server when both are given.
    ///   - kubeconfigPath: `--kubeconfig-file`.
    ///   - environment: the process environment (KUBERNETES_SERVICE_HOST/PORT, POD_NAMESPACE).
    ///   - serviceAccountDirectory: where token, ca.crt and namespace live in a pod; tests pass a temp dir.
    public static func build(
        apiURL: String,
        kubeconfigPath: String,
        environment: [String: String],
        serviceAccountDirectory: String = "/var/run/secrets/kubernetes.io/serviceaccount"
    ) throws(KubeError) -> ClientConfig {
        if apiURL.isEmpty && kubeconfigPath.isEmpty {
            var config = try InClusterConfig.load(environment: environment, root: serviceAccountDirectory)
            config.warnings.insert(inClusterNotice, at: 0)
            return config
        }
        if !kubeconfigPath.isEmpty {
            return try KubeconfigLoader.load(path: kubeconfigPath, apiURL: apiURL)
        }
        let server = try ServerAddress.parse(apiURL, defaultTLS: false, origin: "--kube-api-url")
        var warnings = [
            "--kube-api-url without --kubeconfig-file: no CA beyond the system's and no credentials, so requests go out anonymously; pass --kubeconfig-file with a token for the flannel ClusterRole"
        ]
        if server.scheme == .http {
            warnings.append(
                "the API server address \(server.url) is plain HTTP: requests cross the network unencrypted; use an https:// server"
            )
        }
        return ClientConfig(server: server, origin: .apiURL, warnings: warnings)
    }
}
