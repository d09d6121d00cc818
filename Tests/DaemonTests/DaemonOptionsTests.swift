import Addressing
import Config
import Testing

@testable import Daemon

/// Flags as flanneld takes them (Go's flag package: one or two dashes, `=value` or the next
/// argument, booleans only as `--x` / `--x=false`) and FLANNELD_* for every flag not given.
@Suite struct DaemonOptionsTests {
    static func options(_ arguments: [String], _ environment: [String: String] = [:]) throws -> DaemonOptions {
        guard case .run(let options) = try DaemonOptions.parse(arguments: arguments, environment: environment) else {
            Issue.record("\(arguments) did not parse to a run command")
            return DaemonOptions()
        }
        return options
    }

    static func failure(_ arguments: [String], _ environment: [String: String] = [:]) -> DaemonOptionsError? {
        do {
            _ = try DaemonOptions.parse(arguments: arguments, environment: environment)
            return nil
        } catch {
            return error
        }
    }

    @Test func defaultsAreFlanneldsExceptHealthzIP() throws {
        let options = try Self.options([])
        // Values from flanneld's main.go flag definitions (reference/flannel.md §1).
        #expect(options.etcdEndpoints == ["http://127.0.0.1:4001", "http://127.0.0.1:2379"])
        #expect(options.etcdPrefix == "/coreos.com/network")
        #expect(options.etcdKeyFile == "" && options.etcdCertFile == "" && options.etcdCAFile == "")
        #expect(options.etcdUsername == "" && options.etcdPassword == "")
        #expect(options.interfaces.isEmpty && options.interfaceRegexes.isEmpty)
        #expect(options.interfaceCanReach == nil && options.publicIP == nil)
        #expect(options.subnetFile == "/run/flannel/subnet.env")
        #expect(options.subnetLeaseRenewMargin == .seconds(3600))
        #expect(options.subnetLeaseTTL == .seconds(86400))
        #expect(!options.ipMasq && !options.ipMasqFullyRandomDisable && !options.ipMasqCleanup)
        #expect(options.iptablesResync == .seconds(5))
        #expect(options.iptablesForwardRules)
        #expect(options.portFilter, "Weft's port filter is on unless turned off")
        #expect(options.healthzIP == IPv4Address(127, 0, 0, 1))
        #expect(options.healthzPort == 0)
        #expect(options.verbosity == 0 && options.logLevel == .info)
        #expect(options.engine == .auto && options.workers == 0 && options.offloads && options.busyPoll == .zero)
        #expect(options.vxlanDataplane == .kernel, "flanneld's own dataplane unless asked otherwise")
        #expect(options.dockerOptionsFile == nil)
        #expect(options.dockerOptions == DockerOptions(form: .both, combinedKey: "DOCKER_OPTS", includeIPMasq: true))
        #expect(options.ignored.isEmpty)
    }

    /// Each row: a flag written three ways plus its FLANNELD_ form must give the same value.
    struct Row: Sendable, CustomStringConvertible {
        let flag: String
        let value: String
        let check: @Sendable (DaemonOptions) -> Bool
        var description: String { "--\(flag)=\(value)" }
    }

    static let valueRows: [Row] = [
        Row(flag: "etcd-endpoints", value: "https://198.18.0.1:2379,http://198.18.0.2:2379") {
            $0.etcdEndpoints == ["https://198.18.0.1:2379", "http://198.18.0.2:2379"]
        },
        Row(flag: "etcd-prefix", value: "/weft/network") { $0.etcdPrefix == "/weft/network" },
        Row(flag: "etcd-cafile", value: "/etc/ca.pem") { $0.etcdCAFile == "/etc/ca.pem" },
        Row(flag: "etcd-username", value: "flannel") { $0.etcdUsername == "flannel" },
        Row(flag: "etcd-password", value: "p=ss word") { $0.etcdPassword == "p=ss word" },
        Row(flag: "iface", value: "eth1") { $0.interfaces == ["eth1"] },
        Row(flag: "iface-regex", value: "^veth[0-9]$") { $0.interfaceRegexes == ["^veth[0-9]$"] },
        Row(flag: "iface-can-reach", value: "198.18.0.9") { $0.interfaceCanReach == IPv4Address(198, 18, 0, 9) },
        Row(flag: "iface-can-reach", value: "2001:db8::9") {
            $0.interfaceCanReachIPv6 == IPv6Address("2001:db8::9") && $0.interfaceCanReach == nil
        },
        Row(flag: "public-ip", value: "198.19.1.2") { $0.publicIP == IPv4Address(198, 19, 1, 2) },
        Row(flag: "subnet-file", value: "/tmp/weft/subnet.env") { $0.subnetFile == "/tmp/weft/subnet.env" },
        Row(flag: "subnet-lease-renew-margin", value: "90") { $0.subnetLeaseRenewMargin == .seconds(90 * 60) },
        Row(flag: "subnet-lease-renew-margin", value: "45s") { $0.subnetLeaseRenewMargin == .seconds(45) },
        Row(flag: "subnet-lease-ttl", value: "1h30m") { $0.subnetLeaseTTL == .seconds(5400) },
        Row(flag: "subnet-lease-ttl", value: "172800") { $0.subnetLeaseTTL == .seconds(172_800) },
        Row(flag: "iptables-resync", value: "17") { $0.iptablesResync == .seconds(17) },
        Row(flag: "healthz-ip", value: "0.0.0.0") { $0.healthzIP == .any },
        Row(flag: "healthz-port", value: "8081") { $0.healthzPort == 8081 },
        Row(flag: "healthz-port", value: "65535") { $0.healthzPort == 65535 },
        Row(flag: "v", value: "2") { $0.verbosity == 2 && $0.logLevel == .debug },
        Row(flag: "v", value: "10") { $0.verbosity == 10 && $0.logLevel == .trace },
        Row(flag: "vxlan-dataplane", value: "weft") { $0.vxlanDataplane == .weft },
        Row(flag: "engine", value: "mmsg") { $0.engine == .mmsg },
        Row(flag: "engine", value: "uring") { $0.engine == .uring },
        Row(flag: "workers", value: "3") { $0.workers == 3 },
        Row(flag: "offloads", value: "false") { !$0.offloads },
        Row(flag: "busy-poll", value: "200") { $0.busyPoll == .microseconds(200) },
        Row(flag: "busy-poll", value: "100000") { $0.busyPoll == .milliseconds(100) },
        Row(flag: "docker-opts-file", value: "/run/flannel/docker") { $0.dockerOptionsFile == "/run/flannel/docker" },
        Row(flag: "docker-opts-key", value: "DOCKER_NETWORK_OPTIONS") {
            $0.dockerOptions.combinedKey == "DOCKER_NETWORK_OPTIONS"
        },
        Row(flag: "ip-masq", value: "true") { $0.ipMasq },
        Row(flag: "ip-masq", value: "T") { $0.ipMasq },
        Row(flag: "iptables-forward-rules", value: "false") { !$0.iptablesForwardRules },
        Row(flag: "iptables-forward-rules", value: "0") { !$0.iptablesForwardRules },
        Row(flag: "ip-blackhole-route", value: "1") { $0.ipBlackholeRoute && $0.ignored.isEmpty },
        Row(flag: "ip-masq-fully-random-disable", value: "True") { $0.ipMasqFullyRandomDisable },
        Row(flag: "ip-masq-cleanup", value: "true") { $0.ipMasqCleanup },
        Row(flag: "port-filter", value: "false") { !$0.portFilter },
        Row(flag: "docker-opts-combined", value: "true") { $0.dockerOptions.form == .combined },
        Row(flag: "docker-opts-individual", value: "true") { $0.dockerOptions.form == .individual },
        Row(flag: "docker-opts-no-ip-masq", value: "true") { !$0.dockerOptions.includeIPMasq },
        Row(flag: "kube-subnet-mgr", value: "true") { $0.kubeSubnetManager },
        Row(flag: "kube-api-url", value: "https://198.18.0.1:6443") {
            $0.kubeAPIURL == "https://198.18.0.1:6443" && $0.ignored.isEmpty
        },
        Row(flag: "kubeconfig-file", value: "/etc/kubernetes/kubeconfig") {
            $0.kubeconfigFile == "/etc/kubernetes/kubeconfig"
        },
        Row(flag: "kube-annotation-prefix", value: "example.com/weft") {
            $0.kubeAnnotationPrefix == "example.com/weft"
        },
        Row(flag: "net-config-path", value: "/tmp/net-conf.json") { $0.netConfigPath == "/tmp/net-conf.json" },
        Row(flag: "set-node-network-unavailable", value: "false") { !$0.setNodeNetworkUnavailable },
        Row(flag: "public-ipv6", value: "2001:db8::1") {
            $0.publicIPv6 == IPv6Address("2001:db8::1") && $0.ignored.isEmpty
        },
        Row(flag: "vmodule", value: "main=3") { $0.ignored == ["--vmodule"] },
        Row(flag: "log_backtrace_at", value: "main.go:1") { $0.ignored == ["--log_backtrace_at"] },
    ]

    @Test(arguments: valueRows)
    func everySpellingAndTheEnvironmentAgree(row: Row) throws {
        let isBool = DaemonFlag.named[row.flag]!.kind == .bool
        var spellings = [["-\(row.flag)=\(row.value)"], ["--\(row.flag)=\(row.value)"]]
        if !isBool { spellings += [["--\(row.flag)", row.value], ["-\(row.flag)", row.value]] }
        for arguments in spellings {
            #expect(row.check(try Self.options(arguments)), "\(arguments)")
        }
        // The variable name written out by hand, not derived with the code under test.
        let variable = "FLANNELD_" + row.flag.uppercased().split(separator: "-").joined(separator: "_")
        #expect(row.check(try Self.options([], [variable: row.value])), "\(variable)")
        #expect(!row.check(try Self.options([])), "the default already passes \(row)")
    }

    @Test func bareBooleanIsTrueAndTakesNoArgument() throws {
        #expect(try Self.options(["--ip-masq"]).ipMasq)
        #expect(try Self.options(["-ip-masq"]).ipMasq)
        #expect(try Self.options(["-ip-masq", "--iface=eth0"]).interfaces == ["eth0"])
        #expect(Self.failure(["--ip-masq", "false"])?.description.contains("--flag=false") == true)
    }

    @Test func repeatedFlagsKeepTheirOrder() throws {
        let options = try Self.options([
            "--iface=eth1", "-iface", "198.18.0.2", "--iface-regex=^a", "-iface-regex=^b", "--iface", "eth0",
        ])
        #expect(options.interfaces == ["eth1", "198.18.0.2", "eth0"])
        #expect(options.interfaceRegexes == ["^a", "^b"])
    }

    @Test func commandLineBeatsEnvironmentFlagByFlag() throws {
        let environment = [
            "FLANNELD_ETCD_PREFIX": "/from/env", "FLANNELD_IFACE": "eth9", "FLANNELD_IP_MASQ": "true",
            "FLANNELD_HEALTHZ_PORT": "9000", "FLANNELD_V": "3",
        ]
        let options = try Self.options(["--etcd-prefix=/from/flag", "--iface=eth1", "--ip-masq=false"], environment)
        #expect(options.etcdPrefix == "/from/flag")
        #expect(options.interfaces == ["eth1"], "FLANNELD_IFACE must not add to --iface")
        #expect(!options.ipMasq)
        #expect(options.healthzPort == 9000)
        #expect(options.verbosity == 3)
    }

    @Test func emptyOrUnknownEnvironmentValuesAreIgnored() throws {
        let options = try Self.options(
            [],
            [
                "FLANNELD_ETCD_PREFIX": "", "FLANNELD_HEALTHZ_PORT": "", "FLANNELD_NOT_A_FLAG": "x",
                "ETCD_PREFIX": "/no-prefix", "flanneld_etcd_prefix": "/lower",
            ]
        )
        #expect(options == DaemonOptions())
    }

    @Test func environmentIfaceIsOneValue() throws {
        #expect(try Self.options([], ["FLANNELD_IFACE": "198.18.0.1"]).interfaces == ["198.18.0.1"])
    }

    @Test func helpVersionAndDoubleDash() throws {
        for arguments in [["-h"], ["--help"], ["-help"], ["--iface=eth0", "-h"]] {
            #expect(try DaemonOptions.parse(arguments: arguments, environment: [:]) == .help, "\(arguments)")
        }
        for arguments in [["--version"], ["-version"], ["--version=true"]] {
            #expect(try DaemonOptions.parse(arguments: arguments, environment: [:]) == .version, "\(arguments)")
        }
        #expect(try Self.options(["--version=false"]) == DaemonOptions())
        #expect(try Self.options(["--ip-masq", "--"]).ipMasq)
    }

    @Test func usageListsEveryFlagWithItsEnvironmentForm() {
        let usage = DaemonOptions.usage
        for flag in DaemonFlag.all { #expect(usage.contains(flag.display), "\(flag.name)") }
        for needle in [
            "--iface=NAME|IP", "(default http://127.0.0.1:4001,http://127.0.0.1:2379)", "(default /coreos.com/network)",
            "(default /run/flannel/subnet.env)", "(default 60)", "FLANNELD_<NAME>", "--version", "-v=LEVEL",
        ] {
            #expect(usage.contains(needle), "\(needle)")
        }
    }

    /// Each bad input must name its flag (and variable) in one line and say what to write instead.
    struct Bad: Sendable, CustomStringConvertible {
        let arguments: [String]
        let environment: [String: String]
        let names: String
        let fix: String
        var description: String { "\(arguments) \(environment)" }
        init(_ arguments: [String], _ environment: [String: String] = [:], names: String, fix: String) {
            self.arguments = arguments
            self.environment = environment
            self.names = names
            self.fix = fix
        }
    }

    static let badRows: [Bad] = [
        Bad(["--no-such-flag"], names: "--no-such-flag", fix: "weftd --help"),
        Bad(["-etcd_endpoints=http://x"], names: "--etcd_endpoints", fix: "--etcd-endpoints"),
        Bad(["--healthz"], names: "--healthz", fix: "--healthz-ip"),
        Bad(["---iface=eth0"], names: "---iface", fix: "weftd --help"),
        Bad(["eth0"], names: "\"eth0\"", fix: "only flags"),
        Bad(["--", "extra"], names: "\"extra\"", fix: "only flags"),
        Bad(["--iface"], names: "--iface", fix: "--iface=eth0"),
        Bad(["--iface="], names: "--iface", fix: "--iface=eth0"),
        Bad(["--healthz-port=65536"], names: "--healthz-port", fix: "--healthz-port=8081"),
        Bad(["--healthz-port=-1"], names: "--healthz-port", fix: "--healthz-port=8081"),
        Bad(["--healthz-port", "+80"], names: "--healthz-port", fix: "--healthz-port=8081"),
        Bad(
            [],
            ["FLANNELD_HEALTHZ_PORT": "http"],
            names: "FLANNELD_HEALTHZ_PORT (--healthz-port)",
            fix: "--healthz-port=8081"
        ),
        Bad(["--healthz-ip=localhost"], names: "--healthz-ip", fix: "--healthz-ip=198.18.0.1"),
        Bad(["--public-ip=2001:db8::1"], names: "--public-ip", fix: "goes to --public-ipv6"),
        Bad(["--public-ipv6=198.18.0.1"], names: "--public-ipv6", fix: "--public-ipv6=2001:db8::1"),
        Bad(["--public-ipv6=ff02::1"], names: "--public-ipv6", fix: "--public-ipv6=2001:db8::1"),
        Bad([], ["FLANNELD_PUBLIC_IPV6": "::"], names: "FLANNELD_PUBLIC_IPV6 (--public-ipv6)", fix: "unicast IPv6"),
        Bad(["--public-ip=198.18.0.256"], names: "--public-ip", fix: "--public-ip=198.18.0.1"),
        Bad(["--iface-can-reach=nowhere"], names: "--iface-can-reach", fix: "--iface-can-reach=198.18.0.1"),
        Bad(["--iface-can-reach=ff02::1"], names: "--iface-can-reach", fix: "--iface-can-reach=198.18.0.1"),
        Bad(["--iface-regex=eth[0-"], names: "--iface-regex", fix: "--iface-regex="),
        Bad(["--ip-masq=yes"], names: "--ip-masq", fix: "--ip-masq=false"),
        Bad([], ["FLANNELD_IP_MASQ": "on"], names: "FLANNELD_IP_MASQ (--ip-masq)", fix: "--ip-masq=true"),
        Bad(["--etcd-endpoints=127.0.0.1:2379"], names: "--etcd-endpoints", fix: "http://127.0.0.1:2379"),
        Bad(["--etcd-endpoints=http://a:1,,http://b:2"], names: "--etcd-endpoints", fix: "http://127.0.0.1:2379"),
        Bad(["--etcd-endpoints=http://"], names: "--etcd-endpoints", fix: "http://127.0.0.1:2379"),
        Bad(["--etcd-prefix="], names: "--etcd-prefix", fix: "--etcd-prefix=/coreos.com/network"),
        Bad(["--subnet-file="], names: "--subnet-file", fix: "--subnet-file=/run/flannel/subnet.env"),
        Bad(["--etcd-certfile=/c.pem"], names: "--etcd-keyfile", fix: "client key"),
        Bad(["--etcd-keyfile=/k.pem"], names: "--etcd-certfile", fix: "client certificate"),
        Bad(["--subnet-lease-renew-margin=0"], names: "--subnet-lease-renew-margin", fix: "=60"),
        Bad(["--subnet-lease-renew-margin=1440"], names: "--subnet-lease-renew-margin", fix: "1..1439"),
        Bad(["--subnet-lease-renew-margin=soon"], names: "--subnet-lease-renew-margin", fix: "=60"),
        Bad(["--subnet-lease-ttl=30s"], names: "--subnet-lease-renew-margin", fix: "shorter than the lease TTL 30s"),
        Bad(["--subnet-lease-ttl=1s"], names: "--subnet-lease-ttl", fix: "at least 2s"),
        Bad(["--subnet-lease-ttl=10x"], names: "--subnet-lease-ttl", fix: "=24h"),
        Bad(["--subnet-lease-ttl=h"], names: "--subnet-lease-ttl", fix: "=24h"),
        Bad(["--iptables-resync=0"], names: "--iptables-resync", fix: "--iptables-resync=5"),
        Bad(["--engine=dpdk"], names: "--engine", fix: "--engine=uring"),
        Bad(
            ["--vxlan-dataplane=user"],
            names: "--vxlan-dataplane",
            fix: "--vxlan-dataplane=kernel or --vxlan-dataplane=weft"
        ),
        Bad(
            [],
            ["FLANNELD_VXLAN_DATAPLANE": "Kernel"],
            names: "FLANNELD_VXLAN_DATAPLANE (--vxlan-dataplane)",
            fix: "--vxlan-dataplane=weft"
        ),
        Bad(["--workers=-2"], names: "--workers", fix: "--workers=2"),
        Bad(["--workers=1025"], names: "--workers", fix: "--workers=2"),
        Bad(["--busy-poll=100001"], names: "--busy-poll", fix: "0...100000; write e.g. --busy-poll=200"),
        Bad([], ["FLANNELD_BUSY_POLL": "50us"], names: "FLANNELD_BUSY_POLL (--busy-poll)", fix: "--busy-poll=200"),
        Bad(["-v=high"], names: "-v", fix: "-v=2"),
        Bad(["-v"], names: "-v", fix: "-v=2"),
        Bad(["--docker-opts-key=1BAD"], names: "--docker-opts-key", fix: "DOCKER_OPTS"),
        Bad(["--docker-opts-key=DOCKER-OPTS"], names: "--docker-opts-key", fix: "DOCKER_OPTS"),
        Bad(["--docker-opts-file="], names: "--docker-opts-file", fix: "/run/docker_opts.env"),
        Bad(["--kube-subnet-mgr=maybe"], names: "--kube-subnet-mgr", fix: "=false"),
        Bad(
            [],
            ["FLANNELD_KUBE_SUBNET_MGR": "sometimes"],
            names: "FLANNELD_KUBE_SUBNET_MGR (--kube-subnet-mgr)",
            fix: "=false"
        ),
        Bad(["--net-config-path="], names: "--net-config-path", fix: "/etc/kube-flannel/net-conf.json"),
        Bad(["--set-node-network-unavailable=maybe"], names: "--set-node-network-unavailable", fix: "=false"),
        Bad(["--version=perhaps"], names: "--version", fix: "--version=false"),
    ]

    @Test(arguments: badRows)
    func badInputNamesTheFlagAndTheFix(row: Bad) {
        guard let error = Self.failure(row.arguments, row.environment) else {
            Issue.record("accepted \(row)")
            return
        }
        let line = error.description
        #expect(line.hasPrefix(row.names + ":"), "\(line)")
        #expect(line.contains(row.fix), "\(line)")
        #expect(!line.contains("\n"), "\(line)")
    }

    @Test func badValuesAreShownOnOneLineAndCut() {
        let error = Self.failure(["--healthz-port=1\n2"])
        #expect(error?.description.contains("\"1\\n2\"") == true, "\(String(describing: error))")
        let long = String(repeating: "x", count: 500)
        let cut = Self.failure(["--engine=\(long)"])?.description ?? ""
        #expect(cut.count < 200 && cut.contains("...\""), "\(cut)")
    }

    @Test func marginBoundsFollowTheTTL() throws {
        // flanneld's 1..1439 minutes is "shorter than the fixed 24 h lease".
        #expect(try Self.options(["--subnet-lease-renew-margin=1439"]).subnetLeaseRenewMargin == .seconds(1439 * 60))
        #expect(try Self.options(["--subnet-lease-renew-margin=1"]).subnetLeaseRenewMargin == .seconds(60))
        let short = try Self.options(["--subnet-lease-ttl=30s", "--subnet-lease-renew-margin=10s"])
        #expect(short.subnetLeaseTTL == .seconds(30) && short.subnetLeaseRenewMargin == .seconds(10))
    }

    @Test func dockerFlagsMapToMkDockerOptsForms() throws {
        let both = try Self.options(["--docker-opts-individual", "--docker-opts-combined"])
        #expect(both.dockerOptions.form == .both)
        let options = try Self.options(
            [],
            [
                "FLANNELD_DOCKER_OPTS_FILE": "/run/flannel/docker",
                "FLANNELD_DOCKER_OPTS_KEY": "DOCKER_NETWORK_OPTIONS",
                "FLANNELD_DOCKER_OPTS_NO_IP_MASQ": "1", "FLANNELD_DOCKER_OPTS_COMBINED": "true",
            ]
        )
        #expect(options.dockerOptionsFile == "/run/flannel/docker")
        #expect(
            options.dockerOptions
                == DockerOptions(form: .combined, combinedKey: "DOCKER_NETWORK_OPTIONS", includeIPMasq: false)
        )
        // What mk-docker-opts.sh -c -m -k DOCKER_NETWORK_OPTIONS prints for this subnet.env.
        let text = try options.dockerOptions.render(entries: [
            "FLANNEL_SUBNET": "10.1.74.1/24", "FLANNEL_MTU": "1472", "FLANNEL_IPMASQ": "false",
        ])
        #expect(text == "DOCKER_NETWORK_OPTIONS=\" --bip=10.1.74.1/24 --mtu=1472\"\n")
    }

    @Test func durationsParseAsGoWouldWrite() {
        #expect(DaemonFlag.duration("24h", bareUnit: 1) == .seconds(86400))
        #expect(DaemonFlag.duration("1h1m1s", bareUnit: 1) == .seconds(3661))
        #expect(DaemonFlag.duration("15", bareUnit: 60) == .seconds(900))
        for bad in ["", "-5", "+5", "5d", "h", "1h5", "1.5h", " 5"] {
            #expect(DaemonFlag.duration(bad, bareUnit: 1) == nil, "\(bad)")
        }
        #expect(DaemonFlag.describe(.seconds(7200)) == "2h")
        #expect(DaemonFlag.describe(.seconds(90)) == "90s")
    }
}
