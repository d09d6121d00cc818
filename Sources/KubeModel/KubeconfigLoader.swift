import Foundation

/// client-go's DirectClientConfig for the one case flannel uses: an explicit kubeconfig path, its
/// current-context, and `--kube-api-url` overriding the cluster's server.
enum KubeconfigLoader {
    static func load(path: String, apiURL: String) throws(KubeError) -> ClientConfig {
        let fileFix = "check --kubeconfig-file"
        let bytes: [UInt8]
        do {
            bytes = try FileContents.load(path)
        } catch {
            throw KubeError(.clientConfig, error.problem, fix: fileFix)
        }
        let config = try Kubeconfig.parse(bytes, path: path)
        // client-go resolves the file names inside a kubeconfig against the kubeconfig's directory.
        let directory = directoryOf(path)

        let contextName = config.currentContext ?? ""
        var context = Kubeconfig.Context()
        if !contextName.isEmpty {
            guard let found = config.contexts?.last(where: { $0.name == contextName }) else {
                let known = (config.contexts ?? []).map(\.name)
                throw KubeError(
                    .clientConfig,
                    "invalid configuration: context was not found for specified context: \(contextName)",
                    fix:
                        "set current-context in \(path) to one of: \(known.isEmpty ? "(no contexts defined)" : known.joined(separator: ", "))"
                )
            }
            context = found.value ?? Kubeconfig.Context()
        }
        let clusterName = context.cluster ?? ""
        let userName = context.user ?? ""
        let cluster = config.clusters?.last(where: { $0.name == clusterName })?.value ?? Kubeconfig.Cluster()
        let user = config.users?.last(where: { $0.name == userName })?.value ?? Kubeconfig.User()
        var warnings: [String] = []

        var serverText = cluster.server ?? ""
        if !apiURL.isEmpty { serverText = apiURL }
        guard !serverText.isEmpty else {
            let empty =
                (config.clusters ?? []).isEmpty && (config.contexts ?? []).isEmpty && (config.users ?? []).isEmpty
            if empty {
                throw KubeError(
                    .clientConfig,
                    "invalid configuration: no configuration has been provided, try setting KUBERNETES_MASTER environment variable",
                    fix:
                        "\(path) defines no cluster: give it a cluster, user and current-context, or pass --kube-api-url"
                )
            }
            let problem =
                clusterName.isEmpty
                ? "default cluster has no server defined"
                : "no server found for cluster \(KubeError.quoted(clusterName))"
            throw KubeError(
                .clientConfig,
                "invalid configuration: \(problem)",
                fix: contextName.isEmpty
                    ? "set current-context in \(path), or pass --kube-api-url"
                    : "set server for that cluster in \(path), or pass --kube-api-url"
            )
        }

        let clusterLabel = "kubeconfig cluster \(KubeError.quoted(clusterName))"
        let authority = try pem(
            file: cluster.certificateAuthority,
            data: cluster.certificateAuthorityData,
            field: "certificate-authority",
            short: "certificate-authority",
            label: clusterLabel,
            directory: directory
        )
        let insecure = cluster.insecureSkipTLSVerify ?? false
        if insecure {
            guard authority == nil else {
                throw KubeError(
                    .clientConfig,
                    "invalid configuration: specifying a root certificates file with the insecure flag is not allowed",
                    fix:
                        "remove insecure-skip-tls-verify from \(clusterLabel) in \(path) and keep its certificate-authority"
                )
            }
            warnings.append(
                "TLS VERIFICATION IS OFF: \(clusterLabel) in \(path) sets insecure-skip-tls-verify: true, so weftd cannot tell the API server from an impostor and hands its credentials to whoever answers; set certificate-authority-data (or certificate-authority) and remove insecure-skip-tls-verify"
            )
        }
        if let proxy = cluster.proxyURL, !proxy.isEmpty {
            warnings.append(
                "\(clusterLabel) in \(path) sets proxy-url \(KubeError.quoted(proxy)), which weftd does not use: it connects to the API server directly"
            )
        }

        let userLabel = "kubeconfig user \(KubeError.quoted(userName))"
        let token = try bearerToken(user, label: userLabel, path: path, directory: directory)
        let certificate = try clientCertificate(user, label: userLabel, path: path, directory: directory)

        let defaultTLS = authority != nil || certificate != nil || insecure
        let origin = apiURL.isEmpty ? "the server of \(clusterLabel) in \(path)" : "--kube-api-url"
        let server = try ServerAddress.parse(serverText, defaultTLS: defaultTLS, origin: origin)
        if server.scheme == .http {
            warnings.append(
                "the API server address \(server.url) is plain HTTP: requests and credentials cross the network unencrypted; use an https:// server"
            )
        }
        if token == nil && certificate == nil {
            warnings.append(
                "\(userLabel) in \(path) has no token, tokenFile or client certificate: requests go out anonymously and the API server will refuse them"
            )
        }
        return ClientConfig(
            server: server,
            origin: .kubeconfig(path: path, context: contextName),
            certificateAuthority: authority?.bytes,
            certificateAuthoritySource: authority?.source,
            tlsServerName: cluster.tlsServerName.flatMap { $0.isEmpty ? nil : $0 },
            insecureSkipTLSVerify: insecure,
            bearerToken: token,
            clientCertificate: certificate,
            namespace: context.namespace.flatMap { $0.isEmpty ? nil : $0 },
            warnings: warnings
        )
    }

    private static func bearerToken(
        _ user: Kubeconfig.User,
        label: String,
        path: String,
        directory: String
    ) throws(KubeError) -> TokenOrigin? {
        if user.exec != nil || user.authProvider != nil {
            let what = user.exec != nil ? "exec" : "auth-provider"
            throw KubeError(
                .clientConfig,
                "\(label) in \(path) gets its credentials from an \(what) plugin, which weftd does not run",
                fix:
                    "give that user a token, tokenFile or client-certificate/client-key (a ServiceAccount token bound to the flannel ClusterRole)"
            )
        }
        if !(user.username ?? "").isEmpty || !(user.password ?? "").isEmpty {
            throw KubeError(
                .clientConfig,
                "\(label) in \(path) uses username/password (basic auth), which Kubernetes removed in 1.19",
                fix: "give that user a token, tokenFile or client-certificate/client-key"
            )
        }
        // A tokenFile is re-read while running, so it wins over a literal token for the long run.
        if let file = user.tokenFile, !file.isEmpty {
            let tokenPath = resolve(file, against: directory)
            let initial = try TokenSource.readToken(
                tokenPath,
                fix: "fix tokenFile in \(label) (a relative path is taken from the kubeconfig's directory)"
            )
            return .file(path: tokenPath, initial: initial)
        }
        if let token = user.token, !token.trimmingASCIIWhitespace.isEmpty {
            return .literal(token.trimmingASCIIWhitespace, source: "\(label) in \(path)")
        }
        return nil
    }

    private static func clientCertificate(
        _ user: Kubeconfig.User,
        label: String,
        path: String,
        directory: String
    ) throws(KubeError) -> ClientCertificate? {
        let certificate = try pem(
            file: user.clientCertificate,
            data: user.clientCertificateData,
            field: "client-certificate",
            short: "client-cert",
            label: label,
            directory: directory
        )
        let key = try pem(
            file: user.clientKey,
            data: user.clientKeyData,
            field: "client-key",
            short: "client-key",
            label: label,
            directory: directory
        )
        switch (certificate, key) {
        case (nil, nil):
            return nil
        case (let certificate?, let key?):
            return ClientCertificate(certificate: certificate.bytes, key: key.bytes, source: certificate.source)
        case (nil, _?):
            throw KubeError(
                .clientConfig,
                "invalid configuration: client-cert-data or client-cert must be specified for \(clusterName(label)) to use the clientCert authentication method.",
                fix: "add client-certificate-data (or client-certificate) beside the key in \(label) in \(path)"
            )
        case (_?, nil):
            throw KubeError(
                .clientConfig,
                "invalid configuration: client-key-data or client-key must be specified for \(clusterName(label)) to use the clientCert authentication method.",
                fix: "add client-key-data (or client-key) beside the certificate in \(label) in \(path)"
            )
        }
    }

    /// A PEM given inline as `field`-data (base64) or as the file `field` names; `short` is the
    /// name client-go's messages use for it.
    private static func pem(
        file: String?,
        data: String?,
        field: String,
        short: String,
        label: String,
        directory: String
    ) throws(KubeError) -> (bytes: [UInt8], source: String)? {
        let file = file ?? ""
        let data = data ?? ""
        if !file.isEmpty && !data.isEmpty {
            throw KubeError(
                .clientConfig,
                "invalid configuration: \(short)-data and \(short) are both specified for \(clusterName(label)). \(short)-data will override.",
                fix: "keep only one of \(field) and \(field)-data in \(label)"
            )
        }
        if !data.isEmpty {
            return (try decodeBase64(data, field: "\(field)-data", label: label), "\(label) \(field)-data")
        }
        if !file.isEmpty {
            let path = resolve(file, against: directory)
            do {
                return (try FileContents.load(path), "\(label) \(field) \(path)")
            } catch {
                throw KubeError(
                    .clientConfig,
                    "invalid configuration: unable to read \(short) \(path) for \(clusterName(label)) due to \(error.problem)",
                    fix: "fix \(field) in \(label) (a relative path is taken from the kubeconfig's directory)"
                )
            }
        }
        return nil
    }

    /// Go's []byte fields decode standard padded base64 and skip line breaks.
    private static func decodeBase64(_ text: String, field: String, label: String) throws(KubeError) -> [UInt8] {
        let joined = text.filter { $0 != "\n" && $0 != "\r" }
        guard let data = Data(base64Encoded: joined) else {
            throw KubeError(
                .clientConfig,
                "\(field) of \(label) is not valid base64",
                fix:
                    "put the base64 of the PEM file there (`base64 -w0 file.crt`), or name the file with \(field.replacingOccurrences(of: "-data", with: ""))"
            )
        }
        return [UInt8](data)
    }

    /// client-go's messages name the entry without our "kubeconfig cluster" wording.
    private static func clusterName(_ label: String) -> String {
        guard let quote = label.firstIndex(of: "\"") else { return label }
        return String(label[label.index(after: quote)...].dropLast())
    }
}
