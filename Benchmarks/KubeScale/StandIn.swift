import Foundation
import KubeTestServer
import TestSupport

/// The child: the API stand-in with the cluster seeded, then changes on command.
///
/// stdin:  `churn <count> <intervalNanoseconds>` | `quit`
/// stdout: `ready <certificate authority>`, then per churn one `change <rv> <kind> <t0>` line per
///         change (t0: monotonic ns just before the store applied it) and `done`.
enum StandIn {
    static func serve(directory: String, nodes: Int) async throws {
        let pki = try ServerCertificates.make()
        let tokens = directory + "/tokens.csv"
        try TokenFile.write(
            [
                (ClusterShape.adminToken, User(name: "kubernetes-admin", groups: ["system:masters"])),
                (ClusterShape.flannelToken, User(name: User.flannel, groups: ["system:serviceaccounts"])),
            ],
            to: tokens
        )
        var configuration = KubeTestServer.Configuration(
            tokenFile: tokens,
            certificateFile: pki.certificate,
            keyFile: pki.key
        )
        configuration.bookmarkInterval = .seconds(10)
        configuration.historyLimit = 20_000
        let server = try await KubeTestServer.start(configuration)

        server.store.put(.nodes, node(ClusterShape.ownName, index: 0, annotations: [:]))
        for index in 1...nodes {
            server.store.put(
                .nodes,
                node(
                    ClusterShape.peerName(index),
                    index: index,
                    annotations: ClusterShape.annotations(
                        publicIP: ClusterShape.publicIP(index),
                        mac: ClusterShape.mac(index)
                    )
                )
            )
        }
        try Data(ClusterShape.flannelToken.utf8).write(to: URL(fileURLWithPath: directory + "/weft-token"))
        try Data(ClusterShape.netConf.utf8).write(to: URL(fileURLWithPath: directory + "/net-conf.json"))
        try Data(
            """
            apiVersion: v1
            kind: Config
            clusters:
            - name: scale
              cluster:
                server: \(server.url)
                certificate-authority: \(pki.authority)
            users:
            - name: flannel
              user:
                tokenFile: \(directory)/weft-token
            contexts:
            - name: scale
              context: {cluster: scale, user: flannel}
            current-context: scale
            """.utf8
        ).write(to: URL(fileURLWithPath: directory + "/kubeconfig"))
        say("ready")

        var churn = Churn(peers: nodes)
        while let line = readLine() {
            let words = line.split(separator: " ")
            if words.first == "churn", words.count == 3, let count = Int(words[1]), let interval = UInt64(words[2]) {
                var lines: [String] = []
                lines.reserveCapacity(count + 1)
                let start = monotonicNanoseconds()
                for step in 0..<count {
                    let due = start + UInt64(step) * interval
                    let now = monotonicNanoseconds()
                    if due > now { usleep(UInt32((due - now) / 1000)) }
                    let (kind, t0, object) = try churn.next(server.store)
                    let version = object.value(at: "metadata.resourceVersion")?.string ?? "0"
                    lines.append("change \(version) \(kind) \(t0)")
                }
                lines.append("done")
                say(lines.joined(separator: "\n"))
            } else if words.first == "quit" {
                break
            }
        }
        try? await server.shutdown()
        try? FileManager.default.removeItem(at: pki.directory)
    }

    static func node(_ name: String, index: Int, annotations: [String: String]) -> JSONValue {
        Fixtures.node(name, podCIDRs: [ClusterShape.podCIDR(index)], annotations: annotations)
    }

    static func say(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }
}

/// The changes, in a cycle of four: a node joins, a seeded peer's public-ip changes, the new
/// node's public-ip changes, the new node leaves. Every one changes the route table.
struct Churn {
    let peers: Int
    var step = 0
    var generator = SplitMix64(seed: 16)

    init(peers: Int) { self.peers = peers }

    mutating func next(_ store: ObjectStore) throws -> (kind: String, t0: UInt64, object: JSONValue) {
        defer { step += 1 }
        let cycle = step / 4
        let index = peers + 1 + cycle % (ClusterShape.subnetCount - peers - 1)
        let name = "join-\(cycle)"
        let fresh = ClusterShape.publicIP(70_000 + step % 60_000)
        switch step % 4 {
        case 0:
            let node = StandIn.node(
                name,
                index: index,
                annotations: ClusterShape.annotations(
                    publicIP: ClusterShape.publicIP(index),
                    mac: ClusterShape.mac(index)
                )
            )
            let t0 = monotonicNanoseconds()
            return ("add", t0, store.put(.nodes, node))
        case 1:
            let peer = ClusterShape.peerName(1 + Int(generator.next() % UInt64(peers)))
            let t0 = monotonicNanoseconds()
            return (
                "public-ip", t0, try store.patch(.nodes, ObjectKey(name: peer), type: .merge, patch(publicIP: fresh))
            )
        case 2:
            let t0 = monotonicNanoseconds()
            return (
                "public-ip", t0, try store.patch(.nodes, ObjectKey(name: name), type: .merge, patch(publicIP: fresh))
            )
        default:
            let t0 = monotonicNanoseconds()
            return ("delete", t0, try store.delete(.nodes, ObjectKey(name: name)))
        }
    }

    private func patch(publicIP: String) -> JSONValue {
        ["metadata": ["annotations": ["flannel.alpha.coreos.com/public-ip": .string(publicIP)]]]
    }
}
