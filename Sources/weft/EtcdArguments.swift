import ArgumentParser
import Daemon
import Etcd
import Foundation

/// weftd's --etcd-* flags for the operator commands. Each flag not given is read from the
/// FLANNELD_* variable weftd reads, and every value goes through weftd's own parser
/// (DaemonOptions), so a node's /etc/default/flanneld environment works unchanged.
struct EtcdArguments: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Comma-separated etcd v3 endpoints (FLANNELD_ETCD_ENDPOINTS; default http://127.0.0.1:4001,http://127.0.0.1:2379).",
            valueName: "url,url"
        )
    )
    var etcdEndpoints: String?
    @Option(
        help: ArgumentHelp("etcd key prefix (FLANNELD_ETCD_PREFIX; default /coreos.com/network).", valueName: "prefix")
    )
    var etcdPrefix: String?
    @Option(help: ArgumentHelp("CA that signs etcd's server certificate (FLANNELD_ETCD_CAFILE).", valueName: "path"))
    var etcdCafile: String?
    @Option(help: ArgumentHelp("Client TLS certificate (FLANNELD_ETCD_CERTFILE).", valueName: "path"))
    var etcdCertfile: String?
    @Option(help: ArgumentHelp("Client TLS key (FLANNELD_ETCD_KEYFILE).", valueName: "path"))
    var etcdKeyfile: String?
    @Option(help: ArgumentHelp("etcd v3 user name (FLANNELD_ETCD_USERNAME).", valueName: "name"))
    var etcdUsername: String?
    @Option(help: ArgumentHelp("etcd v3 password (FLANNELD_ETCD_PASSWORD).", valueName: "password"))
    var etcdPassword: String?

    /// weftd's options for these flags plus `extra` weftd flags (--subnet-file=..., --iface=...),
    /// the rest from FLANNELD_* and weftd's defaults.
    func options(_ extra: [String] = []) throws -> DaemonOptions {
        var arguments: [String] = []
        let given: [(String, String?)] = [
            ("etcd-endpoints", etcdEndpoints), ("etcd-prefix", etcdPrefix), ("etcd-cafile", etcdCafile),
            ("etcd-certfile", etcdCertfile), ("etcd-keyfile", etcdKeyfile), ("etcd-username", etcdUsername),
            ("etcd-password", etcdPassword),
        ]
        for case let (name, value?) in given { arguments.append("--\(name)=\(value)") }
        switch try DaemonOptions.parse(arguments: arguments + extra, environment: ProcessInfo.processInfo.environment) {
        case .run(let options): return options
        case .help, .version: throw CommandFailure("unexpected --help or --version among the weftd flags")
        }
    }
}

/// The etcd client for `options`, shut down after `body` whatever it does. An operator command
/// fails fast: one pass over the endpoints, not weftd's patient retries.
func withEtcdClient<T>(
    _ options: DaemonOptions,
    endpoints: [String]? = nil,
    adjust: (inout EtcdClient.Configuration) -> Void = { $0.passes = 1 },
    _ body: (EtcdClient) async throws -> T
) async throws -> T {
    let client = try options.makeEtcdClient(
        endpoints: endpoints,
        adjust: adjust,
        warning: { warning in
            FileHandle.standardError.write(Data("weft: warning: \(warning)\n".utf8))
        }
    )
    do {
        let result = try await body(client)
        try? await client.shutdown()
        return result
    } catch {
        try? await client.shutdown()
        throw error
    }
}

extension AsyncParsableCommand {
    /// Runs `body`, turning any failure into one line on standard error and exit status 1.
    func reportingFailures(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch {
            throw Self.reported(error)
        }
    }
}
