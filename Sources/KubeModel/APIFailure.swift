/// The API errors a user meets, as one line each with the fix (reference §3.6, §5.7).
public enum APIFailure {
    /// What kube-flannel.yml's ClusterRole "flannel" grants; weftd needs the same.
    public static let requiredRules = "pods get; nodes get, list, watch; nodes/status patch"

    /// An HTTP error answer. `credentials` says what was sent (TokenSource.summary() or
    /// ClientConfig.credentialSummary); `retryAfter` is the Retry-After header, if any.
    public static func from(
        httpStatus: Int,
        body: some Collection<UInt8>,
        retryAfter: String?,
        request: APIRequest,
        config: ClientConfig,
        credentials: String
    ) -> KubeError {
        let status = APIDecoding.status(body)
        let said = status?.message.map { ": \($0)" } ?? ""
        switch httpStatus {
        case 401:
            return KubeError(
                .unauthorized,
                "Unauthorized: the API server refused \(credentials) on \(request)",
                fix: unauthorizedFix(config)
            )
        case 403:
            let rule = request.rbacRule
            return KubeError(
                .forbidden,
                "forbidden: weftd may not \(rule.split(separator: " ").last!) \(rule.split(separator: " ").first!) (\(request))\(said)",
                fix:
                    "add {apiGroups: [\"\"], resources: [\"\(request.resource)\(request.subresource.map { "/\($0)" } ?? "")\"], verbs: [\"\(request.verb.rawValue)\"]} to the ClusterRole bound to weftd's service account; kube-flannel.yml's ClusterRole flannel grants what weftd needs: \(requiredRules)"
            )
        case 404:
            return notFound(request, status: status)
        case 429:
            let delay = retryDelay(header: retryAfter, status: status)
            return KubeError(
                .tooManyRequests,
                "the API server is throttling weftd (429 Too Many Requests) on \(request)\(said)",
                fix:
                    "weftd retries in \(delay.components.seconds) s; if this persists, look at the API server's load and its API Priority and Fairness settings",
                retryAfter: delay
            )
        default:
            let reason = status?.reason.map { " \($0)" } ?? ""
            return KubeError(
                .api(code: httpStatus),
                "\(request) answered \(httpStatus)\(reason)\(said)",
                fix: httpStatus >= 500
                    ? "the API server failed; weftd retries, and its log says why"
                    : "check the server address and that it is a Kubernetes API server"
            )
        }
    }

    /// The connection failed (refused, timed out, TLS). `reason` is the transport's one-line error.
    public static func unreachable(request: APIRequest, config: ClientConfig, reason: String) -> KubeError {
        let address = config.server.hostPort
        let problem = "cannot reach the API server at \(address) for \(request): \(reason)"
        if config.isInCluster {
            // flannel issues #743, #1196, #1409: the Service VIP answers only once kube-proxy programmed it.
            return KubeError(
                .unreachable,
                problem,
                fix:
                    "\(config.server.host) comes from KUBERNETES_SERVICE_HOST, the kubernetes Service's cluster IP, which answers only after kube-proxy (or its replacement) has programmed it on this node: check kube-proxy, or point weftd at the API server itself with KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT in the DaemonSet's env; weftd keeps retrying and leaves the dataplane as it is"
            )
        }
        return KubeError(
            .unreachable,
            problem,
            fix:
                "check the server in --kube-api-url or the kubeconfig and that the API server is up; weftd keeps retrying and leaves the dataplane as it is"
        )
    }

    /// How long to wait after a 429: the Retry-After header in seconds (what client-go reads),
    /// else the Status's details.retryAfterSeconds, else one second; at least one second, at most
    /// ten minutes so a bad header cannot park weftd.
    public static func retryDelay(header: String?, status: Status?) -> Duration {
        let seconds = header.flatMap { Int($0.trimmingASCIIWhitespace) } ?? status?.details?.retryAfterSeconds ?? 1
        return .seconds(min(max(seconds, 1), 600))
    }

    private static func unauthorizedFix(_ config: ClientConfig) -> String {
        switch (config.bearerToken, config.clientCertificate) {
        case (.file(let path, _)?, _) where config.isInCluster:
            return
                "weftd re-reads \(path) every 50 s and at once after a 401, so a rotated token is picked up; if this persists the service account's token is no longer valid (ServiceAccount deleted or recreated?): restart the pod"
        case (.file(let path, _)?, _):
            return
                "put a valid token in \(path) (e.g. kubectl create token flannel -n kube-flannel); weftd re-reads it every 50 s and at once after a 401"
        case (.literal(_, let source)?, _):
            return
                "replace the token in \(source) (e.g. kubectl create token flannel -n kube-flannel) and restart weftd"
        case (nil, let certificate?):
            return
                "the client certificate (\(certificate.source)) must be signed by the cluster's CA and not be expired"
        case (nil, nil):
            return
                "give weftd credentials: run it in a pod with its service account, or a kubeconfig user with a token bound to the flannel ClusterRole"
        }
    }

    private static func notFound(_ request: APIRequest, status: Status?) -> KubeError {
        let name = request.name ?? ""
        let problem = status?.message ?? "\(request.resource) \(KubeError.quoted(name)) not found"
        switch request.resource {
        case "pods":
            return KubeError(
                .notFound,
                problem,
                fix:
                    "POD_NAME and POD_NAMESPACE must name weftd's own pod (downward API fieldRef metadata.name and metadata.namespace), or set NODE_NAME"
            )
        case "nodes" where request.verb == .patch:
            return KubeError(
                .notFound,
                "\(problem) (\(request))",
                fix:
                    "the node was deleted while weftd ran; weftd publishes its lease again once the kubelet re-registers it"
            )
        default:
            return KubeError(
                .notFound,
                "\(problem) (\(request))",
                fix:
                    "weftd's node name must be this node's name in `kubectl get nodes`: it comes from NODE_NAME or the pod's spec.nodeName"
            )
        }
    }
}
