import Addressing
import Config
import Engine

/// One flag weftd accepts: how it is written, documented, and stored into DaemonOptions.
struct DaemonFlag: Sendable {
    enum Kind: Sendable { case string, bool, number }
    typealias Apply = @Sendable (inout DaemonOptions, String, String?) throws(DaemonOptionsError) -> Void

    let name: String
    let kind: Kind
    let placeholder: String
    /// A valid value, shown in "needs a value" messages.
    let example: String
    let help: String
    let defaultText: String
    let apply: Apply

    var display: String { name.count == 1 ? "-\(name)" : "--\(name)" }
    /// flagutil.SetFlagsFromEnv's rule: upper case, '-' and '.' become '_'.
    var environmentVariable: String {
        "FLANNELD_" + String(name.uppercased().map { $0 == "-" || $0 == "." ? "_" : $0 })
    }

    init(
        _ name: String,
        _ kind: Kind,
        _ placeholder: String = "",
        example: String = "",
        default defaultText: String = "",
        _ help: String,
        apply: @escaping Apply
    ) {
        self.name = name
        self.kind = kind
        self.placeholder = placeholder
        self.example = example
        self.help = help
        self.defaultText = defaultText
        self.apply = apply
    }

    func refuse(_ variable: String?, _ problem: String) -> DaemonOptionsError {
        DaemonOptionsError(flag: display, environmentVariable: variable, problem: problem)
    }

    static let named: [String: DaemonFlag] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })

    // MARK: - Value parsers, each naming the flag and the fix.

    static func text(
        _ name: String,
        _ keyPath: WritableKeyPath<DaemonOptions, String> & Sendable,
        _ placeholder: String,
        example: String,
        default defaultText: String = "",
        allowEmpty: Bool = true,
        _ help: String
    ) -> DaemonFlag {
        DaemonFlag(name, .string, placeholder, example: example, default: defaultText, help) {
            options,
            value,
            variable throws(DaemonOptionsError) in
            if !allowEmpty && value.isEmpty {
                throw DaemonOptionsError(
                    flag: "--\(name)",
                    environmentVariable: variable,
                    problem: "must not be empty; write e.g. --\(name)=\(example)"
                )
            }
            options[keyPath: keyPath] = value
        }
    }

    static func flag(
        _ name: String,
        _ keyPath: WritableKeyPath<DaemonOptions, Bool> & Sendable,
        default defaultValue: Bool,
        _ help: String
    ) -> DaemonFlag {
        DaemonFlag(name, .bool, example: "true", default: defaultValue ? "true" : "false", help) {
            options,
            value,
            variable throws(DaemonOptionsError) in
            options[keyPath: keyPath] = try DaemonOptions.parseBool(value, flag: "--\(name)", variable: variable)
        }
    }

    static func ipv4(
        _ name: String,
        _ keyPath: WritableKeyPath<DaemonOptions, IPv4Address?> & Sendable,
        _ help: String
    ) -> DaemonFlag {
        DaemonFlag(name, .string, "IP", example: "198.18.0.1", help) {
            options,
            value,
            variable throws(DaemonOptionsError) in
            options[keyPath: keyPath] = try address(value, flag: "--\(name)", variable: variable)
        }
    }

    static func ignoredText(_ name: String, example: String, _ help: String) -> DaemonFlag {
        DaemonFlag(name, .string, "VALUE", example: example, help) { options, value, _ in
            options.ignored.append("--\(name)")
        }
    }

    static func ignoredBool(_ name: String, default defaultValue: Bool, _ help: String) -> DaemonFlag {
        DaemonFlag(name, .bool, example: "true", default: defaultValue ? "true" : "false", help) {
            options,
            value,
            variable throws(DaemonOptionsError) in
            _ = try DaemonOptions.parseBool(value, flag: "--\(name)", variable: variable)
            options.ignored.append("--\(name)")
        }
    }

    static func address(_ text: String, flag: String, variable: String?) throws(DaemonOptionsError) -> IPv4Address {
        guard let address = IPv4Address(text) else {
            let hint = text.contains(":") && flag == "--public-ip" ? " (an IPv6 one goes to --public-ipv6)" : ""
            throw DaemonOptionsError(
                flag: flag,
                environmentVariable: variable,
                problem: "\(DaemonOptionsError.show(text)) is not an IPv4 address\(hint); write e.g. \(flag)=198.18.0.1"
            )
        }
        return address
    }

    static func integer(
        _ text: String,
        in range: ClosedRange<Int>,
        flag: String,
        variable: String?,
        example: String
    ) throws(DaemonOptionsError) -> Int {
        guard let number = Int(text), text.first != "+", range.contains(number) else {
            throw DaemonOptionsError(
                flag: flag,
                environmentVariable: variable,
                problem:
                    "\(DaemonOptionsError.show(text)) is not a whole number in \(range.lowerBound)...\(range.upperBound); write e.g. \(flag)=\(example)"
            )
        }
        return number
    }

    /// "90", "30s", "10m", "1h30m": digits with an h/m/s unit each; a bare number is in `bareUnit` seconds.
    static func duration(_ text: String, bareUnit: Int64) -> Duration? {
        if let number = Int64(text), text.first != "+", text.first != "-" {
            let (seconds, overflow) = number.multipliedReportingOverflow(by: bareUnit)
            return overflow ? nil : .seconds(seconds)
        }
        var total: Int64 = 0
        var digits = ""
        for character in text {
            if character.isASCII, character.isNumber {
                digits.append(character)
                continue
            }
            let unit: Int64
            switch character {
            case "h": unit = 3600
            case "m": unit = 60
            case "s": unit = 1
            default: return nil
            }
            guard let number = Int64(digits), number <= Int64(Int32.max) else { return nil }
            total += number * unit
            digits = ""
        }
        guard digits.isEmpty, !text.isEmpty else { return nil }
        return .seconds(total)
    }

    static func describe(_ duration: Duration) -> String {
        let seconds = duration.components.seconds
        if seconds % 3600 == 0 { return "\(seconds / 3600)h" }
        if seconds % 60 == 0 { return "\(seconds / 60)m" }
        return "\(seconds)s"
    }

    // MARK: - The table, in --help order.

    static let all: [DaemonFlag] = [
        DaemonFlag(
            "etcd-endpoints",
            .string,
            "URL,URL",
            example: "http://127.0.0.1:2379",
            default: "http://127.0.0.1:4001,http://127.0.0.1:2379",
            "comma-separated etcd v3 endpoints"
        ) { options, value, variable throws(DaemonOptionsError) in
            let endpoints = value.split(separator: ",", omittingEmptySubsequences: false)
                .map { String($0.trimmingPrefixAndSuffixSpaces()) }
            for endpoint in endpoints {
                let lower = endpoint.lowercased()
                guard !endpoint.isEmpty, lower.hasPrefix("http://") || lower.hasPrefix("https://"),
                    endpoint.count > (lower.hasPrefix("https://") ? 8 : 7)
                else {
                    throw DaemonOptionsError(
                        flag: "--etcd-endpoints",
                        environmentVariable: variable,
                        problem:
                            "\(DaemonOptionsError.show(endpoint)) is not an http:// or https:// URL; write e.g. --etcd-endpoints=http://127.0.0.1:2379,https://198.18.0.2:2379"
                    )
                }
            }
            options.etcdEndpoints = endpoints
        },
        text(
            "etcd-prefix",
            \.etcdPrefix,
            "PREFIX",
            example: "/coreos.com/network",
            default: "/coreos.com/network",
            allowEmpty: false,
            "etcd key prefix: the config is <prefix>/config, leases are under <prefix>/subnets/"
        ),
        text(
            "etcd-keyfile",
            \.etcdKeyFile,
            "PATH",
            example: "/etc/ssl/etcd/client-key.pem",
            "client TLS key (TLS needs it and --etcd-certfile)"
        ),
        text("etcd-certfile", \.etcdCertFile, "PATH", example: "/etc/ssl/etcd/client.pem", "client TLS certificate"),
        text(
            "etcd-cafile",
            \.etcdCAFile,
            "PATH",
            example: "/etc/ssl/etcd/ca.pem",
            "CA that signs etcd's server certificate"
        ),
        text("etcd-username", \.etcdUsername, "NAME", example: "flannel", "etcd v3 user name"),
        text("etcd-password", \.etcdPassword, "PASSWORD", example: "secret", "etcd v3 password"),

        DaemonFlag(
            "iface",
            .string,
            "NAME|IP",
            example: "eth0",
            "interface for inter-host traffic, by name or IPv4 or IPv6 address; repeatable, the first that exists wins"
        ) { options, value, variable throws(DaemonOptionsError) in
            guard !value.isEmpty else {
                throw DaemonOptionsError(
                    flag: "--iface",
                    environmentVariable: variable,
                    problem: "must not be empty; write an interface name or address, e.g. --iface=eth0"
                )
            }
            options.interfaces.append(value)
        },
        DaemonFlag(
            "iface-regex",
            .string,
            "REGEX",
            example: "^eth[0-9]+$",
            "regular expression matched against interface addresses, then names; repeatable, tried after --iface"
        ) { options, value, variable throws(DaemonOptionsError) in
            guard !value.isEmpty, (try? Regex(value)) != nil else {
                throw DaemonOptionsError(
                    flag: "--iface-regex",
                    environmentVariable: variable,
                    problem:
                        "\(DaemonOptionsError.show(value)) is not a regular expression; write e.g. --iface-regex='^eth[0-9]+$'"
                )
            }
            options.interfaceRegexes.append(value)
        },
        DaemonFlag(
            "iface-can-reach",
            .string,
            "IP",
            example: "198.18.0.1",
            "use the interface and source address the kernel would use to reach this IPv4 or IPv6 address"
        ) { options, value, variable throws(DaemonOptionsError) in
            if let address = IPv6Address(value), HostInterface.isUnicast(address) {
                options.interfaceCanReachIPv6 = address
                options.interfaceCanReach = nil
                return
            }
            guard let address = IPv4Address(value) else {
                throw DaemonOptionsError(
                    flag: "--iface-can-reach",
                    environmentVariable: variable,
                    problem:
                        "\(DaemonOptionsError.show(value)) is not a unicast IPv4 or IPv6 address; write e.g. --iface-can-reach=198.18.0.1"
                )
            }
            options.interfaceCanReach = address
            options.interfaceCanReachIPv6 = nil
        },
        ipv4(
            "public-ip",
            \.publicIP,
            "IPv4 address other hosts reach this one at (default: the interface's address)"
        ),
        DaemonFlag(
            "public-ipv6",
            .string,
            "IP",
            example: "2001:db8::1",
            "IPv6 address other hosts reach this one at when the network has IPv6 (default: the interface's)"
        ) { options, value, variable throws(DaemonOptionsError) in
            guard let address = IPv6Address(value), HostInterface.isUnicast(address) else {
                throw DaemonOptionsError(
                    flag: "--public-ipv6",
                    environmentVariable: variable,
                    problem:
                        "\(DaemonOptionsError.show(value)) is not a unicast IPv6 address; write e.g. --public-ipv6=2001:db8::1"
                )
            }
            options.publicIPv6 = address
        },

        text(
            "subnet-file",
            \.subnetFile,
            "PATH",
            example: "/run/flannel/subnet.env",
            default: SubnetEnv.defaultPath,
            allowEmpty: false,
            "file the lease is written to for the CNI plugin"
        ),
        DaemonFlag(
            "subnet-lease-renew-margin",
            .number,
            "MINUTES",
            example: "60",
            default: "60",
            "renew the lease this long before it expires: minutes, or a duration such as 30s"
        ) { options, value, variable throws(DaemonOptionsError) in
            guard let margin = duration(value, bareUnit: 60), margin > .zero else {
                throw DaemonOptionsError(
                    flag: "--subnet-lease-renew-margin",
                    environmentVariable: variable,
                    problem:
                        "\(DaemonOptionsError.show(value)) is not a number of minutes from 1 to 1439 (or a duration like 30s); write e.g. --subnet-lease-renew-margin=60"
                )
            }
            options.subnetLeaseRenewMargin = margin
        },
        text(
            "node-id",
            \.nodeID,
            "ID",
            example: "4c4c4544004e3010804bc4c04f4d3432",
            "Weft: this node's identity beside its PublicIP, written beside each lease so two nodes with one PublicIP never take each other's (default: /etc/machine-id)"
        ),
        DaemonFlag(
            "subnet-lease-ttl",
            .string,
            "DURATION",
            example: "24h",
            default: "24h",
            "Weft: TTL of the etcd lease, seconds or a duration such as 10m (for tests; flanneld fixes 24h)"
        ) { options, value, variable throws(DaemonOptionsError) in
            guard let ttl = duration(value, bareUnit: 1), ttl >= .seconds(2) else {
                throw DaemonOptionsError(
                    flag: "--subnet-lease-ttl",
                    environmentVariable: variable,
                    problem:
                        "\(DaemonOptionsError.show(value)) is not a duration of at least 2s (etcd refuses shorter leases); write e.g. --subnet-lease-ttl=24h or 30s"
                )
            }
            options.subnetLeaseTTL = ttl
        },

        flag("ip-masq", \.ipMasq, default: false, "masquerade traffic leaving the overlay network"),
        flag(
            "ip-masq-fully-random-disable",
            \.ipMasqFullyRandomDisable,
            default: false,
            "leave --random-fully off the MASQUERADE rules"
        ),
        flag(
            "ip-masq-cleanup",
            \.ipMasqCleanup,
            default: false,
            "Weft: delete the masquerade and forward rules (nftables table ip weft, and ip6 weft on a dual-stack network) on a clean stop; flanneld leaves them"
        ),
        DaemonFlag(
            "iptables-resync",
            .number,
            "SECONDS",
            example: "5",
            default: "5",
            "seconds between checks of the masquerade, forward and port-filter rules (nftables table ip weft, and ip6 weft)"
        ) { options, value, variable throws(DaemonOptionsError) in
            options.iptablesResync = .seconds(
                try integer(value, in: 1...86400, flag: "--iptables-resync", variable: variable, example: "5")
            )
        },
        flag(
            "iptables-forward-rules",
            \.iptablesForwardRules,
            default: true,
            "accept forwarded traffic to and from the network (nftables table ip weft)"
        ),
        flag(
            "port-filter",
            \.portFilter,
            default: true,
            "Weft: drop UDP to the backend's port (udp 8285, vxlan 8472, or Backend.Port) from any source that is not a peer's PublicIP "
                + "(PublicIPv6 over a dual-stack vxlan's IPv6 underlay), counted in /metrics (nftables table ip weft, and ip6 weft); --port-filter=false accepts it from anyone, as flanneld does (needed when a NAT between the nodes rewrites their addresses)"
        ),
        flag(
            "ip-blackhole-route",
            \.ipBlackholeRoute,
            default: false,
            "add a blackhole route for the lease subnet (metric 4294967295, so the bridge's connected route wins), checked every --iptables-resync seconds"
        ),

        DaemonFlag(
            "healthz-ip",
            .string,
            "IP",
            example: "127.0.0.1",
            default: "127.0.0.1",
            "address the health server listens on (flanneld: 0.0.0.0)"
        ) { options, value, variable throws(DaemonOptionsError) in
            options.healthzIP = try address(value, flag: "--healthz-ip", variable: variable)
        },
        DaemonFlag(
            "healthz-port",
            .number,
            "PORT",
            example: "8081",
            default: "0",
            "port of the health server (GET /healthz, /readyz, /metrics, /v1/routes, /v1/stats); 0 turns it off"
        ) { options, value, variable throws(DaemonOptionsError) in
            options.healthzPort = UInt16(
                try integer(value, in: 0...65535, flag: "--healthz-port", variable: variable, example: "8081")
            )
        },
        DaemonFlag(
            "status-socket",
            .string,
            "PATH",
            example: "/run/flannel/weftd.sock",
            default: "weftd.sock beside --subnet-file",
            "Weft: Unix socket (mode 0600) serving /metrics, /v1/routes and /v1/stats for weft routes|stats; empty turns it off"
        ) { options, value, _ throws(DaemonOptionsError) in
            options.statusSocket = value
        },
        DaemonFlag(
            "v",
            .number,
            "LEVEL",
            example: "2",
            default: "0",
            "log verbosity: 0 info, 1-4 debug, 5 and up trace"
        ) { options, value, variable throws(DaemonOptionsError) in
            options.verbosity = try integer(value, in: 0...Int(Int32.max), flag: "-v", variable: variable, example: "2")
        },
        ignoredText("vmodule", example: "main=2", "accepted for compatibility (klog); ignored"),
        ignoredText("log_backtrace_at", example: "main.go:10", "accepted for compatibility (klog); ignored"),

        DaemonFlag(
            "vxlan-dataplane",
            .string,
            "kernel|weft",
            example: "kernel",
            default: "kernel",
            "Weft: what moves the vxlan backend's packets: kernel, the kernel's flannel.<VNI> vxlan device as flanneld programs it; "
                + "weft, Weft's user-space engine behind a TUN of that name (drops spoofed packets, counts per peer)"
        ) { options, value, variable throws(DaemonOptionsError) in
            guard let dataplane = DaemonOptions.VXLANDataplane(rawValue: value) else {
                throw DaemonOptionsError(
                    flag: "--vxlan-dataplane",
                    environmentVariable: variable,
                    problem:
                        "\(DaemonOptionsError.show(value)) is not a vxlan dataplane; write --vxlan-dataplane=kernel or --vxlan-dataplane=weft"
                )
            }
            options.vxlanDataplane = dataplane
        },
        DaemonFlag(
            "engine",
            .string,
            "uring|mmsg|auto",
            example: "auto",
            default: "auto",
            "Weft: packet engine; auto uses io_uring when the kernel allows it, else sendmmsg/recvmmsg"
        ) { options, value, variable throws(DaemonOptionsError) in
            guard let engine = DaemonOptions.Engine(rawValue: value) else {
                throw DaemonOptionsError(
                    flag: "--engine",
                    environmentVariable: variable,
                    problem:
                        "\(DaemonOptionsError.show(value)) is not an engine; write --engine=uring, --engine=mmsg or --engine=auto"
                )
            }
            options.engine = engine
        },
        DaemonFlag(
            "workers",
            .number,
            "N",
            example: "2",
            default: "0",
            "Weft: engine worker threads; 0 means one per core"
        ) { options, value, variable throws(DaemonOptionsError) in
            options.workers = try integer(value, in: 0...1024, flag: "--workers", variable: variable, example: "2")
        },
        DaemonFlag(
            "busy-poll",
            .number,
            "MICROSECONDS",
            example: "200",
            default: "0",
            "Weft: after traffic each worker keeps polling this long (yielding the CPU to other work) before it sleeps, "
                + "so replies skip a wake-up; costs CPU; 0 turns it off"
        ) { options, value, variable throws(DaemonOptionsError) in
            let limit = Int(EngineConfiguration.maximumBusyPoll / .microseconds(1))
            options.busyPoll = .microseconds(
                try integer(value, in: 0...limit, flag: "--busy-poll", variable: variable, example: "200")
            )
        },
        flag(
            "offloads",
            \.offloads,
            default: true,
            "Weft: TUN offloads + UDP GSO/GRO for the udp and vxlan backends on io_uring; --offloads=false sends packet by packet"
        ),
        DaemonFlag(
            "docker-opts-file",
            .string,
            "PATH",
            example: DockerOptions.defaultPath,
            "Weft: also write Docker options there, as mk-docker-opts.sh -d PATH would (default: not written)"
        ) { options, value, variable throws(DaemonOptionsError) in
            guard !value.isEmpty else {
                throw DaemonOptionsError(
                    flag: "--docker-opts-file",
                    environmentVariable: variable,
                    problem: "must not be empty; write e.g. --docker-opts-file=\(DockerOptions.defaultPath)"
                )
            }
            options.dockerOptionsFile = value
        },
        DaemonFlag(
            "docker-opts-key",
            .string,
            "NAME",
            example: "DOCKER_OPTS",
            default: DockerOptions.defaultCombinedKey,
            "Weft: name of the combined variable, as mk-docker-opts.sh -k NAME"
        ) { options, value, variable throws(DaemonOptionsError) in
            guard let first = value.unicodeScalars.first, !("0"..."9").contains(first),
                value.unicodeScalars.allSatisfy({
                    $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_")
                })
            else {
                throw DaemonOptionsError(
                    flag: "--docker-opts-key",
                    environmentVariable: variable,
                    problem:
                        "\(DaemonOptionsError.show(value)) is not a shell variable name; use letters, digits and '_', e.g. --docker-opts-key=DOCKER_OPTS"
                )
            }
            options.dockerOptions.combinedKey = value
        },
        flag(
            "docker-opts-individual",
            \.dockerIndividual,
            default: false,
            "Weft: write the DOCKER_OPT_* variables (mk-docker-opts.sh -i); with neither this nor --docker-opts-combined, both forms are written"
        ),
        flag(
            "docker-opts-combined",
            \.dockerCombined,
            default: false,
            "Weft: write the combined variable (mk-docker-opts.sh -c)"
        ),
        DaemonFlag(
            "docker-opts-no-ip-masq",
            .bool,
            example: "true",
            default: "false",
            "Weft: leave --ip-masq out of the Docker options (mk-docker-opts.sh -m)"
        ) { options, value, variable throws(DaemonOptionsError) in
            options.dockerOptions.includeIPMasq =
                !(try DaemonOptions.parseBool(value, flag: "--docker-opts-no-ip-masq", variable: variable))
        },

        flag(
            "kube-subnet-mgr",
            \.kubeSubnetManager,
            default: false,
            "take the subnet from this node's podCIDR and publish the lease as Node annotations, through the Kubernetes API, instead of etcd"
        ),
        text(
            "kube-api-url",
            \.kubeAPIURL,
            "URL",
            example: "https://198.18.0.1:6443",
            "Kubernetes API server URL; replaces the kubeconfig's server (neither this nor --kubeconfig-file: in-cluster config)"
        ),
        text(
            "kubeconfig-file",
            \.kubeconfigFile,
            "PATH",
            example: "/etc/kubernetes/kubeconfig",
            "kubeconfig file (clusters, users, contexts, current-context)"
        ),
        text(
            "kube-annotation-prefix",
            \.kubeAnnotationPrefix,
            "PREFIX",
            example: "flannel.alpha.coreos.com",
            default: "flannel.alpha.coreos.com",
            allowEmpty: false,
            "prefix of the Node annotations the lease is published in"
        ),
        text(
            "net-config-path",
            \.netConfigPath,
            "PATH",
            example: "/etc/kube-flannel/net-conf.json",
            default: "/etc/kube-flannel/net-conf.json",
            allowEmpty: false,
            "network config file in Kubernetes mode (the kube-flannel-cfg ConfigMap's net-conf.json)"
        ),
        flag(
            "set-node-network-unavailable",
            \.setNodeNetworkUnavailable,
            default: true,
            "Kubernetes mode: set this Node's NetworkUnavailable condition to False once the lease is taken"
        ),
    ]
}

extension Substring {
    func trimmingPrefixAndSuffixSpaces() -> Substring {
        var text = self
        while text.first == " " { text.removeFirst() }
        while text.last == " " { text.removeLast() }
        return text
    }
}
