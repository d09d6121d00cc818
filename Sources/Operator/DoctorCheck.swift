import Addressing
import Config

/// One line of `weft doctor`: what was checked, the verdict, and for a warning or failure what to do.
public struct DoctorCheck: Equatable, Sendable, Encodable {
    public enum Status: String, Equatable, Sendable, Encodable {
        case ok
        case warn
        case fail = "FAIL"
    }

    public var name: String
    public var status: Status
    public var detail: String
    public var fix: String?

    public init(_ name: String, _ status: Status, _ detail: String, fix: String? = nil) {
        self.name = name
        self.status = status
        self.detail = detail
        self.fix = fix
    }

    /// The detail, followed by the fix when there is one.
    public var message: String { fix.map { "\(detail); fix: \($0)" } ?? detail }

    /// The checks flannel's troubleshooting guide walks through, in the order a broken node is
    /// usually diagnosed: etcd, the config, this host's lease, the interface, MTU, forwarding, rules, device.
    public static func evaluate(_ facts: DoctorFacts) -> [DoctorCheck] {
        var checks: [DoctorCheck]
        if let kube = facts.kube {
            checks = kubernetes(kube)
            checks.append(config(facts))
            checks += subnetFile(facts)
            checks += kubernetesLease(kube, facts)
        } else {
            checks = etcd(facts)
            checks.append(config(facts))
            checks += subnetFile(facts)
            checks.append(lease(facts))
        }
        checks.append(interface(facts))
        checks.append(mtu(facts))
        checks += paths(facts)
        checks.append(ipForward(facts))
        if let ipv6 = ipv6Forward(facts) { checks.append(ipv6) }
        checks.append(rules(facts))
        if let ipv6 = ipv6Rules(facts) { checks.append(ipv6) }
        checks.append(flanneldRules(facts))
        checks.append(device(facts))
        if let dataplane = dataplane(facts) { checks.append(dataplane) }
        if let portFilter = portFilter(facts.portFilter) { checks.append(portFilter) }
        if let portFilter = portFilter(facts.ipv6PortFilter, ipv6: true) { checks.append(portFilter) }
        return checks
    }

    public static func passed(_ checks: [DoctorCheck]) -> Bool { !checks.contains { $0.status == .fail } }

    static func etcd(_ facts: DoctorFacts) -> [DoctorCheck] {
        let anyReachable = facts.endpoints.contains { $0.error == nil }
        return facts.endpoints.map { probe in
            guard let error = probe.error else { return DoctorCheck("etcd \(probe.endpoint)", .ok, "reachable") }
            // flanneld fails over between endpoints: one dead endpoint of several only degrades.
            return DoctorCheck(
                "etcd \(probe.endpoint)",
                anyReachable ? .warn : .fail,
                "unreachable: \(error)",
                fix:
                    "start etcd there, or correct --etcd-endpoints (FLANNELD_ETCD_ENDPOINTS) and the --etcd-* TLS flags"
            )
        }
    }

    /// Kubernetes mode: the API server, then each RBAC rule weftd uses.
    static func kubernetes(_ kube: KubeFacts) -> [DoctorCheck] {
        if let problem = kube.clientProblem {
            return [DoctorCheck("kubernetes API", .fail, problem)]
        }
        var checks: [DoctorCheck] = []
        switch kube.node {
        case .success(let name):
            checks.append(DoctorCheck("kubernetes node", .ok, "\(name) at \(kube.server)"))
        case .failure(let problem):
            checks.append(DoctorCheck("kubernetes node", .fail, problem.description))
        }
        for access in kube.access {
            if let error = access.error {
                checks.append(DoctorCheck("RBAC \(access.rule)", .fail, error))
            } else {
                checks.append(DoctorCheck("RBAC \(access.rule)", .ok, "allowed"))
            }
        }
        return checks
    }

    /// Kubernetes mode: our podCIDR and the annotations weftd publishes on our node.
    static func kubernetesLease(_ kube: KubeFacts, _ facts: DoctorFacts) -> [DoctorCheck] {
        var checks: [DoctorCheck] = []
        switch kube.podCIDR {
        case nil:
            checks.append(DoctorCheck("node podCIDR", .warn, "not checked (no node or no valid network config)"))
        case .success(let subnet)?:
            if let env = subnetEnv(facts), let written = env.subnet, written.description != subnet {
                checks.append(
                    DoctorCheck(
                        "node podCIDR",
                        .fail,
                        "\(subnet), but subnet.env says \(written)",
                        fix:
                            "restart weftd so it writes the node's podCIDR; containers addressed from \(written) must be restarted"
                    )
                )
            } else {
                checks.append(DoctorCheck("node podCIDR", .ok, "\(subnet), inside the Network"))
            }
        case .failure(let problem)?:
            checks.append(DoctorCheck("node podCIDR", .fail, problem.description))
        }
        guard let annotations = kube.annotations else { return checks }
        guard annotations["kube-subnet-manager"] == "true", let publicIP = annotations["public-ip"] else {
            checks.append(
                DoctorCheck(
                    "node annotations",
                    .warn,
                    "no kube-subnet-manager/public-ip annotations yet",
                    fix:
                        "weftd writes them when it takes the lease; is weftd running with --kube-subnet-mgr on this node?"
                )
            )
            return checks
        }
        let backend = annotations["backend-type"].map { $0.isEmpty ? "udp" : $0 } ?? "udp"
        var detail = "public-ip \(publicIP), backend \(backend)"
        if let overwrite = annotations["public-ip-overwrite"] { detail += ", public-ip-overwrite \(overwrite)" }
        if case .success(let choice) = facts.interface, annotations["public-ip-overwrite"] == nil,
            choice.publicIP != publicIP
        {
            checks.append(
                DoctorCheck(
                    "node annotations",
                    .warn,
                    detail + "; this host's public IP is \(choice.publicIP)",
                    fix:
                        "weftd publishes the chosen interface's address at start: restart weftd, or check --iface/--public-ip"
                )
            )
        } else {
            checks.append(DoctorCheck("node annotations", .ok, detail))
        }
        return checks
    }

    public static func networkConfig(_ facts: DoctorFacts) -> NetworkConfig? {
        if case .valid(_, let config) = facts.config { return config }
        return nil
    }

    public static func subnetEnv(_ facts: DoctorFacts) -> SubnetEnv? {
        if case .parsed(_, let env) = facts.subnetFile { return env }
        return nil
    }

    static func config(_ facts: DoctorFacts) -> DoctorCheck {
        switch facts.config {
        case .unknown:
            return DoctorCheck(
                "config",
                .fail,
                "not read: no etcd endpoint answered",
                fix: "make etcd reachable first (see above)"
            )
        case .missing(let key, let message):
            return DoctorCheck("config \(key)", .fail, "missing", fix: message)
        case .invalid(let key, let problem):
            return DoctorCheck("config \(key)", .fail, "invalid: \(problem)", fix: "correct it with weft config set")
        case .valid(let key, let config):
            let ipv4 = config.ipv4.map { "Network \($0.network), SubnetLen \($0.subnetLength)" }
            let ipv6 = config.ipv6.map { "IPv6Network \($0.network), IPv6SubnetLen \($0.subnetLength)" }
            // The IPv4 half, or the IPv6 one of an IPv6-only network.
            var detail = "\(ipv4 ?? ipv6 ?? ""), backend \(config.backend.kind.rawValue)"
            if config.backend.kind == .vxlan {
                detail += " (VNI \(config.backend.vni), port \(config.backend.effectivePort))"
            }
            return DoctorCheck("config \(key)", .ok, detail)
        }
    }

    static func subnetFile(_ facts: DoctorFacts) -> [DoctorCheck] {
        switch facts.subnetFile {
        case .missing(let path):
            return [
                DoctorCheck(
                    "subnet.env \(path)",
                    .fail,
                    "not found",
                    fix:
                        "weftd writes it once it holds a lease: start weftd, or point --subnet-file at the file it writes"
                )
            ]
        case .unreadable(let path, let problem):
            return [
                DoctorCheck("subnet.env \(path)", .fail, problem, fix: "delete it and restart weftd to write it afresh")
            ]
        case .parsed(let path, let env):
            let config = networkConfig(facts)
            let summary =
                "FLANNEL_MTU \(env.mtu.map(String.init) ?? "missing"), FLANNEL_IPMASQ \(env.ipMasq.map { $0 ? "true" : "false" } ?? "missing")"
            // An IPv6-only network's file has only the IPv6 lines, as flanneld writes it.
            if let config, config.isIPv6Only, let ipv6 = config.ipv6 {
                let check = DoctorCheck(
                    "subnet.env \(path)",
                    .ok,
                    "FLANNEL_IPV6_SUBNET \(env.ipv6Subnet.map(String.init(describing:)) ?? "missing"), \(summary)"
                )
                return [ipv6SubnetFile(path, env, network: ipv6.network) ?? check]
            }
            guard let subnet = env.subnet else {
                return [
                    DoctorCheck(
                        "subnet.env \(path)",
                        .fail,
                        "has no FLANNEL_SUBNET",
                        fix: "restart weftd to write it afresh"
                    )
                ]
            }
            var check = DoctorCheck(
                "subnet.env \(path)",
                .ok,
                "FLANNEL_SUBNET \(subnet)\(env.ipv6Subnet.map { ", FLANNEL_IPV6_SUBNET \($0)" } ?? ""), \(summary)"
            )
            if let network = config?.network, let written = env.network, written != network {
                check = DoctorCheck(
                    "subnet.env \(path)",
                    .fail,
                    "FLANNEL_NETWORK \(written) differs from the config's Network \(network)",
                    fix: "restart weftd so it takes a lease in the new Network, then restart the containers"
                )
            } else if let network = config?.network, !network.contains(subnet) {
                check = DoctorCheck(
                    "subnet.env \(path)",
                    .fail,
                    "FLANNEL_SUBNET \(subnet) is outside the config's Network \(network)",
                    fix: "restart weftd so it takes a lease in the Network, then restart the containers"
                )
            } else if let ipv6 = config?.ipv6 {
                check = ipv6SubnetFile(path, env, network: ipv6.network) ?? check
            }
            return [check]
        }
    }

    /// A dual-stack config's subnet.env: the IPv6 lines present and in the IPv6Network; nil when so.
    static func ipv6SubnetFile(_ path: String, _ env: SubnetEnv, network: IPv6Prefix) -> DoctorCheck? {
        let restart = "restart weftd so it writes its IPv6 lease, then restart the containers"
        guard let subnet = env.ipv6Subnet else {
            return DoctorCheck(
                "subnet.env \(path)",
                .fail,
                "has no FLANNEL_IPV6_SUBNET though the config has EnableIPv6",
                fix: restart
            )
        }
        if let written = env.ipv6Network, written != network {
            return DoctorCheck(
                "subnet.env \(path)",
                .fail,
                "FLANNEL_IPV6_NETWORK \(written) differs from the config's IPv6Network \(network)",
                fix: restart
            )
        }
        guard network.contains(subnet) else {
            return DoctorCheck(
                "subnet.env \(path)",
                .fail,
                "FLANNEL_IPV6_SUBNET \(subnet) is outside the config's IPv6Network \(network)",
                fix: restart
            )
        }
        return nil
    }

    static func lease(_ facts: DoctorFacts) -> DoctorCheck {
        let interfaceIP = (try? facts.interface.get())?.publicIP
        switch facts.ownLease {
        case .unknown:
            let why = subnetEnv(facts)?.subnet == nil ? "subnet.env names no subnet" : "etcd did not answer"
            return DoctorCheck("lease", .fail, "not checked: \(why)", fix: "fix the checks above first")
        case .missing(let key):
            return DoctorCheck(
                "lease \(key)",
                .fail,
                "not in etcd: this host's subnet (from subnet.env) has no lease",
                fix: "weftd takes it again within a second if running; start or restart weftd"
            )
        case .malformed(let key, let problem):
            return DoctorCheck(
                "lease \(key)",
                .fail,
                "malformed: \(problem)",
                fix: "delete the key (etcdctl del \(key)) and restart weftd"
            )
        case .found(let key, let attributes, let expires):
            let expiry = expires.map { "expires in \(LeaseRow.describe(seconds: $0))" } ?? "no etcd lease (reservation)"
            if let interfaceIP, attributes.publicIP.description != interfaceIP {
                return DoctorCheck(
                    "lease \(key)",
                    .fail,
                    "PublicIP \(attributes.publicIP) is not this host's \(interfaceIP)",
                    fix:
                        "another host holds this subnet, or weftd runs with another --iface/--public-ip; restart weftd with the right --iface"
                )
            }
            if let config = networkConfig(facts) {
                let published = attributes.backendType.isEmpty ? "udp" : attributes.backendType
                if published != config.backend.kind.rawValue {
                    return DoctorCheck(
                        "lease \(key)",
                        .warn,
                        "published backend \(published), the config says \(config.backend.kind.rawValue)",
                        fix: "restart weftd so it serves the configured backend"
                    )
                }
            }
            return DoctorCheck("lease \(key)", .ok, "PublicIP \(attributes.publicIP), \(expiry)")
        }
    }

    static func interface(_ facts: DoctorFacts) -> DoctorCheck {
        switch facts.interface {
        case .failure(let problem):
            return DoctorCheck(
                "interface",
                .fail,
                problem.description,
                fix: "give weftd --iface=<name or address> of the inter-host interface"
            )
        case .success(let choice):
            let detail =
                "\(choice.name) (\(choice.address), MTU \(choice.mtu)): \(choice.reason)"
                + (choice.publicIP != choice.address ? "; public IP \(choice.publicIP)" : "")
            if !choice.requested && !choice.others.isEmpty {
                return DoctorCheck(
                    "interface",
                    .warn,
                    detail + "; also on this host: \(choice.others.joined(separator: ", "))",
                    fix:
                        "several interfaces could carry the overlay: pin one with --iface=\(choice.name) (FLANNELD_IFACE)"
                )
            }
            return DoctorCheck("interface", .ok, detail)
        }
    }

    static func mtu(_ facts: DoctorFacts) -> DoctorCheck {
        guard let config = networkConfig(facts), case .success(let choice) = facts.interface else {
            return DoctorCheck(
                "MTU",
                .warn,
                "not checked: needs the config and the interface",
                fix: "fix the checks above first"
            )
        }
        let backend = config.backend
        let expected = backend.overlayMTU(underlayMTU: choice.mtu)
        let source =
            backend.kind == .vxlan && backend.underlayMTU != nil
            ? "Backend.MTU \(backend.underlayMTU!)" : "\(choice.name) MTU \(choice.mtu)"
        let rule = "\(source) − \(backend.overhead) (\(backend.kind.rawValue))"
        var mismatches: [String] = []
        var seen: [String] = []
        if let mtu = subnetEnv(facts)?.mtu {
            seen.append("FLANNEL_MTU \(mtu)")
            if mtu != expected { mismatches.append("FLANNEL_MTU \(mtu)") }
        }
        if backend.kind != .hostGateway, let device = facts.device {
            seen.append("\(device.name) MTU \(device.mtu)")
            if device.mtu != expected { mismatches.append("\(device.name) MTU \(device.mtu)") }
        }
        if !mismatches.isEmpty {
            return DoctorCheck(
                "MTU",
                .fail,
                "\(mismatches.joined(separator: " and ")) but \(rule) is \(expected)",
                fix:
                    "restart weftd after changing the interface MTU or Backend.MTU, then restart containers created with the old MTU"
            )
        }
        if seen.isEmpty {
            return DoctorCheck(
                "MTU",
                .warn,
                "nothing to compare: no FLANNEL_MTU and no overlay device; expected \(expected) (\(rule))",
                fix: "start weftd"
            )
        }
        return DoctorCheck("MTU", .ok, "\(seen.joined(separator: ", ")) = \(rule)")
    }

    /// One line per probed peer: the path carries what the overlay sends, or it does not and
    /// the MTU that would fit is named.
    static func paths(_ facts: DoctorFacts) -> [DoctorCheck] {
        guard let probes = facts.paths else { return [] }
        guard !probes.isEmpty else { return [DoctorCheck("path MTU", .ok, "no peers to probe")] }
        let overhead = networkConfig(facts)?.backend.overhead ?? 0
        return probes.map { probe in
            let name = "path MTU to \(probe.peer)"
            guard let largest = probe.largest else {
                return DoctorCheck(
                    name,
                    .warn,
                    "no answer to ICMP echo, not even \(PathProbe.smallest) bytes: not probed",
                    fix: "allow ICMP echo between the hosts to check the path"
                )
            }
            if largest >= probe.needed {
                return DoctorCheck(name, .ok, "\(probe.needed)-byte packets with DF get through")
            }
            return DoctorCheck(
                name,
                .fail,
                "packets above \(largest) bytes with DF vanish without an ICMP error, but the overlay sends up to \(probe.needed) (FLANNEL_MTU \(probe.needed - overhead) + \(overhead))",
                fix:
                    "make the pod MTU \(largest - overhead): set the underlay interface MTU to \(largest) (or Backend.MTU with vxlan) and restart weftd, or raise the path MTU to \(probe.needed)"
            )
        }
    }

    static func ipForward(_ facts: DoctorFacts) -> DoctorCheck {
        forwarding("net.ipv4.ip_forward", facts.ipForward, traffic: "container traffic", unreadable: .warn)
    }

    /// With EnableIPv6 only: the kernel forwards the containers' IPv6 traffic only with it on, and
    /// neither flanneld nor weftd turns it on. Unreadable means a host without IPv6: a failure then.
    static func ipv6Forward(_ facts: DoctorFacts) -> DoctorCheck? {
        guard networkConfig(facts)?.ipv6 != nil else { return nil }
        return forwarding(
            "net.ipv6.conf.all.forwarding",
            facts.ipv6Forward,
            traffic: "the containers' IPv6 traffic (EnableIPv6 is true)",
            unreadable: .fail
        )
    }

    private static func forwarding(
        _ name: String,
        _ value: String?,
        traffic: String,
        unreadable: Status
    ) -> DoctorCheck {
        let path = "/proc/sys/" + name.replacingOccurrences(of: ".", with: "/")
        switch value {
        case "1":
            return DoctorCheck(name, .ok, "1")
        case let value?:
            return DoctorCheck(
                name,
                .fail,
                "\(value): this host does not forward \(traffic)",
                fix: "sysctl -w \(name)=1, and set it in /etc/sysctl.d/ to survive a reboot"
            )
        case nil:
            return DoctorCheck(name, unreadable, "cannot read \(path)", fix: "check it with sysctl \(name)")
        }
    }

    static let ruleChains = ["postrouting", "forward"]

    static func rules(_ facts: DoctorFacts) -> DoctorCheck {
        guard subnetEnv(facts)?.ipMasq == true else {
            return DoctorCheck("masquerade rules", .ok, "not needed: FLANNEL_IPMASQ is not true")
        }
        return table("masquerade rules", "ip weft", facts.rules)
    }

    /// With EnableIPv6 and --ip-masq: the same chains for the IPv6Network in `table ip6 weft`.
    static func ipv6Rules(_ facts: DoctorFacts) -> DoctorCheck? {
        guard networkConfig(facts)?.ipv6 != nil, subnetEnv(facts)?.ipMasq == true else { return nil }
        return table("IPv6 masquerade rules", "ip6 weft", facts.ipv6Rules)
    }

    private static func table(_ name: String, _ table: String, _ state: DoctorFacts.Rules) -> DoctorCheck {
        switch state {
        case .unavailable(let problem):
            return DoctorCheck(
                name,
                .warn,
                "cannot list nftables: \(problem)",
                fix: "check with nft list table \(table)"
            )
        case .absent:
            return DoctorCheck(
                name,
                .fail,
                "FLANNEL_IPMASQ=true but nftables has no table \(table)",
                fix:
                    "weftd --ip-masq installs it: restart weftd with --ip-masq, and check that nothing flushes the ruleset"
            )
        case .table(let listing):
            let missing = ruleChains.filter { !listing.contains("chain \($0) {") && !listing.contains("chain \($0)\n") }
            guard missing.isEmpty else {
                return DoctorCheck(
                    name,
                    .fail,
                    "table \(table) lacks chain \(missing.joined(separator: " and "))",
                    fix: "restart weftd with --ip-masq to reinstall its rules"
                )
            }
            return DoctorCheck(name, .ok, "table \(table) with chains \(ruleChains.joined(separator: " and "))")
        }
    }

    /// The nftables tables and iptables-nft chains flanneld installs (nftables mode: tables
    /// flannel-ipv4/-ipv6; iptables mode: FLANNEL-POSTRTG in nat, FLANNEL-FWD in filter).
    public static let flanneldTables = [("ip", "flannel-ipv4"), ("ip6", "flannel-ipv6")]
    public static let flanneldChains = [
        ("ip", "nat", "FLANNEL-POSTRTG"), ("ip", "filter", "FLANNEL-FWD"),
        ("ip6", "nat", "FLANNEL-POSTRTG"), ("ip6", "filter", "FLANNEL-FWD"),
    ]

    /// flanneld's rules outlive it (it never removes them), so after a switch to weftd they keep
    /// masquerading and accepting as flanneld set them up, beside weftd's own, and stay when
    /// --ip-masq is turned off. Rules iptables-legacy holds are not visible to nft.
    static func flanneldRules(_ facts: DoctorFacts) -> DoctorCheck {
        switch facts.flannelLeftovers {
        case .unavailable(let problem):
            return DoctorCheck(
                "flanneld's rules",
                .warn,
                "cannot list nftables: \(problem)",
                fix: "check with nft list tables"
            )
        case .found(let leftovers) where leftovers.isEmpty:
            return DoctorCheck("flanneld's rules", .ok, "none left over")
        case .found(let leftovers):
            let tables = leftovers.filter { $0.hasPrefix("table ") }.map { "nft delete \($0)" }
            let chains =
                leftovers.contains { $0.hasPrefix("chain ") }
                ? [
                    "for FLANNEL-POSTRTG and FLANNEL-FWD: iptables -t <table> -D the rule jumping to each (iptables-save | grep FLANNEL lists them), then -F and -X the chain"
                ]
                : []
            return DoctorCheck(
                "flanneld's rules",
                .warn,
                "still installed from flanneld: \(leftovers.joined(separator: ", ")); they act beside weftd's own",
                fix: "once no node runs flanneld here: " + (tables + chains).joined(separator: "; ")
            )
        }
    }

    /// Which dataplane the running weftd uses and, for the kernel vxlan one, whether the kernel's
    /// neighbour, FDB and route entries match the lease table. nil when not asked.
    static func dataplane(_ facts: DoctorFacts) -> DoctorCheck? {
        switch facts.dataplane {
        case .notAsked:
            return nil
        case .unreachable(let socket, let problem):
            return DoctorCheck(
                "dataplane",
                .warn,
                "weftd's status socket \(socket) does not answer: \(problem)",
                fix: "start weftd, or point doctor at its socket with --status-socket"
            )
        case .running(let running):
            let what = running.dataplane.map { "\($0) dataplane" } ?? "dataplane"
            let name = "dataplane"
            let direct = running.directPeers > 0 ? "; \(running.directPeers) more routed directly (DirectRouting)" : ""
            guard let device = running.kernelDevice else {
                return DoctorCheck(name, .ok, "\(running.backend), \(what), \(running.peers) peer(s)\(direct)")
            }
            if let error = running.kernelError {
                return DoctorCheck(
                    name,
                    .fail,
                    "\(running.backend), \(what) on \(device): its entries cannot be read: \(error)",
                    fix: "see weftd's log; restart weftd to rebuild the device"
                )
            }
            guard running.kernelDifferences.isEmpty else {
                let shown = running.kernelDifferences.prefix(3).joined(separator: "; ")
                let more = running.kernelDifferences.count > 3 ? " and \(running.kernelDifferences.count - 3) more" : ""
                return DoctorCheck(
                    name,
                    .warn,
                    "\(running.backend), \(what) on \(device): \(running.kernelDifferences.count) entr(ies) differ from the lease table: \(shown)\(more)",
                    fix:
                        "weftd's 10 s resync puts them right; if this persists, weftd's log says what the kernel refused (weft routes lists them)"
                )
            }
            return DoctorCheck(
                name,
                .ok,
                "\(running.backend), \(what) on \(device): \(running.kernelEntries) neighbour, FDB and route entries for \(running.peers) peer(s), in step with the lease table\(direct)"
            )
        }
    }

    /// Whether the udp/vxlan port takes datagrams from the peers only, as weftd means it to: the
    /// input rule in place and the set holding exactly the peers' PublicIPs (PublicIPv6 over the
    /// IPv6 underlay, `ipv6`). nil when not asked.
    static func portFilter(_ filter: DoctorFacts.PortFilterState?, ipv6: Bool = false) -> DoctorCheck? {
        guard let filter else { return nil }
        let name = ipv6 ? "port filter (IPv6 underlay)" : "port filter"
        guard let dropped = filter.droppedPackets else {
            return DoctorCheck(
                name,
                .warn,
                "off: UDP \(filter.port)\(ipv6 ? " over IPv6" : "") takes datagrams from anyone who can reach it",
                fix:
                    "weftd filters by default; restart it without --port-filter=false unless a NAT between the nodes rewrites their addresses"
            )
        }
        guard filter.ruleInstalled else {
            return DoctorCheck(
                name,
                .fail,
                "weftd filters UDP \(filter.port) but \(filter.table) has no input rule for it",
                fix: "weftd's resync (--iptables-resync) reinstalls it; check that nothing flushes the ruleset"
            )
        }
        guard filter.missing.isEmpty else {
            return DoctorCheck(
                name,
                .fail,
                "set peers lacks \(filter.missing.count) peer(s), whose datagrams are dropped: \(Self.listed(filter.missing))",
                fix: "weftd's resync adds them; if this persists, weftd's log says what nft refused"
            )
        }
        guard filter.stale.isEmpty else {
            return DoctorCheck(
                name,
                .warn,
                "set peers holds \(filter.stale.count) address(es) no peer has, accepted on UDP \(filter.port): \(Self.listed(filter.stale))",
                fix: "weftd's resync removes them; if this persists, weftd's log says what nft refused"
            )
        }
        return DoctorCheck(
            name,
            .ok,
            "UDP \(filter.port) open to the peers only; \(dropped) datagram(s) (\(filter.droppedBytes) bytes) from elsewhere dropped"
        )
    }

    /// The first three of `items` and how many more.
    static func listed(_ items: [String]) -> String {
        items.prefix(3).joined(separator: ", ") + (items.count > 3 ? " and \(items.count - 3) more" : "")
    }

    static func device(_ facts: DoctorFacts) -> DoctorCheck {
        if networkConfig(facts)?.backend.kind == .hostGateway {
            return DoctorCheck("overlay device", .ok, "none needed: host-gw routes through the kernel")
        }
        guard let device = facts.device else {
            return DoctorCheck(
                "overlay device",
                .fail,
                "\(facts.expectedDevice) does not exist",
                fix: "weftd creates it once it holds a lease: start weftd, and see its log"
            )
        }
        guard device.isUp else {
            return DoctorCheck(
                "overlay device \(device.name)",
                .fail,
                "down",
                fix: "restart weftd (or ip link set \(device.name) up)"
            )
        }
        // Both are weftd's: the kernel's vxlan device with --vxlan-dataplane=kernel (the default,
        // and flanneld's), the engine's TUN with --vxlan-dataplane=weft and for udp.
        let what =
            device.kind == "vxlan"
            ? "a kernel vxlan device (--vxlan-dataplane=kernel, or flanneld's)"
            : device.kind == "tun" ? "weftd's TUN" : nil
        return DoctorCheck(
            "overlay device \(device.name)",
            .ok,
            (what.map { "\($0), " } ?? "") + "up, MTU \(device.mtu)"
        )
    }
}
