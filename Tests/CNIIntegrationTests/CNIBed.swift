import Foundation
import Glibc
import TestSupport

/// The products directory `swift build --build-tests` fills, where the test bundle runs from.
let productsDirectory: String = {
    let executable =
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return URL(fileURLWithPath: executable).deletingLastPathComponent().path
}()
let weftCNIPath = productsDirectory + "/weft-cni"
let weftPath = productsDirectory + "/weft"
let pluginDirectory = "/usr/lib/cni"

/// Why these tests cannot run here, or nil.
let bedUnavailable: String? = {
    if geteuid() != 0 {
        return
            "CNIIntegrationTests need root (network namespaces, TUN devices, the bridge plugin); run swift test as root"
    }
    for tool in [
        "/usr/sbin/ip", "/usr/bin/ping", "/usr/sbin/iptables", "\(pluginDirectory)/bridge",
        "\(pluginDirectory)/host-local",
    ]
    where !FileManager.default.isExecutableFile(atPath: tool) {
        return
            "CNIIntegrationTests need \(tool); install it (apt-get install containernetworking-plugins iproute2 iputils-ping iptables)"
    }
    if !FileManager.default.fileExists(atPath: "/dev/net/tun") {
        return "CNIIntegrationTests need /dev/net/tun for weft dataplane"
    }
    for product in [weftCNIPath, weftPath] where !FileManager.default.isExecutableFile(atPath: product) {
        return "no executable at \(product); run swift build --build-tests first"
    }
    return nil
}()

struct BedFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

@discardableResult
func must(_ arguments: [String]) throws -> String {
    let result = try runCommand(arguments)
    guard result.status == 0 else {
        throw BedFailure("\(arguments.joined(separator: " ")) exited \(result.status): \(result.output)\(result.error)")
    }
    return result.output
}

/// Two hosts joined by one veth on 198.18.0.0/24, each with an empty container namespace for the
/// plugin to wire up, a subnet.env of its own (10.244.N.0/24 in 10.244.0.0/16) and, once
/// `startDataplanes` ran, `weft dataplane` (udp backend) carrying 10.244.0.0/16 between them.
/// Every name carries this run's tag; `tearDown` stops what was started and deletes them.
final class CNIBed {
    static let network = "10.244.0.0/16"
    static let mtu = 1472

    let tag: String
    let directory: String
    var namespaces: [String] = []
    var dataplanes: [Process] = []

    init() throws {
        tag = "wcni\(getpid() % 100_000)\(UInt16.random(in: 0...999))"
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("weft-cni-it-\(tag)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        do {
            try build()
        } catch {
            tearDown()
            throw error
        }
    }

    func host(_ index: Int) -> String { "\(tag)h\(index)" }
    func container(_ index: Int) -> String { "\(tag)c\(index)" }
    func hostIP(_ index: Int) -> String { "198.18.0.\(index)" }
    func subnet(_ index: Int) -> String { "10.244.\(index).0/24" }
    func subnetFile(_ index: Int) -> String { "\(directory)/subnet-\(index).env" }
    func dataDir(_ index: Int) -> String { "\(directory)/cni-\(index)" }
    func ipamDir(_ index: Int) -> String { "\(directory)/ipam-\(index)" }
    func netns(_ index: Int) -> String { "/var/run/netns/\(container(index))" }

    func exec(_ namespace: String, _ command: [String]) throws -> String {
        try must(["/usr/sbin/ip", "netns", "exec", namespace] + command)
    }

    private func addNamespace(_ name: String) throws {
        try must(["/usr/sbin/ip", "netns", "add", name])
        namespaces.append(name)
        try must(["/usr/sbin/ip", "-n", name, "link", "set", "lo", "up"])
    }

    private func build() throws {
        for index in 1...2 {
            try addNamespace(host(index))
            try addNamespace(container(index))
            try
                "FLANNEL_NETWORK=\(Self.network)\nFLANNEL_SUBNET=10.244.\(index).1/24\nFLANNEL_MTU=\(Self.mtu)\nFLANNEL_IPMASQ=false\n"
                .write(toFile: subnetFile(index), atomically: true, encoding: .utf8)
        }
        try must([
            "/usr/sbin/ip", "link", "add", "eth0", "netns", host(1), "type", "veth", "peer", "name", "eth0", "netns",
            host(2),
        ])
        for index in 1...2 {
            try must(["/usr/sbin/ip", "-n", host(index), "addr", "add", "\(hostIP(index))/24", "dev", "eth0"])
            try must(["/usr/sbin/ip", "-n", host(index), "link", "set", "eth0", "up"])
            _ = try exec(host(index), ["/usr/sbin/sysctl", "-qw", "net.ipv4.ip_forward=1"])
        }
    }

    /// `weft dataplane` in each host, each with the other as its peer; returns once both are ready.
    func startDataplanes() throws {
        for index in 1...2 {
            let peer = 3 - index
            let log = "\(directory)/dataplane-\(index).log"
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
            process.arguments = [
                "netns", "exec", host(index), weftPath, "dataplane", "--tun", "flannel0", "--network", Self.network,
                "--subnet", subnet(index), "--public-ip", hostIP(index), "--engine", "mmsg", "--workers", "1",
                "--peer", "\(subnet(peer))=\(hostIP(peer))", "--underlay-mtu", "1500",
            ]
            let handle = FileHandle(forWritingAtPath: log)!
            process.standardOutput = handle
            process.standardError = handle
            process.standardInput = FileHandle.nullDevice
            try process.run()
            dataplanes.append(process)
        }
        for index in 1...2 {
            let log = "\(directory)/dataplane-\(index).log"
            let deadline = Date().addingTimeInterval(20)
            while !((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("ready engine=") {
                guard Date() < deadline, dataplanes[index - 1].isRunning else {
                    throw BedFailure(
                        "weft dataplane in \(host(index)) did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")"
                    )
                }
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
    }

    /// The plugin as a runtime runs it: in the host's namespace, CNI_ variables set, the config on stdin.
    func plugin(
        _ command: String,
        host index: Int,
        containerID: String,
        config: String,
        executable: String = weftCNIPath
    ) throws -> CommandResult {
        try runCommand(
            ["/usr/sbin/ip", "netns", "exec", host(index), executable],
            environment: [
                "CNI_COMMAND": command, "CNI_CONTAINERID": containerID, "CNI_NETNS": netns(index), "CNI_IFNAME": "eth0",
                "CNI_PATH": pluginDirectory, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            ],
            input: config
        )
    }

    /// `ping` from container `index`; true when all `count` replies came back.
    func ping(from index: Int, _ address: String, count: Int = 1) -> Bool {
        (try? runCommand([
            "/usr/sbin/ip", "netns", "exec", container(index), "/usr/bin/ping", "-n", "-q", "-c", "\(count)", "-i",
            "0.2", "-W", "1", address,
        ]))?.status == 0
    }

    func tearDown() {
        for process in dataplanes where process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(5)
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        dataplanes = []
        for namespace in namespaces.reversed() { _ = try? runCommand(["/usr/sbin/ip", "netns", "del", namespace]) }
        namespaces = []
        try? FileManager.default.removeItem(atPath: directory)
    }
}
