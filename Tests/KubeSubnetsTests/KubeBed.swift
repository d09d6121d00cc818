import Addressing
import Config
import ControlPlane
import Foundation
import KubeTestServer
import Routes
import Synchronization

@testable import KubeSubnets

/// The Kubernetes API stand-in (TLS, bearer tokens, flannel's RBAC) with a kubeconfig for weftd's
/// service account, a net-conf.json, and nodes n1 (ours, 10.244.1.0/24), n2 (a vxlan peer already
/// annotated by flannel, 10.244.2.0/24) and n3 (no podCIDR yet).
final class KubeBed: Sendable {
    static let adminToken = "admin-token-kube-bed"
    static let flannelToken = "flannel-token-kube-bed"
    static let netConf = #"{"Network":"10.244.0.0/16","EnableNFTables":false,"Backend":{"Type":"vxlan"}}"#

    let server: KubeTestServer
    let directory: URL
    var tokens: String { directory.appendingPathComponent("tokens.csv").path }
    var weftToken: String { directory.appendingPathComponent("weft-token").path }
    var kubeconfig: String { directory.appendingPathComponent("kubeconfig").path }
    var netConfPath: String { directory.appendingPathComponent("net-conf.json").path }

    private init(server: KubeTestServer, directory: URL) {
        self.server = server
        self.directory = directory
    }

    static func with<T>(roles: [String: Role]? = nil, _ body: (KubeBed) async throws -> T) async throws -> T {
        let certificates = try ServerCertificates.shared.get()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "weft-kubebed-\(UUID().uuidString)"
        )
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let tokens = directory.appendingPathComponent("tokens.csv").path
        try TokenFile.write(
            [
                (adminToken, User(name: "kubernetes-admin", groups: ["system:masters"])),
                (flannelToken, User(name: User.flannel, groups: ["system:serviceaccounts"])),
            ],
            to: tokens
        )
        var configuration = KubeTestServer.Configuration(
            tokenFile: tokens,
            certificateFile: certificates.certificate,
            keyFile: certificates.key
        )
        configuration.bookmarkInterval = .seconds(1)
        if let roles { configuration.roles = roles }
        let server = try await KubeTestServer.start(configuration)
        let bed = KubeBed(server: server, directory: directory)
        do {
            try Data(netConf.utf8).write(to: URL(fileURLWithPath: bed.netConfPath))
            try Data(flannelToken.utf8).write(to: URL(fileURLWithPath: bed.weftToken))
            let kubeconfig = """
                apiVersion: v1
                kind: Config
                clusters:
                - name: test
                  cluster:
                    server: \(server.url)
                    certificate-authority: \(certificates.authority)
                users:
                - name: flannel
                  user:
                    tokenFile: \(bed.weftToken)
                contexts:
                - name: test
                  context: {cluster: test, user: flannel}
                current-context: test
                """
            try Data(kubeconfig.utf8).write(to: URL(fileURLWithPath: bed.kubeconfig))
            server.store.put(.nodes, node("n1", podCIDR: "10.244.1.0/24"))
            server.store.put(
                .nodes,
                node(
                    "n2",
                    podCIDR: "10.244.2.0/24",
                    annotations: flannelAnnotations(publicIP: "198.18.0.2", mac: "0a:00:00:00:00:02")
                )
            )
            server.store.put(.nodes, node("n3", podCIDR: ""))
            let result = try await body(bed)
            try? await server.shutdown()
            try? FileManager.default.removeItem(at: directory)
            return result
        } catch {
            try? await server.shutdown()
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    static func node(_ name: String, podCIDR: String, annotations: [String: String] = [:]) -> JSONValue {
        var node = Fixtures.node(
            name,
            podCIDRs: podCIDR.isEmpty ? [] : [podCIDR],
            annotations: annotations.merging(["dummy": "value"]) { a, _ in a }
        )
        node["kind"] = nil
        node["apiVersion"] = nil
        return node
    }

    static func flannelAnnotations(publicIP: String, mac: String) -> [String: String] {
        [
            "flannel.alpha.coreos.com/kube-subnet-manager": "true",
            "flannel.alpha.coreos.com/backend-type": "vxlan",
            "flannel.alpha.coreos.com/backend-data": #"{"VNI":1,"VtepMAC":"\#(mac)"}"#,
            "flannel.alpha.coreos.com/public-ip": publicIP,
        ]
    }

    /// weftd's manager as `NODE_NAME=<node>` with this bed's kubeconfig and net-conf.json.
    func manager(
        node: String,
        setNodeNetworkUnavailable: Bool = true,
        warnings: Lines = Lines()
    ) throws -> KubeSubnetManager {
        var options = KubeSubnetManager.Options()
        options.kubeconfigPath = kubeconfig
        options.netConfigPath = netConfPath
        options.environment = ["NODE_NAME": node]
        options.setNodeNetworkUnavailable = setNodeNetworkUnavailable
        return try KubeSubnetManager(options, warn: { warnings.append($0) })
    }

    /// Node `node`'s manager with its lease taken (by default vxlan, 198.18.0.1) and its peer
    /// watcher running, what it publishes and its freshness recorded in `seen`, its lines in `log`.
    func watchPeers(
        asNode node: String,
        request: LeaseRequest = KubeBed.request(publicIP: "198.18.0.1", mac: "0a:00:00:00:00:01")
    ) async throws -> PeerWatch {
        let manager = try manager(node: node)
        let keeper = manager.leaseKeeper(request, log: { _, _ in })
        let lease = try await keeper.acquire()
        let publisher = lease.emptyPublisher()
        let seen = Observed()
        let log = Lines()
        guard
            let watcher = manager.peerWatcher(
                for: lease,
                keeper: keeper,
                publisher: publisher,
                log: log.log,
                events: PeerWatchEvents(published: { seen.routes($0.routes) }, freshness: { seen.freshness($0) })
            ) as? KubeNodeWatcher
        else { preconditionFailure("Kubernetes mode's peer watcher is a KubeNodeWatcher") }
        return PeerWatch(
            manager: manager,
            watcher: watcher,
            publisher: publisher,
            seen: seen,
            log: log,
            running: Task { await watcher.run() }
        )
    }

    struct PeerWatch {
        let manager: KubeSubnetManager
        let watcher: KubeNodeWatcher
        let publisher: RouteTablePublisher
        let seen: Observed
        let log: Lines
        let running: Task<Void, Never>

        /// Cancels the watcher and shuts the manager's client down.
        func stop() {
            running.cancel()
            Task { [manager] in await manager.shutdown() }
        }
    }

    /// Our lease request as weftd makes it for the vxlan backend.
    static func request(publicIP: String, mac: String) -> LeaseRequest {
        LeaseRequest(
            attributes: .vxlan(
                publicIP: IPv4Address(publicIP)!,
                data: VXLANLeaseData(configuredVNI: 1, vtepMAC: MACAddress(mac)!)
            )
        )
    }

    func annotations(of name: String) throws -> [String: String] {
        let node = try server.store.get(.nodes, ObjectKey(name: name))
        return (node.value(at: "metadata.annotations")?.object ?? [:]).compactMapValues(\.string)
    }

    func patches(to name: String) -> [RecordedRequest] {
        server.requests.filter { $0.method == "PATCH" && $0.path == "/api/v1/nodes/\(name)/status" }
    }
}

/// Lines a test collects (warnings, log lines).
final class Lines: Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
    var log: LogHandler { { [self] _, line in append(line) } }
}
