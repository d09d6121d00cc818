import CNI
import Config
import Daemon
import Foundation
import Testing

/// dist/kubernetes/weft.yml against what kube-flannel.yml (flannel v0.28) deploys and what weftd
/// and weft-cni read. Each expectation names the object and field, so a failure says what to fix.
@Suite struct KubernetesManifest {
    let manifest: Manifest
    let daemonSet: [String: Any]
    let pod: [String: Any]

    init() throws {
        manifest = try Manifest.load()
        daemonSet = try #require(
            manifest.object("DaemonSet", "kube-flannel-ds"),
            "no DaemonSet kube-flannel-ds in \(Manifest.path)"
        )
        pod = try #require(
            daemonSet.at("spec", "template", "spec") as? [String: Any],
            "DaemonSet kube-flannel-ds has no spec.template.spec"
        )
    }

    var volumes: [[String: Any]] { pod.list("volumes") }

    func container(_ name: String, init isInit: Bool = false) throws -> [String: Any] {
        try #require(
            pod.list(isInit ? "initContainers" : "containers").named(name),
            "the DaemonSet has no \(isInit ? "init container" : "container") \(name)"
        )
    }

    /// Where the container's mount at `mountPath` comes from: the volume's source key ("hostPath",
    /// "configMap") and its definition.
    func volume(mountedAt mountPath: String, in container: [String: Any]) -> (name: String, source: [String: Any])? {
        guard let mount = container.list("volumeMounts").first(where: { $0["mountPath"] as? String == mountPath }),
            let name = mount["name"] as? String, let volume = volumes.named(name)
        else { return nil }
        return (name, volume)
    }

    func configMapData(_ key: String) throws -> String {
        try #require(
            manifest.object("ConfigMap", "kube-flannel-cfg")?.at("data", key) as? String,
            "ConfigMap kube-flannel-cfg has no data \(key)"
        )
    }

    // flannel's names, so applying weft.yml over kube-flannel.yml replaces flanneld in place.
    @Test func objectsKeepFlannelsNames() throws {
        let namespace = try #require(manifest.object("Namespace", "kube-flannel"), "no Namespace kube-flannel")
        #expect(
            namespace.at("metadata", "labels", "pod-security.kubernetes.io/enforce") as? String == "privileged",
            "Namespace kube-flannel: hostNetwork and NET_ADMIN need pod-security level privileged"
        )
        for (kind, name) in [
            ("ServiceAccount", "flannel"), ("ConfigMap", "kube-flannel-cfg"), ("DaemonSet", "kube-flannel-ds"),
        ] {
            #expect(
                manifest.object(kind, name)?.at("metadata", "namespace") as? String == "kube-flannel",
                "\(kind) \(name) is not in namespace kube-flannel"
            )
        }
        #expect(manifest.object("ClusterRole", "flannel") != nil, "no ClusterRole flannel")
        #expect(
            manifest.objects.count == 6,
            "expected Namespace, ClusterRole, ClusterRoleBinding, ServiceAccount, ConfigMap, DaemonSet; found \(manifest.objects.count) objects"
        )
        #expect(daemonSet["apiVersion"] as? String == "apps/v1")
        // A DaemonSet's selector cannot change: flannel's, or `kubectl apply` over kube-flannel.yml fails.
        #expect(
            daemonSet.at("spec", "selector", "matchLabels") as? [String: String] == ["app": "flannel"],
            "DaemonSet selector is not flannel's app: flannel"
        )
        #expect(
            (daemonSet.at("spec", "template", "metadata", "labels") as? [String: String])?["app"] == "flannel",
            "the pod template lacks the selector's label app: flannel"
        )
    }

    @Test func rbacIsExactlyFlannels() throws {
        let role = try #require(manifest.object("ClusterRole", "flannel"))
        var granted: Set<String> = []
        for rule in role.list("rules") {
            for group in rule["apiGroups"] as? [String] ?? [] {
                for resource in rule["resources"] as? [String] ?? [] {
                    for verb in rule["verbs"] as? [String] ?? [] { granted.insert("\(group)/\(resource) \(verb)") }
                }
            }
        }
        #expect(
            granted == ["/pods get", "/nodes get", "/nodes list", "/nodes watch", "/nodes/status patch"],
            "ClusterRole flannel grants \(granted.sorted())"
        )

        let binding = try #require(manifest.object("ClusterRoleBinding", "flannel"), "no ClusterRoleBinding flannel")
        #expect(
            binding.at("roleRef", "kind") as? String == "ClusterRole"
                && binding.at("roleRef", "name") as? String == "flannel"
        )
        let subjects = binding.list("subjects")
        #expect(
            subjects.count == 1 && subjects[0]["kind"] as? String == "ServiceAccount"
                && subjects[0]["name"] as? String == "flannel"
                && subjects[0]["namespace"] as? String == "kube-flannel",
            "ClusterRoleBinding flannel must bind ServiceAccount kube-flannel/flannel: \(subjects)"
        )
        #expect(pod["serviceAccountName"] as? String == "flannel", "the pod does not run as ServiceAccount flannel")
    }

    @Test func podRunsOnEveryLinuxNodeInTheHostNetwork() throws {
        #expect(pod["hostNetwork"] as? Bool == true)
        #expect(pod["priorityClassName"] as? String == "system-node-critical")
        let tolerations = pod.list("tolerations")
        #expect(
            tolerations.contains { $0["operator"] as? String == "Exists" && $0["effect"] as? String == "NoSchedule" },
            "no toleration for every NoSchedule taint"
        )
        let terms =
            (pod.at("affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution") as? [String: Any])?
            .list("nodeSelectorTerms") ?? []
        let expressions = terms.flatMap { $0.list("matchExpressions") }
        #expect(
            expressions.contains {
                $0["key"] as? String == "kubernetes.io/os" && $0["operator"] as? String == "In"
                    && $0["values"] as? [String] == ["linux"]
            },
            "no node affinity kubernetes.io/os In [linux]"
        )
    }

    @Test func imageIsWeftsAtWeftdsVersion() throws {
        let containers = pod.list("initContainers") + pod.list("containers")
        #expect(containers.count == 3)
        for container in containers {
            #expect(
                container["image"] as? String == "weft:\(WeftDaemon.version)",
                "container \(container["name"] ?? "?") runs \(container["image"] ?? "no image"); scripts/image tags weft:\(WeftDaemon.version)"
            )
        }
    }

    /// The args through weftd's own flag parser, the probes against the health server those flags
    /// start: the port, and the address weftd binds by default.
    @Test func weftdsFlagsAndProbes() throws {
        let main = try container("kube-flannel")
        #expect(main["command"] as? [String] == ["/opt/bin/weftd"])
        let args = try #require(main["args"] as? [String])
        #expect(args == ["--ip-masq", "--kube-subnet-mgr", "--healthz-port=8081"], "kube-flannel's args: \(args)")

        guard case .run(let options) = try DaemonOptions.parse(arguments: args, environment: [:]) else {
            Issue.record("weftd's args asked for help or the version")
            return
        }
        #expect(options.kubeSubnetManager && options.ipMasq)
        #expect(options.healthzPort == 8081)

        let ports = main.list("ports")
        let healthz = try #require(ports.named("healthz"), "kube-flannel has no port named healthz")
        #expect(
            healthz["containerPort"] as? Int == Int(options.healthzPort),
            "port healthz is \(healthz["containerPort"] ?? "?"), weftd listens on \(options.healthzPort)"
        )
        for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
            let get = try #require(main.at(probe, "httpGet") as? [String: Any], "kube-flannel has no \(probe).httpGet")
            #expect(get["path"] as? String == path, "\(probe) GETs \(get["path"] ?? "?"), not \(path)")
            #expect(
                get["port"] as? String == "healthz" || get["port"] as? Int == Int(options.healthzPort),
                "\(probe) port \(get["port"] ?? "?")"
            )
            // With hostNetwork the kubelet probes the node's address unless host says otherwise.
            #expect(
                get["host"] as? String == options.healthzIP.description,
                "\(probe) probes \(get["host"] ?? "the node's address"), weftd's health server binds \(options.healthzIP)"
            )
        }
    }

    @Test func unprivilegedWithNetAdminAndNetRaw() throws {
        let main = try container("kube-flannel")
        #expect(main.at("securityContext", "privileged") as? Bool == false)
        #expect(Set(main.at("securityContext", "capabilities", "add") as? [String] ?? []) == ["NET_ADMIN", "NET_RAW"])
        #expect(main.at("resources", "requests", "cpu") as? String == "100m")
        #expect(main.at("resources", "requests", "memory") as? String == "50Mi")
        let env = main.list("env")
        #expect(
            env.named("POD_NAME")?.at("valueFrom", "fieldRef", "fieldPath") as? String == "metadata.name",
            "POD_NAME is not the downward API's metadata.name"
        )
        #expect(
            env.named("POD_NAMESPACE")?.at("valueFrom", "fieldRef", "fieldPath") as? String == "metadata.namespace",
            "POD_NAMESPACE is not the downward API's metadata.namespace"
        )
    }

    @Test func weftdsFilesAreOnTheNode() throws {
        let main = try container("kube-flannel")
        func hostPath(_ mountPath: String) -> [String: Any]? {
            volume(mountedAt: mountPath, in: main)?.source["hostPath"] as? [String: Any]
        }
        // subnet.env, read by the node's CNI plugin: weftd's default path on a hostPath.
        #expect(SubnetEnv.defaultPath.hasPrefix("/run/flannel/"))
        #expect(
            hostPath("/run/flannel")?["path"] as? String == "/run/flannel",
            "/run/flannel is not the node's /run/flannel"
        )
        #expect(
            hostPath("/run/xtables.lock")?["type"] as? String == "FileOrCreate",
            "/run/xtables.lock is not flannel's FileOrCreate hostPath"
        )
        #expect(
            hostPath("/dev/net/tun")?["type"] as? String == "CharDevice",
            "/dev/net/tun (weftd's TUN) is not mounted as a CharDevice"
        )
        // net-conf.json where weftd's --net-config-path default looks, from the ConfigMap.
        let netConfigPath = DaemonOptions().netConfigPath
        let config = try #require(
            volume(mountedAt: "/etc/kube-flannel/", in: main),
            "nothing mounted at /etc/kube-flannel/"
        )
        #expect(config.source.at("configMap", "name") as? String == "kube-flannel-cfg")
        #expect(
            netConfigPath.hasPrefix("/etc/kube-flannel/")
                && (try? configMapData(String(netConfigPath.dropFirst("/etc/kube-flannel/".count)))) != nil,
            "weftd reads \(netConfigPath), which the ConfigMap mount at /etc/kube-flannel/ does not provide"
        )
        for mount in main.list("volumeMounts") {
            #expect(
                volumes.named(mount["name"] as? String ?? "") != nil,
                "kube-flannel mounts \(mount["name"] ?? "?"), which is no volume"
            )
        }
    }

    @Test func initContainersInstallThePluginAsFlannelAndTheConflist() throws {
        let plugin = try container("install-cni-plugin", init: true)
        #expect(plugin["command"] as? [String] == ["/opt/bin/weft"])
        #expect(plugin["args"] as? [String] == ["install-cni", "/opt/bin/weft-cni", "/opt/cni/bin/flannel"])
        #expect(
            (volume(mountedAt: "/opt/cni/bin", in: plugin)?.source["hostPath"] as? [String: Any])?["path"] as? String
                == "/opt/cni/bin",
            "install-cni-plugin's /opt/cni/bin is not the node's"
        )

        let conf = try container("install-cni", init: true)
        #expect(conf["command"] as? [String] == ["/opt/bin/weft"])
        #expect(
            conf["args"] as? [String] == [
                "install-conf", "/etc/kube-flannel/cni-conf.json", "/etc/cni/net.d/10-flannel.conflist",
            ]
        )
        #expect(
            (volume(mountedAt: "/etc/cni/net.d", in: conf)?.source["hostPath"] as? [String: Any])?["path"] as? String
                == "/etc/cni/net.d",
            "install-cni's /etc/cni/net.d is not the node's"
        )
        #expect(
            volume(mountedAt: "/etc/kube-flannel/", in: conf)?.source.at("configMap", "name") as? String
                == "kube-flannel-cfg",
            "install-cni reads cni-conf.json from no ConfigMap kube-flannel-cfg"
        )
    }

    /// The conflist's first plugin is what the runtime runs from /opt/cni/bin by its type, so the
    /// type must be the name install-cni-plugin gives weft-cni; weft-cni's own parser must take it.
    @Test func cniConfNamesTypeFlannelAndWeftCNIReadsIt() throws {
        let text = try configMapData("cni-conf.json")
        let conflist = try #require(
            try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
            "cni-conf.json is not a JSON object"
        )
        #expect(conflist["name"] as? String == "cbr0")
        #expect(conflist["cniVersion"] as? String == "0.3.1")
        let plugins = conflist["plugins"] as? [[String: Any]] ?? []
        #expect(plugins.map { $0["type"] as? String ?? "" } == ["flannel", "portmap"])
        let first = try #require(plugins.first)
        #expect(
            first.at("delegate", "hairpinMode") as? Bool == true
                && first.at("delegate", "isDefaultGateway") as? Bool == true
        )

        var asLibcniSendsIt = first
        asLibcniSendsIt["name"] = conflist["name"]
        asLibcniSendsIt["cniVersion"] = conflist["cniVersion"]
        let config = try PluginConfig.parse(Array(try JSONSerialization.data(withJSONObject: asLibcniSendsIt)))
        #expect(config.subnetFile == SubnetEnv.defaultPath)
        #expect(
            config.savedConfigDirectories.contains(PluginConfig.flannelDataDir),
            "weft-cni must look in /var/lib/cni/flannel on DEL, for the containers flannel's plugin added"
        )
    }

    @Test func netConfIsFlannelsDefaultAndWeftdReadsIt() throws {
        let config = try NetworkConfig.parse(try configMapData("net-conf.json"))
        #expect(config.network?.description == "10.244.0.0/16")
        #expect(config.backend.kind == .vxlan)
    }
}
