import Foundation
import Testing

@testable import KubeModel

@Suite struct KubeconfigFiles {
    @Test func kubeadmAdminConfigDecodesBase64DataFields() throws {
        let path = Fixture.path("kubeconfig-admin.yaml")
        let config = try ClientConfigBuilder.build(apiURL: "", kubeconfigPath: path, environment: [:])
        #expect(config.server == ServerAddress(scheme: .https, host: "192.168.56.10", port: 6443))
        #expect(config.origin == .kubeconfig(path: path, context: "kubernetes-admin@kubernetes"))
        #expect(config.certificateAuthority == (try Fixture.bytes("pki/ca.crt")))
        #expect(config.clientCertificate?.certificate == (try Fixture.bytes("pki/weft.crt")))
        #expect(config.clientCertificate?.key == (try Fixture.bytes("pki/weft.key")))
        #expect(config.bearerToken == nil)
        #expect(config.insecureSkipTLSVerify == false)
        #expect(config.warnings.isEmpty)
    }

    @Test func relativePathsResolveAgainstTheKubeconfigsDirectory() throws {
        let path = Fixture.path("kubeconfig-files.yaml")
        let config = try ClientConfigBuilder.build(apiURL: "", kubeconfigPath: path, environment: [:])
        #expect(config.server.host == "fd00:56::10")
        #expect(config.server.hostPort == "[fd00:56::10]:6443")
        #expect(config.certificateAuthority == (try Fixture.bytes("pki/ca.crt")))
        #expect(config.certificateAuthoritySource?.hasSuffix("Fixtures/pki/ca.crt") == true)
        #expect(
            config.bearerToken
                == .file(
                    path: Fixture.path("pki/token"),
                    initial: "eyJhbGciOiJSUzI1NiIsImtpZCI6IndlZnQifQ.flannel-token-from-file"
                )
        )
        #expect(config.clientCertificate?.key == (try Fixture.bytes("pki/weft.key")))
        #expect(config.tlsServerName == "kubernetes.default.svc")
        #expect(config.namespace == "kube-flannel")
    }

    @Test func apiURLOverridesTheServerAndKeepsTheRest() throws {
        let config = try ClientConfigBuilder.build(
            apiURL: "https://10.0.0.5:6443",
            kubeconfigPath: Fixture.path("kubeconfig-admin.yaml"),
            environment: [:]
        )
        #expect(config.server.url == "https://10.0.0.5:6443")
        #expect(config.certificateAuthority != nil)
        #expect(config.clientCertificate != nil)
    }

    @Test func insecureSkipVerifyIsHonouredOnlyWithALoudWarning() throws {
        let config = try ClientConfigBuilder.build(
            apiURL: "",
            kubeconfigPath: Fixture.path("kubeconfig-token.yaml"),
            environment: [:]
        )
        #expect(config.insecureSkipTLSVerify)
        #expect(config.warnings.count == 1)
        #expect(config.warnings[0].hasPrefix("TLS VERIFICATION IS OFF"))
        #expect(config.warnings[0].contains("insecure-skip-tls-verify"))
        #expect(
            config.bearerToken
                == .literal(
                    "eyJhbGciOiJSUzI1NiJ9.literal-token",
                    source: "kubeconfig user \"flannel\" in \(Fixture.path("kubeconfig-token.yaml"))"
                )
        )
        #expect(config.server.url == "https://127.0.0.1:16443")
    }

    @Test func insecureWithACertificateAuthorityIsRefusedAsClientGoDoes() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write(
            "config",
            """
            clusters: [{name: c, cluster: {server: "https://h:6443", insecure-skip-tls-verify: true, certificate-authority-data: "\(Data("x".utf8).base64EncodedString())"}}]
            contexts: [{name: x, context: {cluster: c, user: u}}]
            users: [{name: u, user: {token: t}}]
            current-context: x
            """
        )
        let error = #expect(throws: KubeError.self) {
            try ClientConfigBuilder.build(apiURL: "", kubeconfigPath: "\(dir.path)/config", environment: [:])
        }
        #expect(
            error?.problem
                == "invalid configuration: specifying a root certificates file with the insecure flag is not allowed"
        )
        #expect(error?.fix.contains("remove insecure-skip-tls-verify") == true)
    }

    @Test func missingContextNamesTheKnownOnes() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write(
            "config",
            """
            clusters: [{name: c, cluster: {server: "https://h:6443"}}]
            contexts: [{name: one, context: {cluster: c}}, {name: two, context: {cluster: c}}]
            current-context: three
            """
        )
        let error = #expect(throws: KubeError.self) {
            try ClientConfigBuilder.build(apiURL: "", kubeconfigPath: "\(dir.path)/config", environment: [:])
        }
        #expect(error?.problem == "invalid configuration: context was not found for specified context: three")
        #expect(error?.fix.contains("one, two") == true)
    }

    @Test func clusterWithoutServerIsRefusedUnlessTheAPIURLGivesOne() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write(
            "config",
            """
            clusters: [{name: c, cluster: {certificate-authority-data: "\(Data("-----BEGIN CERTIFICATE-----".utf8).base64EncodedString())"}}]
            contexts: [{name: x, context: {cluster: c, user: u}}]
            users: [{name: u, user: {token: abc}}]
            current-context: x
            """
        )
        let error = #expect(throws: KubeError.self) {
            try ClientConfigBuilder.build(apiURL: "", kubeconfigPath: "\(dir.path)/config", environment: [:])
        }
        #expect(error?.problem == "invalid configuration: no server found for cluster \"c\"")
        let config = try ClientConfigBuilder.build(
            apiURL: "10.0.0.1:6443",
            kubeconfigPath: "\(dir.path)/config",
            environment: [:]
        )
        // A bare host:port with a CA configured defaults to https, as client-go's DefaultServerURL does.
        #expect(config.server.url == "https://10.0.0.1:6443")
    }

    @Test func emptyKubeconfigGivesClientGosEmptyConfigError() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write("config", "apiVersion: v1\nkind: Config\n")
        let error = #expect(throws: KubeError.self) {
            try ClientConfigBuilder.build(apiURL: "", kubeconfigPath: "\(dir.path)/config", environment: [:])
        }
        #expect(error?.problem.hasPrefix("invalid configuration: no configuration has been provided") == true)
    }

    @Test func missingKubeconfigFileSaysWhichPath() {
        let error = #expect(throws: KubeError.self) {
            try ClientConfigBuilder.build(apiURL: "", kubeconfigPath: "/nonexistent/kubeconfig", environment: [:])
        }
        #expect(
            error?.description == "open /nonexistent/kubeconfig: no such file or directory; check --kubeconfig-file"
        )
    }

    @Test func badYAMLNamesTheFile() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write("config", "clusters: {this is: [not, a list}\n")
        let error = #expect(throws: KubeError.self) {
            try ClientConfigBuilder.build(apiURL: "", kubeconfigPath: "\(dir.path)/config", environment: [:])
        }
        #expect(error?.problem.hasPrefix("error loading config file \"\(dir.path)/config\"") == true)
        #expect(error?.description.contains("\n") == false)
    }

    @Test func badBase64NamesTheField() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write(
            "config",
            """
            clusters: [{name: c, cluster: {server: "https://h:6443", certificate-authority-data: "not base64!"}}]
            contexts: [{name: x, context: {cluster: c}}]
            current-context: x
            """
        )
        let error = #expect(throws: KubeError.self) {
            try ClientConfigBuilder.build(apiURL: "", kubeconfigPath: "\(dir.path)/config", environment: [:])
        }
        #expect(error?.problem == "certificate-authority-data of kubeconfig cluster \"c\" is not valid base64")
    }

    @Test func unreadableRelativeFileIsReportedResolved() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write(
            "sub/config",
            """
            clusters: [{name: c, cluster: {server: "https://h:6443", certificate-authority: missing/ca.crt}}]
            contexts: [{name: x, context: {cluster: c}}]
            current-context: x
            """
        )
        let error = #expect(throws: KubeError.self) {
            try ClientConfigBuilder.build(apiURL: "", kubeconfigPath: "\(dir.path)/sub/config", environment: [:])
        }
        #expect(
            error?.problem
                == "invalid configuration: unable to read certificate-authority \(dir.path)/sub/missing/ca.crt for c due to open \(dir.path)/sub/missing/ca.crt: no such file or directory"
        )
    }

    @Test func execPluginsAndBasicAuthAreRefusedByName() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write(
            "exec",
            """
            clusters: [{name: c, cluster: {server: "https://h:6443"}}]
            contexts: [{name: x, context: {cluster: c, user: eks}}]
            users: [{name: eks, user: {exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: aws, args: [eks, get-token]}}}]
            current-context: x
            """
        )
        let exec = #expect(throws: KubeError.self) {
            try ClientConfigBuilder.build(apiURL: "", kubeconfigPath: "\(dir.path)/exec", environment: [:])
        }
        #expect(exec?.problem.contains("exec plugin, which weftd does not run") == true)
        try dir.write(
            "basic",
            """
            clusters: [{name: c, cluster: {server: "https://h:6443"}}]
            contexts: [{name: x, context: {cluster: c, user: old}}]
            users: [{name: old, user: {username: admin, password: secret}}]
            current-context: x
            """
        )
        let basic = #expect(throws: KubeError.self) {
            try ClientConfigBuilder.build(apiURL: "", kubeconfigPath: "\(dir.path)/basic", environment: [:])
        }
        #expect(basic?.problem.contains("basic auth") == true)
    }

    @Test func certificateWithoutKeyIsRefusedWithClientGosText() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write(
            "config",
            """
            clusters: [{name: c, cluster: {server: "https://h:6443"}}]
            contexts: [{name: x, context: {cluster: c, user: u}}]
            users: [{name: u, user: {client-certificate-data: "\(Data("cert".utf8).base64EncodedString())"}}]
            current-context: x
            """
        )
        let error = #expect(throws: KubeError.self) {
            try ClientConfigBuilder.build(apiURL: "", kubeconfigPath: "\(dir.path)/config", environment: [:])
        }
        #expect(
            error?.problem
                == "invalid configuration: client-key-data or client-key must be specified for u to use the clientCert authentication method."
        )
    }

    @Test func anonymousAndPlainHTTPAreWarnedAbout() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write(
            "config",
            """
            clusters: [{name: c, cluster: {server: "http://10.0.0.1:8080"}}]
            contexts: [{name: x, context: {cluster: c, user: nobody}}]
            current-context: x
            """
        )
        let config = try ClientConfigBuilder.build(apiURL: "", kubeconfigPath: "\(dir.path)/config", environment: [:])
        #expect(config.server.scheme == .http)
        #expect(config.warnings.contains { $0.contains("plain HTTP") })
        #expect(config.warnings.contains { $0.contains("anonymously") })
        #expect(config.credentialSummary == "no credentials (anonymous)")
    }
}

@Suite struct InCluster {
    func serviceAccount(
        token: String? = "sa-token\n",
        ca: String? = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        namespace: String? = "kube-flannel"
    ) throws -> TemporaryDirectory {
        let dir = try TemporaryDirectory()
        if let token { try dir.write("token", token) }
        if let ca { try dir.write("ca.crt", ca) }
        if let namespace { try dir.write("namespace", namespace) }
        return dir
    }

    @Test func inClusterReadsTheServiceAccountFiles() throws {
        let dir = try serviceAccount()
        defer { dir.remove() }
        let config = try ClientConfigBuilder.build(
            apiURL: "",
            kubeconfigPath: "",
            environment: ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"],
            serviceAccountDirectory: dir.path
        )
        #expect(config.server.url == "https://10.96.0.1:443")
        #expect(config.isInCluster)
        #expect(config.bearerToken == .file(path: "\(dir.path)/token", initial: "sa-token"))
        #expect(
            config.certificateAuthority.map { String(decoding: $0, as: UTF8.self) }?.hasPrefix(
                "-----BEGIN CERTIFICATE-----"
            ) == true
        )
        #expect(config.namespace == "kube-flannel")
        #expect(config.warnings == [ClientConfigBuilder.inClusterNotice])
    }

    @Test func ipv6ServiceHostIsBracketed() throws {
        let dir = try serviceAccount()
        defer { dir.remove() }
        let config = try ClientConfigBuilder.build(
            apiURL: "",
            kubeconfigPath: "",
            environment: ["KUBERNETES_SERVICE_HOST": "fd00:10:96::1", "KUBERNETES_SERVICE_PORT": "443"],
            serviceAccountDirectory: dir.path
        )
        #expect(config.server.url == "https://[fd00:10:96::1]:443")
        #expect(config.server.host == "fd00:10:96::1")
    }

    @Test func outsideAClusterGivesClientGosError() {
        let error = #expect(throws: KubeError.self) {
            try ClientConfigBuilder.build(
                apiURL: "",
                kubeconfigPath: "",
                environment: ["KUBERNETES_SERVICE_HOST": "10.96.0.1"],
                serviceAccountDirectory: "/nonexistent"
            )
        }
        #expect(
            error?.problem
                == "unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined"
        )
        #expect(error?.fix.contains("--kubeconfig-file") == true)
    }

    @Test func missingTokenNamesTheFileAndTheFix() throws {
        let dir = try serviceAccount(token: nil)
        defer { dir.remove() }
        let error = #expect(throws: KubeError.self) {
            try ClientConfigBuilder.build(
                apiURL: "",
                kubeconfigPath: "",
                environment: ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"],
                serviceAccountDirectory: dir.path
            )
        }
        #expect(error?.problem == "open \(dir.path)/token: no such file or directory")
        #expect(error?.fix.contains("automountServiceAccountToken") == true)
    }

    @Test func emptyTokenIsRefused() throws {
        let dir = try serviceAccount(token: " \n")
        defer { dir.remove() }
        let error = #expect(throws: KubeError.self) {
            try ClientConfigBuilder.build(
                apiURL: "",
                kubeconfigPath: "",
                environment: ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"],
                serviceAccountDirectory: dir.path
            )
        }
        #expect(error?.problem == "read empty token from file \"\(dir.path)/token\"")
    }

    @Test func missingCAIsAWarningAsInClientGo() throws {
        let dir = try serviceAccount(ca: nil, namespace: nil)
        defer { dir.remove() }
        let config = try ClientConfigBuilder.build(
            apiURL: "",
            kubeconfigPath: "",
            environment: [
                "KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443", "POD_NAMESPACE": "weft",
            ],
            serviceAccountDirectory: dir.path
        )
        #expect(config.certificateAuthority == nil)
        #expect(config.warnings.count == 2)
        #expect(
            config.warnings[1].hasPrefix("Expected to load root CA config from \(dir.path)/ca.crt, but got err: open")
        )
        #expect(config.namespace == "weft")
    }

    @Test func badServicePortIsNamed() throws {
        let dir = try serviceAccount()
        defer { dir.remove() }
        let error = #expect(throws: KubeError.self) {
            try ClientConfigBuilder.build(
                apiURL: "",
                kubeconfigPath: "",
                environment: ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "https"],
                serviceAccountDirectory: dir.path
            )
        }
        #expect(error?.problem.contains("KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT") == true)
        #expect(error?.problem.contains("\"https\"") == true)
    }

    @Test func apiURLAloneIsAnonymousAndSaysSo() throws {
        let config = try ClientConfigBuilder.build(
            apiURL: "https://192.168.56.10:6443",
            kubeconfigPath: "",
            environment: [:]
        )
        #expect(config.origin == .apiURL)
        #expect(config.server.port == 6443)
        #expect(config.warnings.count == 1)
        #expect(config.warnings[0].contains("anonymously"))
    }
}

@Suite struct ServerAddresses {
    @Test(arguments: [
        ("https://10.0.0.1:6443", true, "https://10.0.0.1:6443"),
        ("https://api.example.com", true, "https://api.example.com:443"),
        ("10.0.0.1:6443", false, "http://10.0.0.1:6443"),
        ("10.0.0.1:6443", true, "https://10.0.0.1:6443"),
        ("https://[::1]:6443/", true, "https://[::1]:6443"),
        ("HTTPS://host:1/prefix/", true, "https://host:1/prefix"),
        ("http://host", false, "http://host:80"),
    ])
    func parses(text: String, tls: Bool, url: String) throws {
        #expect(try ServerAddress.parse(text, defaultTLS: tls, origin: "--kube-api-url").url == url)
    }

    @Test(arguments: [
        "", "ftp://h", "https://h:0", "https://h:99999", "https://[::1", "https://user:pw@h", "https://:443",
    ])
    func refuses(text: String) {
        #expect(throws: KubeError.self) { try ServerAddress.parse(text, defaultTLS: true, origin: "--kube-api-url") }
    }
}
