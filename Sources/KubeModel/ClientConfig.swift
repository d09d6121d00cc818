/// What client-go's BuildConfigFromFlags hands to a client: the server, how to trust it, who we
/// are, and the warnings a user must see (insecure TLS, plain HTTP, a CA file that would not load).
public struct ClientConfig: Equatable, Sendable {
    public enum Origin: Equatable, Sendable {
        /// KUBERNETES_SERVICE_HOST/PORT and the service-account files.
        case inCluster
        /// A kubeconfig file and the context used from it ("" when none was chosen).
        case kubeconfig(path: String, context: String)
        /// Only --kube-api-url: no CA beyond the system's, no credentials.
        case apiURL
    }

    public var server: ServerAddress
    public var origin: Origin
    /// PEM bytes to trust instead of the system roots; nil means the system roots.
    public var certificateAuthority: [UInt8]?
    /// Where `certificateAuthority` came from, for messages ("kubeconfig certificate-authority-data").
    public var certificateAuthoritySource: String?
    /// The kubeconfig's tls-server-name: the name to verify instead of the server's host.
    public var tlsServerName: String?
    /// Set only from a kubeconfig's insecure-skip-tls-verify, and always with a warning.
    public var insecureSkipTLSVerify: Bool
    public var bearerToken: TokenOrigin?
    public var clientCertificate: ClientCertificate?
    /// The namespace client-go would default to: the context's, or in-cluster POD_NAMESPACE or
    /// the service account's namespace file.
    public var namespace: String?
    /// Lines to log at warning level before the first request.
    public var warnings: [String]

    public init(
        server: ServerAddress,
        origin: Origin,
        certificateAuthority: [UInt8]? = nil,
        certificateAuthoritySource: String? = nil,
        tlsServerName: String? = nil,
        insecureSkipTLSVerify: Bool = false,
        bearerToken: TokenOrigin? = nil,
        clientCertificate: ClientCertificate? = nil,
        namespace: String? = nil,
        warnings: [String] = []
    ) {
        self.server = server
        self.origin = origin
        self.certificateAuthority = certificateAuthority
        self.certificateAuthoritySource = certificateAuthoritySource
        self.tlsServerName = tlsServerName
        self.insecureSkipTLSVerify = insecureSkipTLSVerify
        self.bearerToken = bearerToken
        self.clientCertificate = clientCertificate
        self.namespace = namespace
        self.warnings = warnings
    }

    /// True when the server address came from KUBERNETES_SERVICE_HOST: usually the kubernetes
    /// Service's cluster IP, reachable only once kube-proxy has programmed it.
    public var isInCluster: Bool { origin == .inCluster }

    /// Who we claim to be, for a 401 message.
    public var credentialSummary: String {
        switch (bearerToken, clientCertificate) {
        case (let token?, nil): token.summary
        case (nil, let certificate?): "the client certificate from \(certificate.source)"
        case (let token?, let certificate?): "\(token.summary) and the client certificate from \(certificate.source)"
        case (nil, nil): "no credentials (anonymous)"
        }
    }
}

/// Where the bearer token comes from. A file is re-read (see TokenSource) because the kubelet
/// rotates projected service-account tokens about every hour.
public enum TokenOrigin: Equatable, Sendable {
    /// A token written into the kubeconfig.
    case literal(String, source: String)
    /// A file, and its contents when the config was built (trimmed, non-empty).
    case file(path: String, initial: String)

    public var summary: String {
        switch self {
        case .literal(_, let source): "the bearer token from \(source)"
        case .file(let path, _): "the bearer token in \(path)"
        }
    }
}

/// A client certificate and its key, both PEM.
public struct ClientCertificate: Equatable, Sendable {
    public var certificate: [UInt8]
    public var key: [UInt8]
    /// "kubeconfig user \"admin\" client-certificate /etc/kubernetes/admin.crt", for messages.
    public var source: String

    public init(certificate: [UInt8], key: [UInt8], source: String) {
        self.certificate = certificate
        self.key = key
        self.source = source
    }
}
