import Etcd

extension DaemonOptions {
    /// The etcd client for flanneld's --etcd-* flags, shared by weftd and the `weft` operator
    /// commands. As in flanneld, a CA file alone with http endpoints connects in plain text (with
    /// flanneld's warning, passed to `warning`); https endpoints use it. `endpoints` replaces
    /// --etcd-endpoints (weft doctor probes one endpoint at a time); `adjust` tunes timeouts.
    public func makeEtcdClient(
        endpoints: [String]? = nil,
        adjust: (inout EtcdClient.Configuration) -> Void = { _ in },
        warning: (String) -> Void
    ) throws -> EtcdClient {
        let endpoints = endpoints ?? etcdEndpoints
        var configuration = EtcdClient.Configuration()
        let hasClientCertificate = !etcdCertFile.isEmpty || !etcdKeyFile.isEmpty
        let usesHTTPS = endpoints.contains { $0.hasPrefix("https://") }
        if !etcdCAFile.isEmpty {
            if hasClientCertificate || usesHTTPS {
                configuration.caFile = etcdCAFile
            } else {
                warning("no certificate provided: connecting to etcd with http. This is insecure")
            }
        }
        if !etcdCertFile.isEmpty { configuration.certificateFile = etcdCertFile }
        if !etcdKeyFile.isEmpty { configuration.keyFile = etcdKeyFile }
        if !etcdUsername.isEmpty {
            configuration.username = etcdUsername
            configuration.password = etcdPassword
        } else if !etcdPassword.isEmpty {
            throw DaemonOptionsError(
                flag: "--etcd-password",
                problem: "given without --etcd-username; give both, or neither for an etcd without authentication"
            )
        }
        adjust(&configuration)
        return try EtcdClient(endpoints: endpoints, configuration: configuration)
    }
}
