import Testing

@testable import KubeModel

@Suite struct APIFailures {
    let inCluster = ClientConfig(
        server: ServerAddress(scheme: .https, host: "10.96.0.1", port: 443),
        origin: .inCluster,
        bearerToken: .file(path: "/var/run/secrets/kubernetes.io/serviceaccount/token", initial: "t")
    )
    let kubeconfig = ClientConfig(
        server: ServerAddress(scheme: .https, host: "192.168.56.10", port: 6443),
        origin: .kubeconfig(path: "/etc/weft/kubeconfig", context: "weft"),
        bearerToken: .literal("t", source: "kubeconfig user \"weft\" in /etc/weft/kubeconfig")
    )

    func body(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test func unauthorizedNamesTheTokenFileAndTheReRead() {
        let error = APIFailure.from(
            httpStatus: 401,
            body: body(
                #"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#
            ),
            retryAfter: nil,
            request: .listNodes(resourceVersion: "0"),
            config: inCluster,
            credentials: "the bearer token in /var/run/secrets/kubernetes.io/serviceaccount/token (read 12 s ago)"
        )
        #expect(error.kind == .unauthorized)
        #expect(
            error.problem
                == "Unauthorized: the API server refused the bearer token in /var/run/secrets/kubernetes.io/serviceaccount/token (read 12 s ago) on GET /api/v1/nodes?limit=500&resourceVersion=0"
        )
        #expect(
            error.fix.contains(
                "re-reads /var/run/secrets/kubernetes.io/serviceaccount/token every 50 s and at once after a 401"
            )
        )
        let literal = APIFailure.from(
            httpStatus: 401,
            body: [],
            retryAfter: nil,
            request: .getNode("n"),
            config: kubeconfig,
            credentials: kubeconfig.credentialSummary
        )
        #expect(literal.fix.contains("replace the token in kubeconfig user \"weft\" in /etc/weft/kubeconfig"))
    }

    @Test func forbiddenNamesTheMissingRule() {
        let message =
            #"nodes \"worker-1\" is forbidden: User \"system:serviceaccount:kube-flannel:flannel\" cannot patch resource \"nodes/status\" in API group \"\" at the cluster scope"#
        let error = APIFailure.from(
            httpStatus: 403,
            body: body(
                #"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"\#(message)","reason":"Forbidden","details":{"name":"worker-1","kind":"nodes"},"code":403}"#
            ),
            retryAfter: nil,
            request: .patchNodeStatus("worker-1"),
            config: inCluster,
            credentials: ""
        )
        #expect(error.kind == .forbidden)
        #expect(
            error.problem.hasPrefix(
                "forbidden: weftd may not patch nodes/status (PATCH /api/v1/nodes/worker-1/status): nodes \"worker-1\" is forbidden"
            )
        )
        #expect(error.fix.hasPrefix("add {apiGroups: [\"\"], resources: [\"nodes/status\"], verbs: [\"patch\"]}"))
        #expect(error.fix.contains("ClusterRole flannel"))
        let watch = APIFailure.from(
            httpStatus: 403,
            body: [],
            retryAfter: nil,
            request: .watchNodes(resourceVersion: "1", timeoutSeconds: 300),
            config: inCluster,
            credentials: ""
        )
        #expect(watch.fix.hasPrefix("add {apiGroups: [\"\"], resources: [\"nodes\"], verbs: [\"watch\"]}"))
        #expect(!watch.description.contains("\n"))
    }

    @Test func ownNodeNotFoundPointsAtTheNodeName() {
        let error = APIFailure.from(
            httpStatus: 404,
            body: body(
                #"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"nodes \"worker-x\" not found","reason":"NotFound","details":{"name":"worker-x","kind":"nodes"},"code":404}"#
            ),
            retryAfter: nil,
            request: .getNode("worker-x"),
            config: inCluster,
            credentials: ""
        )
        #expect(error.kind == .notFound)
        #expect(error.problem == "nodes \"worker-x\" not found (GET /api/v1/nodes/worker-x)")
        #expect(error.fix.contains("NODE_NAME or the pod's spec.nodeName"))
        let pod = APIFailure.from(
            httpStatus: 404,
            body: [],
            retryAfter: nil,
            request: .getPod(namespace: "kube-flannel", name: "p"),
            config: inCluster,
            credentials: ""
        )
        #expect(pod.problem == "pods \"p\" not found")
        #expect(pod.fix.contains("POD_NAME and POD_NAMESPACE"))
    }

    @Test func throttlingHonoursRetryAfter() {
        let error = APIFailure.from(
            httpStatus: 429,
            body: [],
            retryAfter: "17",
            request: .listNodes(resourceVersion: "0"),
            config: inCluster,
            credentials: ""
        )
        #expect(error.kind == .tooManyRequests)
        #expect(error.retryAfter == .seconds(17))
        #expect(error.fix.hasPrefix("weftd retries in 17 s"))
        #expect(APIFailure.retryDelay(header: nil, status: Status(details: .init(retryAfterSeconds: 3))) == .seconds(3))
        #expect(APIFailure.retryDelay(header: "Wed, 21 Oct 2026 07:28:00 GMT", status: nil) == .seconds(1))
        #expect(APIFailure.retryDelay(header: "0", status: nil) == .seconds(1))
        #expect(APIFailure.retryDelay(header: "86400", status: nil) == .seconds(600))
    }

    @Test func unreachableInClusterGivesTheServiceVIPHint() {
        let error = APIFailure.unreachable(
            request: .getPod(namespace: "kube-flannel", name: "p"),
            config: inCluster,
            reason: "dial tcp 10.96.0.1:443: i/o timeout"
        )
        #expect(error.kind == .unreachable)
        #expect(
            error.problem
                == "cannot reach the API server at 10.96.0.1:443 for GET /api/v1/namespaces/kube-flannel/pods/p: dial tcp 10.96.0.1:443: i/o timeout"
        )
        #expect(error.fix.contains("kube-proxy"))
        #expect(error.fix.contains("KUBERNETES_SERVICE_HOST"))
        let outside = APIFailure.unreachable(request: .getNode("n"), config: kubeconfig, reason: "connection refused")
        #expect(outside.problem.contains("192.168.56.10:6443"))
        #expect(!outside.fix.contains("kube-proxy"))
    }

    @Test func otherStatusesKeepTheServersWords() {
        let error = APIFailure.from(
            httpStatus: 422,
            body: body(
                #"{"kind":"Status","status":"Failure","message":"Node \"n\" is invalid: metadata.annotations: Invalid value","reason":"Invalid","code":422}"#
            ),
            retryAfter: nil,
            request: .patchNodeStatus("n"),
            config: inCluster,
            credentials: ""
        )
        #expect(error.kind == .api(code: 422))
        #expect(
            error.problem
                == "PATCH /api/v1/nodes/n/status answered 422 Invalid: Node \"n\" is invalid: metadata.annotations: Invalid value"
        )
    }

    @Test func messagesStayOnOneLine() {
        let error = KubeError(.decoding, "line one\nline two\u{7}", fix: "a\tb")
        #expect(error.description == "line one\\nline two\\u{7}; a\\tb")
    }
}
