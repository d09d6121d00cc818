import Addressing
import ArgumentParser
import Config
import ControlPlane
import Daemon
import Engine
import Etcd
import EtcdSubnets
import Foundation
import KubeModel
import KubeSubnets
import Netlink
import Operator
import Spawn
import Status
import TrafficRules

/// `weft doctor`: the checks of flannel's troubleshooting guide, one line each.
struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract:
            "Check this node: etcd, the config, this host's lease, interface, MTU, ip_forward, rules, overlay device, the running dataplane.",
        discussion: """
            Give it the flags weftd runs with (or the same FLANNELD_* environment). Each check prints \
            ok, warn or FAIL, and for a warning or failure what to do. Exit status 1 when any check fails.
            """
    )

    @OptionGroup var etcd: EtcdArguments
    @Option(
        help: ArgumentHelp(
            "subnet.env weftd writes (FLANNELD_SUBNET_FILE; default /run/flannel/subnet.env).",
            valueName: "path"
        )
    )
    var subnetFile: String?
    @Option(help: ArgumentHelp("weftd's --iface, repeatable (FLANNELD_IFACE).", valueName: "name|ip"))
    var iface: [String] = []
    @Option(help: ArgumentHelp("weftd's --iface-regex, repeatable (FLANNELD_IFACE_REGEX).", valueName: "regex"))
    var ifaceRegex: [String] = []
    @Option(help: ArgumentHelp("weftd's --public-ip (FLANNELD_PUBLIC_IP).", valueName: "ip"))
    var publicIP: String?
    @Flag(
        help:
            "Kubernetes mode, as weftd --kube-subnet-mgr (FLANNELD_KUBE_SUBNET_MGR): check the API server, RBAC and this node instead of etcd."
    )
    var kubeSubnetMgr = false
    @Option(help: ArgumentHelp("weftd's --kubeconfig-file (FLANNELD_KUBECONFIG_FILE).", valueName: "path"))
    var kubeconfigFile: String?
    @Option(help: ArgumentHelp("weftd's --kube-api-url (FLANNELD_KUBE_API_URL).", valueName: "url"))
    var kubeApiUrl: String?
    @Option(help: ArgumentHelp("weftd's --net-config-path (FLANNELD_NET_CONFIG_PATH).", valueName: "path"))
    var netConfigPath: String?
    @Option(
        help: ArgumentHelp("weftd's --kube-annotation-prefix (FLANNELD_KUBE_ANNOTATION_PREFIX).", valueName: "prefix")
    )
    var kubeAnnotationPrefix: String?
    @Option(
        help: ArgumentHelp(
            "weftd's --status-socket (FLANNELD_STATUS_SOCKET; default weftd.sock beside the subnet file), to ask weftd which dataplane runs.",
            valueName: "path"
        )
    )
    var statusSocket: String?
    @Flag(help: "Skip the DF probes of the path to each peer (ICMP echo, up to 16 peers).") var noPathProbe = false
    @Flag(help: "JSON for scripts instead of the table.") var json = false

    func run() async throws {
        var passed = true
        try await reportingFailures {
            var extra = subnetFile.map { ["--subnet-file=\($0)"] } ?? []
            extra += iface.map { "--iface=\($0)" } + ifaceRegex.map { "--iface-regex=\($0)" }
            if let publicIP { extra.append("--public-ip=\(publicIP)") }
            if kubeSubnetMgr { extra.append("--kube-subnet-mgr") }
            if let kubeconfigFile { extra.append("--kubeconfig-file=\(kubeconfigFile)") }
            if let kubeApiUrl { extra.append("--kube-api-url=\(kubeApiUrl)") }
            if let netConfigPath { extra.append("--net-config-path=\(netConfigPath)") }
            if let kubeAnnotationPrefix { extra.append("--kube-annotation-prefix=\(kubeAnnotationPrefix)") }
            if let statusSocket { extra.append("--status-socket=\(statusSocket)") }
            let options = try etcd.options(extra)
            let checks = DoctorCheck.evaluate(await DoctorProbe(options: options, probePaths: !noPathProbe).gather())
            passed = DoctorCheck.passed(checks)
            if json {
                print(try JSONOutput.render(checks), terminator: "")
                return
            }
            var table = TextTable(["STATUS", "CHECK", "RESULT"])
            for check in checks { table.append([check.status.rawValue, check.name, check.message]) }
            print(table.render(), terminator: "")
        }
        if !passed { throw ExitCode.failure }
    }
}

/// Reads this host and etcd into DoctorFacts, with weftd's own readers wherever weftd has one.
struct DoctorProbe {
    let options: DaemonOptions
    var probePaths = true
    /// The overlay devices looked for when the config does not say: udp's, then vxlan's with VNI 1.
    static let deviceNames = [FlannelDevice.udpName, FlannelDevice.vxlanName(vni: 1)]

    func gather() async -> DoctorFacts {
        var facts = DoctorFacts()
        facts.subnetFile = readSubnetFile()
        var reachable: [String] = []
        var kubePeers: [String]?
        if options.kubeSubnetManager {
            kubePeers = await readKubernetes(into: &facts)
        } else {
            facts.endpoints = await probeEndpoints()
            reachable = facts.endpoints.filter { $0.error == nil }.map(\.endpoint)
            if !reachable.isEmpty {
                await readEtcd(into: &facts, endpoints: reachable)
            }
        }
        let interfaces = (try? HostNetwork.interfaces()) ?? []
        facts.interface = selectInterface()
        var names = Self.deviceNames
        if case .valid(_, let config) = facts.config, config.backend.kind != .hostGateway {
            // The config's backend names the device (weftd's TUN, or flanneld's flannel.<VNI>).
            facts.expectedDevice = FlannelDevice.name(config.backend)
            names = [facts.expectedDevice]
        }
        if let found = names.lazy.compactMap({ name in interfaces.first { $0.name == name } }).first {
            facts.device = DoctorFacts.Device(
                name: found.name,
                mtu: found.mtu,
                isUp: found.isUp,
                kind: Self.linkKind(found.name)
            )
        }
        if probePaths, kubePeers != nil || !reachable.isEmpty, case .success(let choice) = facts.interface {
            let overhead = DoctorCheck.networkConfig(facts)?.backend.overhead ?? 0
            let needed = DoctorCheck.subnetEnv(facts)?.mtu.map { $0 + overhead } ?? choice.mtu
            let all = if let kubePeers { kubePeers } else { await readPeers(endpoints: reachable) }
            let peers = all.filter { $0 != choice.publicIP }.prefix(PathProbe.peerLimit)
            var paths: [PathProbe] = []
            for peer in peers {
                paths.append(
                    PathProbe(peer: peer, needed: needed, largest: await Self.largestAnswered(peer: peer, upTo: needed))
                )
            }
            facts.paths = paths
        }
        func setting(_ path: String) -> String? {
            (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        facts.ipForward = setting("/proc/sys/net/ipv4/ip_forward")
        facts.ipv6Forward = setting("/proc/sys/net/ipv6/conf/all/forwarding")
        facts.rules = await Self.listRules()
        if DoctorCheck.networkConfig(facts)?.ipv6 != nil {
            facts.ipv6Rules = await Self.listRules(family: TrafficRuleset.ipv6Family)
        }
        facts.flannelLeftovers = await Self.findFlanneldRules()
        if let path = options.statusSocketPath {
            let client = StatusClient(path: path)
            let routes = Result { () throws(StatusClient.Failure) in try client.routes() }
            facts.dataplane = Self.dataplane(routes, socket: path)
            if case .success(let report) = routes, let stats = try? client.stats(),
                let port = DoctorCheck.networkConfig(facts)?.backend.effectivePort, port != 0
            {
                facts.portFilter = Self.portFilter(port: port, routes: report, stats: stats, rules: facts.rules)
                if let ipv6 = report.ipv6, report.backend == "vxlan" {
                    facts.ipv6PortFilter = Self.ipv6PortFilter(
                        port: port,
                        routes: ipv6,
                        stats: stats,
                        rules: facts.ipv6Rules
                    )
                }
            }
        }
        return facts
    }

    /// The running weftd's /v1/routes (read through its status socket), the part doctor judges.
    static func dataplane(
        _ routes: Result<RoutesReport, StatusClient.Failure>,
        socket path: String
    ) -> DoctorFacts.DataplaneState {
        switch routes {
        case .success(let report):
            let kernel = report.kernel
            return .running(
                DoctorFacts.RunningDataplane(
                    dataplane: report.dataplane,
                    backend: report.backend,
                    peers: report.routes.count { $0.direct != true },
                    directPeers: report.routes.count { $0.direct == true },
                    kernelDevice: kernel?.device,
                    kernelEntries: kernel.map { $0.neighbours.count + $0.fdb.count + $0.routes.count } ?? 0,
                    kernelDifferences: kernel?.differences ?? [],
                    kernelError: kernel?.error
                )
            )
        case .failure(let error):
            return .unreachable(socket: path, problem: "\(error)")
        }
    }

    /// One quick read per endpoint, each on its own client, so every endpoint gets a verdict.
    func probeEndpoints() async -> [DoctorFacts.EndpointProbe] {
        var probes: [DoctorFacts.EndpointProbe] = []
        for endpoint in options.etcdEndpoints {
            do {
                _ = try await withEtcdClient(
                    options,
                    endpoints: [endpoint],
                    adjust: {
                        $0.passes = 1
                        $0.connectTimeout = .seconds(1)
                        $0.requestTimeout = .seconds(2)
                    }
                ) { client in try await client.get(EtcdPath.config(prefix: options.etcdPrefix)) }
                probes.append(.init(endpoint: endpoint))
            } catch {
                probes.append(.init(endpoint: endpoint, error: "\(error)"))
            }
        }
        return probes
    }

    func readSubnetFile() -> DoctorFacts.SubnetFile {
        let path = options.subnetFile
        guard FileManager.default.fileExists(atPath: path) else { return .missing(path: path) }
        do {
            let text = try String(contentsOfFile: path, encoding: .utf8)
            return .parsed(path: path, try SubnetEnv.parse(text, file: path))
        } catch let error as ConfigError {
            return .unreadable(path: path, problem: error.description)
        } catch {
            return .unreadable(path: path, problem: "cannot read: \(error.localizedDescription)")
        }
    }

    func readEtcd(into facts: inout DoctorFacts, endpoints: [String]) async {
        let prefix = options.etcdPrefix
        let configKey = EtcdPath.config(prefix: prefix)
        var ownSubnet: IPv4Prefix?
        if case .parsed(_, let env) = facts.subnetFile { ownSubnet = env.subnet }
        let result: (DoctorFacts.ConfigState, DoctorFacts.OwnLease)? = try? await withEtcdClient(
            options,
            endpoints: endpoints
        ) { (client) async throws -> (DoctorFacts.ConfigState, DoctorFacts.OwnLease) in
            let config: DoctorFacts.ConfigState
            if let kv = try await client.get(configKey).kvs.first {
                do {
                    config = .valid(key: configKey, try NetworkConfig.parse(kv.value))
                } catch {
                    config = .invalid(key: configKey, problem: "\(error)")
                }
            } else {
                config = .missing(key: configKey, message: EtcdLeaseFailure.configMissing(key: configKey).description)
            }
            guard let ownSubnet else { return (config, .unknown) }
            // A dual-stack lease's key names its IPv6 subnet too (10.244.3.0-24&fc00:0:0:3::-64):
            // ours is the key under the IPv4 subnet's name, whatever its IPv6 half.
            let ipv4Key = LeaseKey(subnet: ownSubnet).path(prefix: prefix)
            let found = try? await client.range(prefix: ipv4Key).kvs.first {
                LeaseKey(parsing: $0.key)?.subnet == ownSubnet
            }
            guard let kv = found ?? nil else { return (config, .missing(key: ipv4Key)) }
            let key = kv.key
            do {
                let attributes = try LeaseAttributes.parse(kv.value)
                switch await LeasesCommand.expiry(client, kv.lease) {
                case .seconds(let left): return (config, .found(key: key, attributes, expiresInSeconds: left))
                case .expired: return (config, .missing(key: key))
                default: return (config, .found(key: key, attributes, expiresInSeconds: nil))
                }
            } catch let error as ConfigError {
                return (config, .malformed(key: key, problem: error.problem))
            }
        }
        if let result { (facts.config, facts.ownLease) = result }
    }

    /// Kubernetes mode: net-conf.json, then the API server as weftd's manager sees it. Returns the
    /// peers' public-ips for the path probes (nil when the API server could not be asked).
    func readKubernetes(into facts: inout DoctorFacts) async -> [String]? {
        let file = NetworkConfigFile(path: options.netConfigPath)
        do throws(LeaseError) {
            facts.config = .valid(key: file.path, try file.read())
        } catch {
            facts.config =
                error.kind == .configMissing
                ? .missing(key: file.path, message: error.description)
                : .invalid(key: file.path, problem: error.description)
        }
        let manager: KubeSubnetManager
        do {
            manager = try KubeSubnetManager(
                options.kubeSubnetManagerOptions(),
                warn: { FileHandle.standardError.write(Data("weft: warning: \($0)\n".utf8)) }
            )
        } catch {
            facts.kube = KubeFacts(
                server: options.kubeAPIURL,
                clientProblem: error.description,
                node: .failure(InterfaceProblem("no client"))
            )
            return nil
        }
        let diagnosis = await manager.diagnose(network: DoctorCheck.networkConfig(facts)?.network)
        await manager.shutdown()
        facts.kube = KubeFacts(
            server: diagnosis.server,
            node: diagnosis.node.mapError { InterfaceProblem($0.description) },
            access: diagnosis.access.map { KubeFacts.Access(rule: $0.rule, error: $0.error) },
            podCIDR: diagnosis.podCIDR.map { $0.map(\.description).mapError { InterfaceProblem($0.description) } },
            annotations: diagnosis.annotations
        )
        return diagnosis.peerPublicIPs
    }

    /// The PublicIPs of every lease, sorted.
    func readPeers(endpoints: [String]) async -> [String] {
        let prefix = EtcdPath.subnets(prefix: options.etcdPrefix) + "/"
        let listing = try? await withEtcdClient(options, endpoints: endpoints) { client in
            try await client.range(prefix: prefix)
        }
        let addresses = (listing?.kvs ?? []).compactMap { try? LeaseAttributes.parse($0.value).publicIP.description }
        return Array(Set(addresses)).sorted()
    }

    /// The largest IP packet with DF that `peer` answers, up to `needed`; nil when even the
    /// smallest gets no answer. Binary search, each size given two echoes (one may be lost).
    static func largestAnswered(peer: String, upTo needed: Int) async -> Int? {
        guard
            let ping = ["/usr/bin/ping", "/bin/ping"].first(where: { FileManager.default.isExecutableFile(atPath: $0) })
        else { return nil }
        func answers(_ size: Int) async -> Bool {
            let arguments = ["-n", "-q", "-c", "2", "-i", "0.2", "-W", "1", "-M", "do", "-s", String(size - 28), peer]
            let outcome = try? await ChildProcess.run(ping, arguments: arguments, environment: ["LC_ALL": "C"])
            return outcome?.succeeded == true
        }
        if await answers(needed) { return needed }
        guard await answers(PathProbe.smallest) else { return nil }
        var (low, high) = (PathProbe.smallest, needed)  // low answered, high did not
        while high - low > 1 {
            let middle = (low + high) / 2
            if await answers(middle) { low = middle } else { high = middle }
        }
        return low
    }

    /// The link's kind through netlink; nil when it cannot be read.
    static func linkKind(_ name: String) -> String? {
        guard var netlink = try? RouteNetlink(), let link = try? netlink.link(named: name) else { return nil }
        return link.kind
    }

    func selectInterface() -> Result<DoctorFacts.Interface, InterfaceProblem> {
        let request = InterfaceRequest(options)
        do {
            let chosen = try HostNetwork.selectInterface(request)
            let others = chosen.others.filter { other in !Self.deviceNames.contains { other.hasPrefix($0 + " ") } }
            let requested =
                !request.interfaces.isEmpty || !request.regexes.isEmpty || request.canReach != nil
                || request.canReachIPv6 != nil
                || request.publicIP != nil
            return .success(
                DoctorFacts.Interface(
                    name: chosen.name,
                    address: chosen.address.description,
                    publicIP: chosen.publicIP.description,
                    mtu: chosen.mtu,
                    reason: chosen.reason,
                    others: others,
                    requested: requested
                )
            )
        } catch {
            return .failure(InterfaceProblem("\(error)"))
        }
    }

    /// weftd's port filter: what /v1/stats says it dropped, and nft's rule and set beside the peers
    /// /v1/routes lists. The set's differences are the ones weftd's own update would make.
    static func portFilter(
        port: UInt16,
        routes: RoutesReport,
        stats: StatsReport,
        rules: DoctorFacts.Rules
    ) -> DoctorFacts.PortFilterState {
        let expected = PortFilter(port: port, peers: Set(routes.routes.compactMap { IPv4Address($0.publicIP) }))
        let listing = if case .table(let text) = rules { NFTListing(parsing: text) } else { NFTListing(chains: []) }
        let installed = listing.chains.contains { $0.name == PortFilter.chainName && $0.lines == expected.chain.lines }
        let held = listing.sets.first { $0.name == PortFilter.setName }?.elements ?? []
        let (missing, stale) = expected.changes(from: Set(held.compactMap { IPv4Address($0) }))
        return DoctorFacts.PortFilterState(
            port: port,
            droppedPackets: stats.portFilter?.packets,
            droppedBytes: stats.portFilter?.bytes ?? 0,
            ruleInstalled: installed,
            missing: missing.map { "\($0)" },
            stale: stale.map { "\($0)" }
        )
    }

    /// The same over the IPv6 underlay of a dual-stack vxlan lease (either dataplane): `table ip6
    /// weft`'s rule and set beside the PublicIPv6 of the peers /v1/routes lists.
    static func ipv6PortFilter(
        port: UInt16,
        routes: RoutesReport.IPv6Routes,
        stats: StatsReport,
        rules: DoctorFacts.Rules
    ) -> DoctorFacts.PortFilterState {
        let peers = Set(routes.routes.compactMap { IPv6Address($0.publicIP) })
        let expected = PortFilter(port: port, peers: [], ipv6Peers: peers)
        let listing = if case .table(let text) = rules { NFTListing(parsing: text) } else { NFTListing(chains: []) }
        let installed = listing.chains.contains {
            $0.name == PortFilter.chainName && $0.lines == expected.ipv6Chain?.lines
        }
        let held = Set(
            (listing.sets.first { $0.name == PortFilter.setName }?.elements ?? []).compactMap { IPv6Address($0) }
        )
        return DoctorFacts.PortFilterState(
            port: port,
            droppedPackets: stats.portFilterIPv6?.packets,
            droppedBytes: stats.portFilterIPv6?.bytes ?? 0,
            ruleInstalled: installed,
            missing: peers.subtracting(held).sorted().map { "\($0)" },
            stale: held.subtracting(peers).sorted().map { "\($0)" },
            table: TrafficRuleset.ipv6TableSpecifier
        )
    }

    /// flanneld's tables (nftables mode) and chains (iptables-nft), each asked of nft by name.
    static func findFlanneldRules() async -> DoctorFacts.FlannelLeftovers {
        let nft = NFTables()
        do throws(TrafficRulesError) {
            var found: [String] = []
            for (family, table) in DoctorCheck.flanneldTables where try await nft.hasTable(family: family, table) {
                found.append("table \(family) \(table)")
            }
            for (family, table, chain) in DoctorCheck.flanneldChains
            where try await nft.hasChain(family: family, table: table, chain) {
                found.append("chain \(family) \(table) \(chain)")
            }
            return .found(found)
        } catch {
            return .unavailable(error.description)
        }
    }

    /// `nft list table ip weft`: the masquerade and forward rules weftd --ip-masq installs, read
    /// the way weftd's own resync reads them.
    static func listRules(family: String = TrafficRuleset.family) async -> DoctorFacts.Rules {
        do throws(TrafficRulesError) {
            guard let table = try await NFTables().listTable(family: family) else { return .absent }
            return .table(table)
        } catch {
            return .unavailable(error.description)
        }
    }
}
