import Foundation
import KubeSubnets

extension DaemonOptions {
    /// The Kubernetes subnet manager's options for flanneld's --kube-* flags, shared by weftd and
    /// `weft doctor`. `environment` holds NODE_NAME, POD_NAME/POD_NAMESPACE and the in-cluster
    /// KUBERNETES_SERVICE_HOST/PORT.
    public func kubeSubnetManagerOptions(
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> KubeSubnetManager.Options {
        var kube = KubeSubnetManager.Options()
        kube.apiURL = kubeAPIURL
        kube.kubeconfigPath = kubeconfigFile
        kube.netConfigPath = netConfigPath
        kube.annotationPrefix = kubeAnnotationPrefix
        kube.setNodeNetworkUnavailable = setNodeNetworkUnavailable
        kube.environment = environment
        return kube
    }
}
