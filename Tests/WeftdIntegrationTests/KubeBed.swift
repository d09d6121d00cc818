import Foundation
import Glibc
import KubeTestServer
import Status
import TestSupport

/// `weft-kube-test-server` is built next to weftd.
let kubeServerPath = URL(fileURLWithPath: weftdPath).deletingLastPathComponent().appendingPathComponent(
    "weft-kube-test-server"
).path

/// Why the Kubernetes-mode beds cannot run here, or nil: root, the tools the bed and the tests
/// run (no etcd), and the API stand-in's executable.
let kubeBedUnavailable: String? = {
    if geteuid() != 0 {
        return "WeftdIntegrationTests need root (network namespaces, TUN devices); run swift test as root"
    }
    for tool in ["/usr/bin/ping", "/usr/bin/curl", "/usr/sbin/ip", "/usr/bin/openssl", "/usr/bin/env"]
    where !FileManager.default.isExecutableFile(atPath: tool) {
        return
            "WeftdIntegrationTests' Kubernetes beds need \(tool); install it (apt-get install iputils-ping curl iproute2 openssl)"
    }
    for executable in [weftdPath, kubeServerPath] where !FileManager.default.isExecutableFile(atPath: executable) {
        return "no executable at \(executable); run swift build first"
    }
    return nil
}()

/// `Bed` with the Kubernetes API stand-in where etcd would be: weft-kube-test-server in the
/// underlay namespace on 198.18.0.254:6443, TLS with a throwaway CA whose server certificate
/// names that address, a token file giving weftd flannel's service account, and a control socket
/// (plain HTTP, outside the namespaces) through which the test drives the server and, with the
/// admin token, the API. Every weftd runs `--kube-subnet-mgr` as Node `host<N>`.
final class KubeBed {
    static let address = "198.18.0.254"
    static let adminToken = "admin-token-weftd-it"
    static let annotationPrefix = "flannel.alpha.coreos.com/"

    let bed: Bed
    let backend: String
    private let pki: ServerCertificates
    private(set) var flannelToken = "flannel-token-weftd-it-1"
    private(set) var server: Started?

    var directory: String { bed.directory }
    var tokens: String { directory + "/tokens.csv" }
    var weftToken: String { directory + "/weft-token" }
    var kubeconfig: String { directory + "/kubeconfig" }
    var netConf: String { directory + "/net-conf.json" }
    var controlSocket: String { directory + "/kube.sock" }

    /// `backend` is net-conf.json's Backend.Type (udp, vxlan, host-gw).
    init(hosts: Int, backend: String) throws {
        let bed = try Bed(hosts: hosts)
        do {
            pki = try ServerCertificates.make(addresses: [Self.address], names: [])
        } catch {
            bed.tearDown()
            throw error
        }
        self.bed = bed
        self.backend = backend
        do {
            try writeTokens()
            try flannelToken.write(toFile: weftToken, atomically: true, encoding: .utf8)
            let backendJSON = backend == "vxlan" ? #"{"Type":"vxlan","VNI":1}"# : #"{"Type":"\#(backend)"}"#
            try #"{"Network":"10.244.0.0/16","Backend":\#(backendJSON)}"#.write(
                toFile: netConf,
                atomically: true,
                encoding: .utf8
            )
            try """
            apiVersion: v1
            kind: Config
            clusters:
            - name: bed
              cluster:
                server: https://\(Self.address):6443
                certificate-authority: \(pki.authority)
            users:
            - name: flannel
              user:
                tokenFile: \(weftToken)
            contexts:
            - name: bed
              context: {cluster: bed, user: flannel}
            current-context: bed
            """.write(toFile: kubeconfig, atomically: true, encoding: .utf8)
            bed.subnetStore = .kubernetes(kubeconfig: kubeconfig, netConf: netConf)
        } catch {
            tearDown()
            throw error
        }
    }

    func tearDown() {
        bed.tearDown()
        pki.remove()
    }

    private func writeTokens() throws {
        try TokenFile.write(
            [
                (Self.adminToken, User(name: "kubernetes-admin", groups: ["system:masters"])),
                (flannelToken, User(name: User.flannel, groups: ["system:serviceaccounts"])),
            ],
            to: tokens
        )
    }

    /// The kubelet-registered Node of host N, with podCIDR 10.244.N.0/24 unless `podCIDR` is false,
    /// and the operator's `annotations` (full keys).
    func node(_ index: Int, podCIDR: Bool = true, annotations: [String: String] = [:]) -> JSONValue {
        Fixtures.node(
            bed.nodeName(index),
            podCIDRs: podCIDR ? ["10.244.\(index).0/24"] : [],
            internalIP: bed.hostIP(index),
            annotations: annotations
        )
    }

    /// The backend-type annotation flanneld writes: its udp backend leaves the lease's BackendType empty.
    var backendTypeAnnotation: String { backend == "udp" ? "" : backend }

    /// A node flannel already annotated with this bed's backend, for a host that runs no weftd.
    func peerNode(_ name: String, podCIDR: String, publicIP: String) -> JSONValue {
        let data = backend == "vxlan" ? #"{"VNI":1,"VtepMAC":"0a:00:00:00:00:09"}"# : "null"
        return Fixtures.node(
            name,
            podCIDRs: [podCIDR],
            internalIP: publicIP,
            annotations: [
                Self.annotationPrefix + "kube-subnet-manager": "true",
                Self.annotationPrefix + "backend-type": backendTypeAnnotation,
                Self.annotationPrefix + "backend-data": data, Self.annotationPrefix + "public-ip": publicIP,
            ]
        )
    }

    /// Starts the API server in the underlay namespace with `nodes` in its store; returns once it listens.
    func startServer(nodes: [JSONValue]) throws {
        let seed = directory + "/nodes.json"
        try Data(JSONValue.array(nodes).serialized).write(to: URL(fileURLWithPath: seed))
        let process = try Started(
            [
                "/usr/sbin/ip", "netns", "exec", bed.underlay, kubeServerPath,
                "--token-file", tokens, "--cert", pki.certificate, "--key", pki.key,
                "--listen", "\(Self.address):6443", "--control-socket", controlSocket,
                "--seed", seed, "--bookmark-interval", "1",
            ],
            logPath: directory + "/kube-server.log"
        )
        bed.started.append(process)
        server = process
        guard
            waitFor(
                .seconds(15),
                interval: .milliseconds(50),
                { process.log.contains("listening on") || !process.isRunning }
            ) != nil,
            process.isRunning
        else {
            throw BedFailure("weft-kube-test-server did not start: \(process.log.suffix(2000))")
        }
    }

    /// One request on the control socket (a `/weft-test/` control, or the API with the admin
    /// token); returns the body and throws unless the answer is 2xx.
    @discardableResult
    func request(
        _ method: String,
        _ path: String,
        body: String? = nil,
        contentType: String = "application/json"
    ) throws -> String {
        var arguments = [
            "/usr/bin/curl", "-sS", "-m", "5", "--unix-socket", controlSocket, "-X", method,
            "-H", "Authorization: Bearer \(Self.adminToken)", "-w", "\n%{http_code}",
        ]
        if let body { arguments += ["-H", "Content-Type: \(contentType)", "--data-binary", body] }
        let result = try run(arguments + ["http://localhost\(path)"])
        let lines = result.output.split(separator: "\n", omittingEmptySubsequences: false)
        let code = Int(lines.last ?? "") ?? 0
        guard result.status == 0, (200..<300).contains(code) else {
            throw BedFailure(
                "\(method) \(path) on the API stand-in: curl \(result.status), HTTP \(code): \(result.output.suffix(600))"
            )
        }
        return lines.dropLast().joined(separator: "\n")
    }

    func control(_ action: String) throws { try request(action == "requests" ? "GET" : "POST", "/weft-test/\(action)") }

    /// Puts nodes as given (no validation, no patch semantics): a new node or a replacement.
    func put(_ node: JSONValue) throws { try request("POST", "/weft-test/put/nodes", body: node.text) }

    func deleteNode(_ name: String) throws { try request("DELETE", "/api/v1/nodes/\(name)") }

    func annotations(of name: String) throws -> [String: String] {
        let node = try JSONValue.parse(try request("GET", "/api/v1/nodes/\(name)"))
        return (node.value(at: "metadata.annotations")?.object ?? [:]).compactMapValues(\.string)
    }

    /// The server's request log.
    func requests() throws -> [JSONValue] {
        try JSONValue.parse(try request("GET", "/weft-test/requests")).array ?? []
    }

    /// A bearer token's HTTP status for GET /api/v1/nodes, straight at the API over TLS from the underlay.
    func statusCode(withToken token: String) throws -> Int {
        let result = try bed.execResult(
            bed.underlay,
            [
                "/usr/bin/curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}",
                "--cacert", pki.authority, "-H", "Authorization: Bearer \(token)",
                "https://\(Self.address):6443/api/v1/nodes",
            ]
        )
        return Int(result.output) ?? 0
    }

    /// Rotates weftd's token: the server accepts only the new one, then weftd's token file holds it.
    func rotateFlannelToken(to token: String) throws {
        flannelToken = token
        try writeTokens()
        try token.write(toFile: weftToken, atomically: true, encoding: .utf8)
    }

    /// weftd N's routes (with VTEP MACs) from its status socket.
    func routes(_ index: Int) throws -> [RoutesReport.Entry] {
        try StatusClient(path: bed.statusSocket(index)).routes().routes
    }

    /// The subnets weftd N routes to (empty when it does not answer).
    func routedSubnets(_ index: Int) -> Set<String> {
        Set(((try? routes(index)) ?? []).map(\.subnet))
    }
}
