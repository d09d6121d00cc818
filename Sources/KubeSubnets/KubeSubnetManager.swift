import Addressing
import Config
import ControlPlane
import KubeModel
import Routes

/// flannel's Kubernetes subnet manager (--kube-subnet-mgr): the network config from
/// net-conf.json, our subnet from our Node's podCIDR, our lease attributes as annotations on
/// it (PATCH nodes/<name>/status), and peers from the other Nodes' annotations.
public struct KubeSubnetManager: SubnetManager {
    public struct Options: Sendable {
        /// --kube-api-url.
        public var apiURL = ""
        /// --kubeconfig-file.
        public var kubeconfigPath = ""
        /// --net-config-path.
        public var netConfigPath = NetworkConfigFile.defaultPath
        /// --kube-annotation-prefix.
        public var annotationPrefix = AnnotationKeys.defaultPrefix
        /// --set-node-network-unavailable: report NetworkUnavailable=False once the lease is taken.
        public var setNodeNetworkUnavailable = true
        /// NODE_NAME, POD_NAME, POD_NAMESPACE, KUBERNETES_SERVICE_HOST/PORT.
        public var environment: [String: String] = [:]
        /// Where a pod's service-account token, ca.crt and namespace are.
        public var serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

        public init() {}
    }

    let api: KubeAPI
    let keys: AnnotationKeys
    let netConf: NetworkConfigFile
    let nodeNames: NodeNameResolver
    let setNodeNetworkUnavailable: Bool
    /// Lines the client configuration asks to be logged (in-cluster notice, plain HTTP, TLS verification off).
    public let warnings: [String]

    /// Checks everything that needs no API call: the client configuration, the annotation
    /// prefix, where the node name comes from. Each failure is one line with its fix.
    public init(_ options: Options, warn: @escaping @Sendable (String) -> Void) throws(KubeError) {
        let config = try ClientConfigBuilder.build(
            apiURL: options.apiURL,
            kubeconfigPath: options.kubeconfigPath,
            environment: options.environment,
            serviceAccountDirectory: options.serviceAccountDirectory
        )
        keys = try AnnotationKeys(prefix: options.annotationPrefix)
        let source = try NodeNameSource.from(environment: options.environment)
        api = try KubeAPI(config: config, warn: warn)
        nodeNames = NodeNameResolver(source: source, api: api)
        netConf = NetworkConfigFile(path: options.netConfigPath)
        setNodeNetworkUnavailable = options.setNodeNetworkUnavailable
        warnings = config.warnings
    }

    public var summary: String { "Kubernetes API \(api.config.server.url) (\(api.config.credentialSummary))" }

    public var configLocation: String { netConf.path }

    public func networkConfig() async throws(LeaseError) -> NetworkConfig {
        try netConf.read()
    }

    /// The VtepMAC in our own node's backend-data annotation.
    public func storedVTEPMAC(publicIP _: IPv4Address) async throws(LeaseError) -> MACAddress? {
        do {
            let name = try await nodeNames.name()
            let node = try APIDecoding.node(try await api.call(.getNode(name)))
            return OwnNodeAnnotations(node: node, keys: keys).storedVtepMAC()
        } catch {
            throw LeaseError(kube: error)
        }
    }

    /// flannel's GetStoredPublicIP: the node-public-ip annotation of our own node, which replaces
    /// --public-ip before the interface is chosen. nil when the node has none.
    public func storedPublicIP() async throws(LeaseError) -> StoredPublicIP? {
        do {
            let name = try await nodeNames.name()
            let node = try APIDecoding.node(try await api.call(.getNode(name)))
            guard let address = try OwnNodeAnnotations(node: node, keys: keys).nodePublicIP() else { return nil }
            return StoredPublicIP(address: address, node: name, annotation: keys.nodePublicIP)
        } catch {
            throw LeaseError(kube: error)
        }
    }

    public func leaseKeeper(_ request: LeaseRequest, log: @escaping LogHandler) -> any LeaseKeeper {
        KubeLeaseKeeper(manager: self, request: request, log: log)
    }

    public func peerWatcher(
        for lease: AcquiredLease,
        keeper: any LeaseKeeper,
        publisher: RouteTablePublisher,
        log: @escaping LogHandler,
        events: PeerWatchEvents
    ) -> any PeerWatching {
        KubeNodeWatcher(
            manager: self,
            network: lease.config,
            localSubnet: lease.subnet,
            localIPv6Subnet: lease.ipv6Subnet,
            keeper: keeper,
            publisher: publisher,
            log: log,
            events: events
        )
    }

    public func watchConfig(_ report: @escaping @Sendable (Result<NetworkConfig, LeaseError>) -> Void) async {
        await netConf.watch(report)
    }

    public func shutdown() async {
        await api.shutdown()
    }
}

/// The address an operator stored on our node for weftd to use as --public-ip.
public struct StoredPublicIP: Equatable, Sendable {
    public let address: IPv4Address
    public let node: String
    /// The annotation's full key (with the --kube-annotation-prefix).
    public let annotation: String

    public init(address: IPv4Address, node: String, annotation: String) {
        self.address = address
        self.node = node
        self.annotation = annotation
    }
}

/// Our node's name, learned once: NODE_NAME, or the GET of our pod (flannel's order).
actor NodeNameResolver {
    nonisolated let source: NodeNameSource
    private let api: KubeAPI
    private var known: String?

    init(source: NodeNameSource, api: KubeAPI) {
        self.source = source
        self.api = api
        if case .nodeName(let name) = source { known = name }
    }

    func name() async throws(KubeError) -> String {
        if let known { return known }
        guard let request = source.podRequest else { preconditionFailure("a NODE_NAME source is known from the start") }
        let body: [UInt8]
        do {
            body = try await api.call(request)
        } catch {
            throw source.lookupFailed(error)
        }
        let name = try source.nodeName(fromPod: body)
        known = name
        return name
    }
}

extension LeaseError {
    /// A Kubernetes-mode failure as the run loop sees it: the API server being away is one
    /// problem whatever each attempt's text; the rest are their own lines.
    init(kube error: KubeError) {
        switch error.kind {
        case .podCIDRNotAssigned, .podCIDR:
            self.init(.noSubnet, error.description)
        case .clientConfig, .file, .nodeName, .annotationPrefix, .annotation:
            self.init(.configInvalid, error.description)
        case .unreachable:
            self.init(.store, error.description, problem: "Kubernetes API unreachable")
        case .tooManyRequests:
            self.init(.store, error.description, problem: "Kubernetes API throttling")
        case .unauthorized, .forbidden, .notFound, .decoding, .watchLineTooLong, .api:
            self.init(.store, error.description)
        }
    }
}
