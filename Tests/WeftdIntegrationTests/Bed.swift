import Foundation
import Glibc
import Status
import TestSupport
import TestThreads
import Testing

/// Why these tests cannot run here, or nil: they need root (namespaces, TUN), etcd, etcdctl,
/// iperf3, ping and curl, and the weftd executable built next to the test bundle.
let bedUnavailable: String? = {
    if geteuid() != 0 {
        return "WeftdIntegrationTests need root (network namespaces, TUN devices); run swift test as root"
    }
    for tool in [
        "/usr/bin/etcd", "/usr/bin/etcdctl", "/usr/bin/iperf3", "/usr/bin/ping", "/usr/bin/curl", "/usr/sbin/ip",
    ]
    where !FileManager.default.isExecutableFile(atPath: tool) {
        return
            "WeftdIntegrationTests need \(tool); install it (apt-get install etcd-server etcd-client iperf3 iputils-ping curl iproute2)"
    }
    if !FileManager.default.isExecutableFile(atPath: weftdPath) {
        return "no weftd executable at \(weftdPath); run swift build first"
    }
    return nil
}()

/// `swift test` runs the test bundle from the products directory, where weftd is built too.
let weftdPath: String = {
    let executable =
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent("weftd").path
}()

struct BedFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// `weft` is built next to weftd.
let weftPath = URL(fileURLWithPath: weftdPath).deletingLastPathComponent().appendingPathComponent("weft").path

let weftUnavailable: String? =
    bedUnavailable
    ?? (FileManager.default.isExecutableFile(atPath: weftPath)
        ? nil : "no weft executable at \(weftPath); run swift build first")

/// Runs `arguments` (absolute path first) to completion, standard output and error together.
@discardableResult
func run(_ arguments: [String], environment: [String: String]? = nil) throws -> CommandResult {
    try runCommand(arguments, environment: environment, errors: .merged)
}

/// Runs and throws unless the command exits 0.
@discardableResult
func must(_ arguments: [String]) throws -> String {
    let result = try run(arguments)
    guard result.status == 0 else {
        throw BedFailure("\(arguments.joined(separator: " ")) exited \(result.status): \(result.output)")
    }
    return result.output
}

/// A process we started, stopped only by its pid. It dies with the test runner, even a SIGKILLed
/// one (`TiedProcess`), so no etcd or weftd outlives a run that was killed.
final class Started: Sendable {
    let process: TiedProcess
    let logPath: String?

    init(_ arguments: [String], logPath: String?) throws {
        self.logPath = logPath
        if let logPath { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
        guard let output = FileHandle(forWritingAtPath: logPath ?? "/dev/null") else {
            throw BedFailure("cannot open \(logPath ?? "/dev/null") for \(arguments[0])'s output")
        }
        defer { try? output.close() }
        process = try TiedProcess.launch(arguments[0], Array(arguments.dropFirst()), output: output)
    }

    var pid: Int32 { process.pid }
    var isRunning: Bool { process.isRunning }
    /// The exit status, or 128 + the signal that ended it; nil while it runs.
    var terminationStatus: Int32? { process.terminationStatus }

    /// Sends `signal` and waits up to `timeout` for the exit; SIGKILL after that. Returns the
    /// exit status (128 + the signal for a killed process).
    @discardableResult
    func stop(_ signal: Int32 = SIGTERM, timeout: Duration = .seconds(5)) -> Int32 {
        if process.isRunning {
            process.signal(signal)
            if waitFor(timeout, { !process.isRunning }) == nil {
                process.signal(SIGKILL)
                _ = waitFor(.seconds(30)) { !process.isRunning }
            }
        }
        return process.terminationStatus ?? -1
    }

    var log: String {
        guard let logPath else { return "" }
        return (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }

    /// Log lines containing `text`.
    func lines(containing text: String) -> [Substring] {
        log.split(separator: "\n").filter { $0.contains(text) }
    }
}

/// Underlay: one namespace with a bridge on 198.18.0.0/24 (198.18.0.254) running etcd; hosts
/// 198.18.0.N behind veths on the bridge, each with one container namespace behind a veth. Every
/// namespace name carries this run's tag; `tearDown` kills what was started and deletes them.
final class Bed {
    let tag: String
    let directory: String
    /// "https" once `useTLS` was called.
    var etcdScheme = "http"
    var etcdEndpoint: String { "\(etcdScheme)://198.18.0.254:2379" }
    /// etcd's server flags and etcdctl's client flags for TLS, and etcdctl's --user.
    var etcdTLSFlags: [String] = []
    var etcdctlFlags: [String] = []
    var namespaces: [String] = []
    var started: [Started] = []
    var etcd: Started?
    var hostCount = 0
    /// Where every weftd takes its subnets from: etcd by default; KubeBed switches to the Kubernetes API.
    var subnetStore = SubnetStore.etcd

    enum SubnetStore {
        case etcd
        /// --kube-subnet-mgr with this kubeconfig and net-conf.json; host N is node `nodeName(N)`.
        case kubernetes(kubeconfig: String, netConf: String)
    }

    init(hosts: Int) throws {
        tag = "wfw\(getpid() % 100_000)\(UInt16.random(in: 0...UInt16.max) % 1000)"
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("weftd-it-\(tag)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        do {
            try makeUnderlay()
            // hosts 0: etcd's namespace only, for tests of the CLI against etcd.
            for index in stride(from: 1, through: hosts, by: 1) { try addHost(index) }
        } catch {
            tearDown()
            throw error
        }
    }

    var underlay: String { "\(tag)u" }
    func host(_ index: Int) -> String { "\(tag)h\(index)" }
    func container(_ index: Int) -> String { "\(tag)c\(index)" }
    func hostIP(_ index: Int) -> String { "198.18.0.\(index)" }
    /// Host N's Kubernetes Node.
    func nodeName(_ index: Int) -> String { "host\(index)" }

    private func addNamespace(_ name: String) throws {
        try must(["/usr/sbin/ip", "netns", "add", name])
        namespaces.append(name)
        try exec(name, ["/usr/sbin/ip", "link", "set", "lo", "up"])
    }

    @discardableResult
    func exec(_ namespace: String, _ command: [String]) throws -> String {
        try must(["/usr/sbin/ip", "netns", "exec", namespace] + command)
    }

    func execResult(_ namespace: String, _ command: [String]) throws -> CommandResult {
        try run(["/usr/sbin/ip", "netns", "exec", namespace] + command)
    }

    /// iperf3's server in container `index`, bound to `address`, for one test (`once`) or until
    /// the bed is torn down; returns it once it listens on 5201.
    @discardableResult
    func startIPerfServer(in index: Int, address: String, once: Bool = true) throws -> Started {
        let server = try Started(
            ["/usr/sbin/ip", "netns", "exec", container(index), "/usr/bin/iperf3", "-s"] + (once ? ["-1"] : [])
                + ["-B", address],
            logPath: nil
        )
        started.append(server)
        let listening = waitFor(WeftdBeds.hangGuard, interval: .milliseconds(50)) {
            ((try? execResult(container(index), ["/usr/bin/ss", "-Hltn", "src", "\(address):5201"]))?.output ?? "")
                .contains(":5201")
        }
        guard listening != nil else {
            throw BedFailure("iperf3 -s on \(address) in \(container(index)) did not listen")
        }
        return server
    }

    private func makeUnderlay() throws {
        try addNamespace(underlay)
        try exec(underlay, ["/usr/sbin/ip", "link", "add", "br0", "type", "bridge"])
        try exec(underlay, ["/usr/sbin/ip", "addr", "add", "198.18.0.254/24", "dev", "br0"])
        try exec(underlay, ["/usr/sbin/ip", "link", "set", "br0", "up"])
    }

    /// Host N: eth0 198.18.0.N/24 on the bridge, forwarding on; container N behind veth c0/eth0.
    func addHost(_ index: Int) throws {
        let host = host(index)
        let container = container(index)
        try addNamespace(host)
        try addNamespace(container)
        try must([
            "/usr/sbin/ip", "link", "add", "eth0", "netns", host, "type", "veth", "peer", "name", "h\(index)", "netns",
            underlay,
        ])
        try exec(underlay, ["/usr/sbin/ip", "link", "set", "h\(index)", "master", "br0", "up"])
        try exec(host, ["/usr/sbin/ip", "addr", "add", "\(hostIP(index))/24", "dev", "eth0"])
        try exec(host, ["/usr/sbin/ip", "link", "set", "eth0", "up"])
        try exec(host, ["/usr/sbin/sysctl", "-qw", "net.ipv4.ip_forward=1"])
        try must([
            "/usr/sbin/ip", "link", "add", "c0", "netns", host, "type", "veth", "peer", "name", "eth0", "netns",
            container,
        ])
        try exec(host, ["/usr/sbin/ip", "link", "set", "c0", "up"])
        try exec(container, ["/usr/sbin/ip", "link", "set", "eth0", "up"])
        hostCount = max(hostCount, index)
    }

    /// Addresses container N from `subnet` (e.g. 10.244.7.0/24): host side .1, container .2,
    /// default route via .1. Replaces earlier IPv4 addresses.
    func addressContainer(_ index: Int, subnet: String) throws {
        let (base, length) = Self.split(subnet)
        // IPv4 only: without their link-local addresses the veths' IPv6 neighbour discovery fails.
        try exec(host(index), ["/usr/sbin/ip", "-4", "addr", "flush", "dev", "c0"])
        try exec(container(index), ["/usr/sbin/ip", "-4", "addr", "flush", "dev", "eth0"])
        try exec(host(index), ["/usr/sbin/ip", "addr", "add", "\(base).1/\(length)", "dev", "c0"])
        try exec(container(index), ["/usr/sbin/ip", "addr", "add", "\(base).2/\(length)", "dev", "eth0"])
        try exec(container(index), ["/usr/sbin/ip", "route", "replace", "default", "via", "\(base).1"])
    }

    /// "10.244.7.0/24" → ("10.244.7", 24): the bed's subnets are /24s.
    static func split(_ subnet: String) -> (String, Int) {
        let parts = subnet.split(separator: "/")
        let octets = parts[0].split(separator: ".")
        return (octets.prefix(3).joined(separator: "."), Int(parts[1]) ?? 0)
    }

    var etcdDataDirectory: String { directory + "/etcd" }

    func startEtcd(extra: [String] = []) throws {
        etcd = try Started(
            [
                "/usr/sbin/ip", "netns", "exec", underlay, "/usr/bin/etcd", "--name", "bed",
                "--data-dir", etcdDataDirectory,
                "--listen-client-urls", etcdEndpoint, "--advertise-client-urls", etcdEndpoint,
                "--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
                "--initial-cluster", "bed=http://127.0.0.1:2380",
            ] + etcdTLSFlags + extra,
            logPath: directory + "/etcd.log"
        )
        started.append(etcd!)
        guard
            waitFor(.seconds(15), interval: .milliseconds(100), { (try? etcdctl(["endpoint", "health"]).status) == 0 })
                != nil
        else {
            throw BedFailure("etcd did not become healthy: \(etcd!.log.suffix(2000))")
        }
    }

    /// A throwaway PKI (openssl): a CA, etcd's server certificate for 198.18.0.254 and a client
    /// certificate; etcd then serves https and requires client certificates.
    func useTLS() throws {
        let pki = directory + "/pki"
        try FileManager.default.createDirectory(atPath: pki, withIntermediateDirectories: true)
        // etcd's gateway dials etcd's gRPC port with the server certificate as its client certificate.
        try "subjectAltName=IP:198.18.0.254\nextendedKeyUsage=serverAuth,clientAuth\n".write(
            toFile: pki + "/server.ext",
            atomically: true,
            encoding: .utf8
        )
        try "extendedKeyUsage=clientAuth\n".write(toFile: pki + "/client.ext", atomically: true, encoding: .utf8)
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        func openssl(_ arguments: [String]) throws { try must(["/usr/bin/openssl"] + arguments) }
        try openssl(
            ["req", "-x509"] + ec + [
                "-keyout", pki + "/ca.key", "-out", pki + "/ca.crt", "-days", "2", "-subj", "/CN=weftd-it-ca",
            ]
        )
        for name in ["server", "client"] {
            try openssl(
                ["req"] + ec + [
                    "-keyout", "\(pki)/\(name).key", "-out", "\(pki)/\(name).csr", "-subj", "/CN=weftd-it-\(name)",
                ]
            )
            try openssl([
                "x509", "-req", "-in", "\(pki)/\(name).csr", "-CA", pki + "/ca.crt", "-CAkey", pki + "/ca.key",
                "-CAcreateserial", "-out", "\(pki)/\(name).crt", "-days", "2", "-extfile", "\(pki)/\(name).ext",
            ])
        }
        etcdScheme = "https"
        etcdTLSFlags = [
            "--cert-file", pki + "/server.crt", "--key-file", pki + "/server.key",
            "--client-cert-auth", "--trusted-ca-file", pki + "/ca.crt",
        ]
        etcdctlFlags = ["--cacert", pki + "/ca.crt", "--cert", pki + "/client.crt", "--key", pki + "/client.key"]
    }

    /// weftd's flags for the PKI of `useTLS`.
    var weftdTLSFlags: [String] {
        let pki = directory + "/pki"
        return [
            "--etcd-cafile", pki + "/ca.crt", "--etcd-certfile", pki + "/client.crt", "--etcd-keyfile",
            pki + "/client.key",
        ]
    }

    func stopEtcd() {
        etcd?.stop()
        etcd = nil
    }

    func etcdctl(_ arguments: [String]) throws -> CommandResult {
        try run(
            [
                "/usr/sbin/ip", "netns", "exec", underlay, "/usr/bin/etcdctl", "--endpoints", etcdEndpoint,
                "--dial-timeout", "2s", "--command-timeout", "3s",
            ] + etcdctlFlags + arguments,
            environment: ["ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"]
        )
    }

    @discardableResult
    func etcdctlMust(_ arguments: [String]) throws -> String {
        let result = try etcdctl(arguments)
        guard result.status == 0 else {
            throw BedFailure("etcdctl \(arguments.joined(separator: " ")): \(result.output)")
        }
        return result.output
    }

    static let udpConfig = #"{"Network":"10.244.0.0/16","SubnetLen":24,"Backend":{"Type":"udp"}}"#
    static let prefix = "/coreos.com/network"

    func putConfig(_ json: String) throws {
        try etcdctlMust(["put", "\(Self.prefix)/config", json])
    }

    func subnetFile(_ index: Int) -> String { "\(directory)/subnet-\(index).env" }
    /// Every host's subnet file is in one directory, where weftd's default socket would collide.
    func statusSocket(_ index: Int) -> String { "\(directory)/weftd-\(index).sock" }

    /// Starts weftd in each of `hosts` (with `engine`, `vxlanDataplane` and `extra`) and waits until
    /// all are ready and have settled (`settle`): the daemons and their subnets.
    func startReady(
        _ hosts: [Int],
        engine: String = "auto",
        vxlanDataplane: String = "weft",
        extra: [String] = []
    ) throws
        -> (daemons: [Int: Started], subnets: [Int: String])
    {
        var daemons: [Int: Started] = [:]
        for index in hosts {
            daemons[index] = try startWeftd(index, engine: engine, vxlanDataplane: vxlanDataplane, extra: extra)
        }
        let subnets = try waitReady(hosts, daemons)
        settle(subnets)
        return (daemons, subnets)
    }

    /// Waits, up to 5 s and never failing, until each host's route table holds every other host's
    /// subnet. weftd is ready at its first publication; a peer started at the same moment may take
    /// its lease after that listing, and its route then arrives through the watch a moment later,
    /// so a test that pings at once would race it. A test expecting a route to be missing pays the
    /// 5 s and checks for itself.
    func settle(_ subnets: [Int: String]) {
        for index in subnets.keys {
            let others = Set(subnets.filter { $0.key != index }.values)
            _ = waitFor(.seconds(5), interval: .milliseconds(20)) {
                guard let report = try? StatusClient(path: self.statusSocket(index)).routes() else { return false }
                return others.isSubset(of: report.routes.map(\.subnet))
            }
        }
    }

    /// Waits for /readyz 200 in every listed host and returns their subnets.
    func waitReady(_ hosts: [Int], _ daemons: [Int: Started]) throws -> [Int: String] {
        var subnets: [Int: String] = [:]
        for index in hosts {
            let ready = waitFor(.seconds(60), interval: .milliseconds(50)) {
                self.readyz(index) == 200 && self.subnet(index) != nil
            }
            try #require(ready != nil, "weftd \(index) not ready: \(daemons[index]?.log.suffix(3000) ?? "")")
            subnets[index] = subnet(index)!
        }
        return subnets
    }

    /// Starts weftd in host N with a fresh log file; the health server is on 127.0.0.1:8471 there,
    /// the status socket at `statusSocket(N)`. `iface` false leaves the interface to weftd's own
    /// choice. `vxlanDataplane` is "weft" unless a test asks for the kernel's: the vxlan beds were
    /// written for the user-space engine and keep testing it (weftd's own default is the kernel
    /// device). The udp and host-gw backends ignore the flag.
    func startWeftd(
        _ index: Int,
        engine: String = "auto",
        vxlanDataplane: String = "weft",
        iface: Bool = true,
        extra: [String] = []
    ) throws -> Started {
        let store: [String]
        switch subnetStore {
        case .etcd:
            store = [weftdPath, "-etcd-endpoints=\(etcdEndpoint)"]
        case .kubernetes(let kubeconfig, let netConf):
            store = [
                "/usr/bin/env", "NODE_NAME=\(nodeName(index))", weftdPath,
                "--kube-subnet-mgr", "--kubeconfig-file", kubeconfig, "--net-config-path", netConf,
            ]
        }
        let arguments =
            ["/usr/sbin/ip", "netns", "exec", host(index)] + store + (iface ? ["--iface", hostIP(index)] : []) + [
                "--subnet-file", subnetFile(index),
                "--healthz-port", "8471", "--status-socket", statusSocket(index),
                "--engine", engine, "--vxlan-dataplane", vxlanDataplane, "--workers", "1",
            ] + extra
        let process = try Started(arguments, logPath: "\(directory)/weftd-\(index)-\(started.count).log")
        started.append(process)
        return process
    }

    /// /readyz's status code in host N (0 when nothing answers).
    func readyz(_ index: Int) -> Int {
        let result = try? execResult(
            host(index),
            ["/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "1", "http://127.0.0.1:8471/readyz"]
        )
        return Int(result?.output ?? "") ?? 0
    }

    /// The subnet.env weftd N wrote, as a dictionary.
    func subnetEnv(_ index: Int) -> [String: String] {
        guard let text = try? String(contentsOfFile: subnetFile(index), encoding: .utf8) else { return [:] }
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { values[String(parts[0])] = String(parts[1]) }
        }
        return values
    }

    /// The lease subnet of weftd N from its subnet.env: FLANNEL_SUBNET 10.244.7.1/24 → 10.244.7.0/24.
    func subnet(_ index: Int) -> String? {
        guard let value = subnetEnv(index)["FLANNEL_SUBNET"] else { return nil }
        let (base, length) = Self.split(value)
        return "\(base).0/\(length)"
    }

    /// `ping -c count` from container `from` to `address`.
    func ping(from: Int, _ address: String, count: Int = 1, wait: Int = 1) -> CommandResult {
        (try? execResult(
            container(from),
            ["/usr/bin/ping", "-n", "-c", String(count), "-i", "0.2", "-W", String(wait), address]
        ))
            ?? CommandResult(status: -1, output: "")
    }

    func tearDown() {
        for process in started.reversed() { process.stop(SIGKILL, timeout: .seconds(2)) }
        started = []
        for namespace in namespaces.reversed() { _ = try? run(["/usr/sbin/ip", "netns", "del", namespace]) }
        namespaces = []
        // WEFTD_IT_KEEP=1 keeps the logs (weftd-<host>-<n>.log, etcd.log) for a look afterwards.
        if ProcessInfo.processInfo.environment["WEFTD_IT_KEEP"] == nil {
            try? FileManager.default.removeItem(atPath: directory)
        } else {
            print("logs kept in \(directory)")
        }
    }
}
