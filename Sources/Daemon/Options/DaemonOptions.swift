import Addressing
import Config
import Engine
import Logging
import Status

/// Everything weftd is told at startup: flanneld's flags with flanneld's names and defaults, plus
/// Weft's own (--vxlan-dataplane, --engine, --workers, --busy-poll, --docker-opts-*, --subnet-lease-ttl, --ip-masq-cleanup,
/// --port-filter). Built by `parse`, which
/// reads the command line and then FLANNELD_* for every flag the command line left out.
public struct DaemonOptions: Equatable, Sendable {
    /// --engine: the engine's own choice of I/O loop (uring, mmsg, auto), not a copy of it.
    public typealias Engine = EngineConfiguration.Selection

    /// What moves the vxlan backend's packets: the kernel's vxlan device flannel.<VNI>, programmed
    /// as flanneld programs it, or Weft's user-space engine behind a TUN of that name.
    public enum VXLANDataplane: String, Equatable, Sendable, CaseIterable {
        case kernel, weft
    }

    // etcd.
    public var etcdEndpoints = ["http://127.0.0.1:4001", "http://127.0.0.1:2379"]
    public var etcdPrefix = "/coreos.com/network"
    public var etcdKeyFile = ""
    public var etcdCertFile = ""
    public var etcdCAFile = ""
    public var etcdUsername = ""
    public var etcdPassword = ""

    // Kubernetes mode (--kube-subnet-mgr): flanneld's flags, flanneld's defaults.
    /// Leases from the Kubernetes API (our Node's podCIDR, peers' annotations) instead of etcd.
    public var kubeSubnetManager = false
    /// --kube-api-url: replaces the kubeconfig's server; with neither it nor --kubeconfig-file, in-cluster.
    public var kubeAPIURL = ""
    public var kubeconfigFile = ""
    public var kubeAnnotationPrefix = "flannel.alpha.coreos.com"
    public var netConfigPath = "/etc/kube-flannel/net-conf.json"
    public var setNodeNetworkUnavailable = true

    // External interface (see InterfaceSelector).
    /// --iface, in order: interface names or IPv4 or IPv6 addresses; the first that exists wins.
    public var interfaces: [String] = []
    /// --iface-regex, in order, validated as regular expressions; tried after every --iface.
    public var interfaceRegexes: [String] = []
    /// --iface-can-reach: the interface (and source address) the kernel would use toward it; an
    /// IPv6 target chooses the interface and its IPv6 address. At most one is set: the last given.
    public var interfaceCanReach: IPv4Address?
    public var interfaceCanReachIPv6: IPv6Address?
    /// The address other hosts send to; nil means the chosen interface's address.
    public var publicIP: IPv4Address?
    /// --public-ipv6: the IPv6 address a dual-stack lease advertises; nil means the interface's.
    public var publicIPv6: IPv6Address?

    // Lease and files.
    public var subnetFile = SubnetEnv.defaultPath
    /// --node-id; empty: /etc/machine-id (see `NodeIdentity`).
    public var nodeID = ""
    /// Renew the lease when less than this is left (flanneld: minutes, default 60).
    public var subnetLeaseRenewMargin: Duration = .seconds(60 * 60)
    /// The etcd lease's TTL; flanneld's is a fixed 24 h, Weft lets tests shorten it.
    public var subnetLeaseTTL: Duration = .seconds(24 * 60 * 60)
    /// --docker-opts-file: where to write mk-docker-opts.sh's output after subnet.env; nil = don't.
    public var dockerOptionsFile: String?
    public var dockerOptions = DockerOptions()
    // mk-docker-opts.sh's -i and -c; `finalize` turns them into dockerOptions.form.
    var dockerIndividual = false
    var dockerCombined = false

    // Rules.
    public var ipMasq = false
    public var ipMasqFullyRandomDisable = false
    /// Weft: delete `table ip weft` on a clean stop. Off by default, as flanneld leaves its rules:
    /// a restart then has no window without them.
    public var ipMasqCleanup = false
    public var iptablesResync: Duration = .seconds(5)
    public var iptablesForwardRules = true
    /// A blackhole route for the lease subnet (HostGateway's `BlackholeRoute`), kept every --iptables-resync.
    public var ipBlackholeRoute = false
    /// Weft: the udp or vxlan port open to the peers' PublicIPs only (TrafficRules' `PortFilter`).
    /// On by default where flanneld accepts from anyone: the tunnel otherwise takes packets into
    /// the overlay from any host that can reach the port.
    public var portFilter = true

    // Health and logging.
    /// Weft binds loopback by default where flanneld binds 0.0.0.0: a probe endpoint need not
    /// face the network unless asked.
    public var healthzIP = IPv4Address(127, 0, 0, 1)
    /// 0 turns the health server off, as in flanneld.
    public var healthzPort: UInt16 = 0
    /// --status-socket: nil means `weftd.sock` beside --subnet-file; empty turns it off.
    public var statusSocket: String?
    /// klog's -v: 0 logs info and up, 1–4 debug, 5 and more trace.
    public var verbosity = 0

    // Dataplane.
    /// The kernel by default: what a flanneld user has today.
    public var vxlanDataplane = VXLANDataplane.kernel
    public var engine = Engine.auto
    /// Engine worker threads; 0 lets the engine pick (one per core).
    public var workers = 0
    /// TUN offloads and UDP GSO/GRO (udp and vxlan backends, io_uring engine): TCP moves as 64 KB super-packets.
    public var offloads = true
    /// How long each worker keeps polling after traffic before it sleeps; zero (the default) sleeps at once.
    public var busyPoll: Duration = .zero

    /// Where the Unix-socket status server listens, nil when it is off.
    public var statusSocketPath: String? {
        guard let statusSocket else { return StatusSocket.defaultPath(subnetFile: subnetFile) }
        return statusSocket.isEmpty ? nil : statusSocket
    }

    /// Flags weftd accepts for drop-in compatibility but does nothing with; one log line each.
    public var ignored: [String] = []

    public init() {}

    /// What the command line asks for.
    public enum Command: Equatable, Sendable {
        case run(DaemonOptions)
        case help
        case version
    }

    /// `arguments` without the program name. A flag may be written -name or --name, with its value
    /// after '=' or as the next argument (booleans only take `--name` or `--name=false`, as in Go).
    /// A flag absent from the command line is read from FLANNELD_<NAME> when that is non-empty.
    public static func parse(arguments: [String], environment: [String: String]) throws(DaemonOptionsError) -> Command {
        var options = DaemonOptions()
        var given = Set<String>()
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "--" {
                if index < arguments.count { throw unexpected(arguments[index]) }
                break
            }
            guard argument.hasPrefix("-"), argument != "-" else { throw unexpected(argument) }
            var body = Substring(argument.dropFirst(argument.hasPrefix("--") ? 2 : 1))
            var value: String?
            if let equals = body.firstIndex(of: "=") {
                value = String(body[body.index(after: equals)...])
                body = body[..<equals]
            }
            let name = String(body)
            if name == "h" || name == "help" { return .help }
            if name == "version" {
                if let value, try !parseBool(value, flag: "--version", variable: nil) { continue }
                return .version
            }
            guard let flag = DaemonFlag.named[name] else {
                throw DaemonOptionsError(
                    flag: "-" + (name.isEmpty ? argument : "-" + name),
                    problem: "unknown flag\(suggestion(for: name)); run weftd --help for the list"
                )
            }
            if flag.kind == .bool {
                try flag.apply(&options, value ?? "true", nil)
            } else {
                if value == nil {
                    guard index < arguments.count else {
                        throw DaemonOptionsError(
                            flag: flag.display,
                            problem: "needs a value, e.g. \(flag.display)=\(flag.example)"
                        )
                    }
                    value = arguments[index]
                    index += 1
                }
                try flag.apply(&options, value!, nil)
            }
            given.insert(flag.name)
        }

        for flag in DaemonFlag.all where !given.contains(flag.name) {
            if let value = environment[flag.environmentVariable], !value.isEmpty {
                try flag.apply(&options, value, flag.environmentVariable)
            }
        }
        try options.finalize()
        return .run(options)
    }

    /// Checks and settings that need more than one flag's value.
    mutating func finalize() throws(DaemonOptionsError) {
        switch (dockerIndividual, dockerCombined) {
        case (true, false): dockerOptions.form = .individual
        case (false, true): dockerOptions.form = .combined
        default: dockerOptions.form = .both
        }
        guard subnetLeaseRenewMargin < subnetLeaseTTL else {
            throw DaemonOptionsError(
                flag: "--subnet-lease-renew-margin",
                problem:
                    "\(DaemonFlag.describe(subnetLeaseRenewMargin)) is out of range; it must be shorter than the lease TTL \(DaemonFlag.describe(subnetLeaseTTL)) (flanneld: 1..1439 minutes)"
            )
        }
        if !etcdCertFile.isEmpty && etcdKeyFile.isEmpty {
            throw DaemonOptionsError(
                flag: "--etcd-keyfile",
                problem: "--etcd-certfile is set but --etcd-keyfile is not; TLS needs both, give the client key too"
            )
        }
        if !etcdKeyFile.isEmpty && etcdCertFile.isEmpty {
            throw DaemonOptionsError(
                flag: "--etcd-certfile",
                problem:
                    "--etcd-keyfile is set but --etcd-certfile is not; TLS needs both, give the client certificate too"
            )
        }
    }

    /// Logging level for `verbosity` (klog's -v).
    public var logLevel: Logger.Level {
        switch verbosity {
        case ..<1: .info
        case 1..<5: .debug
        default: .trace
        }
    }

    static func unexpected(_ argument: String) -> DaemonOptionsError {
        DaemonOptionsError(
            flag: DaemonOptionsError.show(argument),
            problem: "unexpected argument; weftd takes only flags (a boolean takes --flag=false, not --flag false)"
        )
    }

    static func suggestion(for name: String) -> String {
        let normalized = String(name.lowercased().map { $0 == "_" ? "-" : $0 })
        if let flag = DaemonFlag.named[normalized] { return " (did you mean \(flag.display)?)" }
        if let flag = DaemonFlag.all.first(where: { $0.name.hasPrefix(normalized) && normalized.count >= 3 }) {
            return " (did you mean \(flag.display)?)"
        }
        return ""
    }

    static func parseBool(_ text: String, flag: String, variable: String?) throws(DaemonOptionsError) -> Bool {
        // Go's strconv.ParseBool, which flag.Set uses for both the command line and FLANNELD_*.
        switch text {
        case "1", "t", "T", "TRUE", "true", "True": return true
        case "0", "f", "F", "FALSE", "false", "False": return false
        default:
            throw DaemonOptionsError(
                flag: flag,
                environmentVariable: variable,
                problem: "\(DaemonOptionsError.show(text)) is not a boolean; write \(flag)=true or \(flag)=false"
            )
        }
    }

    /// The --help text: every flag, its default and its FLANNELD_* name.
    public static var usage: String {
        var text = """
            Usage: weftd [flags]
            Weft's drop-in for flanneld: takes a subnet lease from etcd and moves the overlay's packets.
            Flags take one or two dashes (-iface=eth0, --iface eth0); each flag not given is read from
            FLANNELD_<NAME> (upper case, '-' as '_'), e.g. FLANNELD_ETCD_ENDPOINTS.

            """
        for flag in DaemonFlag.all {
            let head = flag.kind == .bool ? flag.display : "\(flag.display)=\(flag.placeholder)"
            text += "  \(head)\n      \(flag.help)"
            if !flag.defaultText.isEmpty { text += " (default \(flag.defaultText))" }
            text += "\n"
        }
        text += "  --version\n      print the version and exit\n  -h, --help\n      print this text and exit\n"
        return text
    }
}
