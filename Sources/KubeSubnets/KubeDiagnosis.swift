import Addressing
import Config
import KubeModel

/// What `weft doctor` learns from the API server in Kubernetes mode: whether it answers, which of
/// weftd's RBAC rules work, our node's podCIDR and annotations, and the peers' public-ips (for
/// the path probes). Each access is tried as weftd makes it; `nodes/status patch` with an empty
/// strategic-merge patch, which the API server applies as a no-op.
public struct KubeDiagnosis: Sendable {
    public struct Access: Sendable, Equatable {
        /// As RBAC names it: "nodes get", "nodes/status patch".
        public var rule: String
        /// Why it failed; nil when it worked.
        public var error: String?
    }

    public var server: String
    public var node: Result<String, KubeError>
    public var access: [Access] = []
    /// Our node's IPv4 podCIDR, checked against the net-conf.json Network; nil when not read.
    public var podCIDR: Result<IPv4Prefix, KubeError>?
    /// flannel's annotations on our node, by short name ("public-ip"); nil when not read.
    public var annotations: [String: String]?
    /// The public-ips of the other nodes weftd would route to.
    public var peerPublicIPs: [String] = []
}

extension KubeSubnetManager {
    public func diagnose(network: IPv4Prefix?) async -> KubeDiagnosis {
        var diagnosis = KubeDiagnosis(
            server: api.config.server.url,
            node: .failure(KubeError(.nodeName, "not looked up"))
        )
        let name: String
        do {
            name = try await nodeNames.name()
            diagnosis.node = .success(name)
        } catch {
            diagnosis.node = .failure(error)
            if case .pod(let namespace, let pod) = nodeNames.source {
                diagnosis.access.append(.init(rule: "pods get", error: "\(namespace)/\(pod): \(error)"))
            }
            return diagnosis
        }
        if case .pod = nodeNames.source { diagnosis.access.append(.init(rule: "pods get", error: nil)) }
        do {
            let node = try APIDecoding.node(try await api.call(.getNode(name)))
            diagnosis.access.append(.init(rule: "nodes get", error: nil))
            let keys = self.keys
            let short = [
                keys.kubeSubnetManager: "kube-subnet-manager", keys.backendType: "backend-type",
                keys.backendData: "backend-data",
                keys.publicIP: "public-ip", keys.publicIPOverwrite: "public-ip-overwrite",
                keys.nodePublicIP: "node-public-ip",
            ]
            diagnosis.annotations = Dictionary(
                uniqueKeysWithValues: node.annotations.compactMap { key, value in short[key].map { ($0, value) } }
            )
            if let network {
                do {
                    let own = try OwnSubnet.select(node: node, network: network)
                    if let subnet = own.subnet { diagnosis.podCIDR = .success(subnet) }
                } catch {
                    diagnosis.podCIDR = .failure(error)
                }
            }
        } catch {
            diagnosis.access.append(.init(rule: "nodes get", error: error.description))
        }
        do {
            let list = try APIDecoding.nodeList(try await api.call(.listNodes(resourceVersion: "0")))
            diagnosis.access.append(.init(rule: "nodes list", error: nil))
            let reader = PeerLeaseReader(keys: keys, ownNodeName: name)
            diagnosis.peerPublicIPs = Array(
                Set(
                    list.items.compactMap { node -> String? in
                        if case .lease(let lease) = reader.read(node) { return lease.attributes.publicIP.description }
                        return nil
                    }
                )
            ).sorted()
        } catch {
            diagnosis.access.append(.init(rule: "nodes list", error: error.description))
        }
        do {
            try await api.watch(
                .watchNodes(resourceVersion: "0", timeoutSeconds: 1),
                opened: {},
                handle: { _ in false }
            )
            diagnosis.access.append(.init(rule: "nodes watch", error: nil))
        } catch {
            diagnosis.access.append(.init(rule: "nodes watch", error: error.description))
        }
        do {
            _ = try await api.call(.patchNodeStatus(name), body: "{}")
            diagnosis.access.append(.init(rule: "nodes/status patch", error: nil))
        } catch {
            diagnosis.access.append(.init(rule: "nodes/status patch", error: error.description))
        }
        return diagnosis
    }
}
