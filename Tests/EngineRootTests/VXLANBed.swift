import Addressing
import Engine
import Foundation
import Glibc
import Routes
import TestSupport
import TestThreads

/// The vxlan backend on `TwoHostBed`: a Weft engine or a kernel flannel.1 on either host, and
/// what the tests need around them (MTU 1450 for the containers, underlay captures read by tshark).
extension TwoHostBed {
    static let vxlanPort: UInt16 = 8472
    static let macA = MACAddress(0x0200_C612_0001)
    static let macB = MACAddress(0x0200_C612_0002)

    /// flannel's vxlan MTU on both ends of both container links, as a CNI given FLANNEL_MTU sets it.
    func useVXLANMTU() throws {
        for (namespace, device) in [(hostA, "ctr0"), (containerA, "eth0"), (hostB, "ctr0"), (containerB, "eth0")] {
            try Self.mustRun(namespace, ["ip", "link", "set", device, "mtu", "1450"])
        }
    }

    /// Makes the veth underlay finish checksums the way a NIC does on the wire. A kernel vxlan
    /// device leaves the inner TCP/UDP checksum to the NIC (local checksum offload: the outer UDP
    /// checksum is computed as if the inner one were done); over veth the datagram reaches the
    /// peer's UDP socket with the inner checksum still unfinished, which a user-space VTEP cannot
    /// see (a UDP socket reports no checksum state) and the peer's TCP then drops. flannel users
    /// hit the same on some drivers (flannel #1279: `ethtool -K flannel.1 tx-checksum-ip-generic off`).
    func finishChecksumsOnTheUnderlay() throws {
        for (namespace, device) in [
            (hostA, "ul0"), (hostA, "to-b"), (hostA, "to-x"), (hostB, "ul0"), (stranger, "ul0"),
        ] {
            try Self.mustRun(namespace, ["ethtool", "-K", device, "tx", "off"])
        }
    }

    /// Host A as flannel's vxlan backend configures it (DESIGN.md §4), with B as its one peer.
    /// `udpChecksum: false` makes it send a zero outer checksum (`noudpcsum`).
    func addKernelVTEPOnA(udpChecksum: Bool = true) throws {
        var link = [
            "ip", "link", "add", "flannel.1", "address", "\(Self.macA)", "type", "vxlan", "id", "1",
            "local", "\(Self.publicA)", "dev", "ul0", "dstport", "\(Self.vxlanPort)", "nolearning",
        ]
        if !udpChecksum { link.append("noudpcsum") }
        try Self.mustRun(hostA, link)
        try Self.mustRun(hostA, ["ip", "link", "set", "flannel.1", "mtu", "1450", "up"])
        try Self.mustRun(hostA, ["ip", "addr", "add", "\(Self.subnetA.network)/32", "dev", "flannel.1"])
        try Self.mustRun(
            hostA,
            [
                "ip", "neigh", "add", "\(Self.subnetB.network)", "lladdr", "\(Self.macB)", "dev", "flannel.1",
                "nud", "permanent",
            ]
        )
        try Self.mustRun(
            hostA,
            ["bridge", "fdb", "append", "\(Self.macB)", "dev", "flannel.1", "dst", "\(Self.publicB)"]
        )
        try Self.mustRun(
            hostA,
            [
                "ip", "route", "add", "\(Self.subnetB)", "via", "\(Self.subnetB.network)", "dev", "flannel.1",
                "onlink",
            ]
        )
    }

    func removeKernelVTEPOnA() throws {
        try Self.mustRun(hostA, ["ip", "link", "del", "flannel.1"])
    }

    /// A Weft vxlan engine in `host` whose one peer is the other host (its VtepMAC from the route).
    func startVXLANEngine(
        in host: TestNamespace,
        kind: EngineKind,
        sourcePorts: Int = EngineConfiguration.defaultSourcePortCount,
        offloads: Bool = false
    ) throws -> Engine {
        let isA = host.name == hostA.name
        let configuration = EngineConfiguration(
            network: Self.network,
            localSubnet: isA ? Self.subnetA : Self.subnetB,
            publicIP: isA ? Self.publicA : Self.publicB,
            port: Self.vxlanPort,
            backend: .vxlan,
            vni: 1,
            vtepMAC: isA ? Self.macA : Self.macB,
            engine: kind == .uring ? .uring : .mmsg,
            sourcePortCount: sourcePorts,
            offloads: offloads
        )
        let peer = Route(
            subnet: isA ? Self.subnetB : Self.subnetA,
            nextHop: NextHop(
                publicIP: isA ? Self.publicB : Self.publicA,
                port: Self.vxlanPort,
                vtepMAC: isA ? Self.macB : Self.macA,
                backend: .vxlan
            )
        )
        return try host.startEngine(configuration, routes: [peer])
    }

    static func mustRun(_ namespace: TestNamespace, _ command: [String]) throws {
        let (status, output) = try execute(namespace, command)
        guard status == 0 else {
            throw TestFailure("\(command.joined(separator: " ")) in \(namespace.name): \(output)")
        }
    }
}

/// tcpdump on one interface of a namespace, into a temporary pcap file that `frames` dissects with
/// tshark as VXLAN on port 8472. The file is removed by `finish`.
final class UnderlayCapture {
    let path: String
    private let process: Process

    init(_ namespace: TestNamespace, device: String) throws {
        path =
            FileManager.default.temporaryDirectory.appendingPathComponent("weft-vxlan-\(UUID().uuidString).pcap").path
        process = try startCapture(
            in: namespace,
            device: device,
            path: path,
            filter: ["udp port \(TwoHostBed.vxlanPort)"]
        )
    }

    /// Stops tcpdump and returns each VXLAN frame, dissected.
    func finish() throws -> [VXLANFrame] {
        Thread.sleep(forTimeInterval: 0.2)
        end(process)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let fields = [
            "ip.src", "ip.dst", "udp.srcport", "udp.dstport", "udp.checksum", "udp.checksum.status", "vxlan.vni",
            "vxlan.flags", "eth.src", "eth.dst", "tcp.srcport", "tcp.dstport", "ip.proto", "ipv6.src", "ipv6.dst",
        ]
        let tshark = Process()
        tshark.executableURL = URL(fileURLWithPath: "/usr/bin/tshark")
        tshark.arguments =
            [
                "-r", path, "-n", "-d", "udp.port==\(TwoHostBed.vxlanPort),vxlan", "-o", "udp.check_checksum:TRUE",
                "-Y", "vxlan", "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=|",
            ]
            + fields.flatMap { ["-e", $0] }
        let pipe = Pipe()
        tshark.standardOutput = pipe
        tshark.standardError = FileHandle.nullDevice
        try tshark.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        tshark.waitUntilExit()
        guard tshark.terminationStatus == 0 else {
            throw TestFailure("tshark -r \(path) exited \(tshark.terminationStatus)")
        }
        return output.split(separator: "\n").map { line in
            let columns = line.split(separator: "\t", omittingEmptySubsequences: false).map {
                $0.split(separator: "|").map(String.init)
            }
            var values: [String: [String]] = [:]
            for (index, name) in fields.enumerated() { values[name] = index < columns.count ? columns[index] : [] }
            return VXLANFrame(values: values)
        }
    }
}

/// One VXLAN datagram as tshark dissected it: outer fields first, inner Ethernet second.
struct VXLANFrame: CustomStringConvertible {
    let values: [String: [String]]

    var outerSource: String? { values["ip.src"]?.first }
    /// Over the IPv6 underlay (no IPv4 header at all): the outer and inner IPv6 addresses.
    var outerIPv6Source: String? { values["ip.src"]?.isEmpty != false ? values["ipv6.src"]?.first : nil }
    var outerIPv6Destination: String? { values["ip.src"]?.isEmpty != false ? values["ipv6.dst"]?.first : nil }
    var innerIPv6Flow: String? {
        guard let addresses = values["ipv6.src"], addresses.count >= 2, let destinations = values["ipv6.dst"],
            let source = values["tcp.srcport"]?.first, let destination = values["tcp.dstport"]?.first
        else { return nil }
        return "[\(addresses[1])]:\(source)>[\(destinations.last ?? "?")]:\(destination)"
    }
    var innerSource: String? { values["ip.src"]?.last }
    var innerDestination: String? { values["ip.dst"]?.last }
    var sourcePort: Int? { values["udp.srcport"]?.first.flatMap { Int($0) } }
    var destinationPort: Int? { values["udp.dstport"]?.first.flatMap { Int($0) } }
    /// The outer UDP checksum field as tshark prints it ("0x0000" when none was sent).
    var checksum: String? { values["udp.checksum"]?.first }
    /// tshark's verdict on the outer checksum: 0 bad, 1 good, 2 not verified (zero: not present).
    var checksumStatus: Int? { values["udp.checksum.status"]?.first.flatMap { Int($0) } }
    var vni: Int? { values["vxlan.vni"]?.first.flatMap { Int($0) } }
    var innerEthernetSource: String? { values["eth.src"].flatMap { $0.count >= 2 ? $0[1] : nil } }
    var innerEthernetDestination: String? { values["eth.dst"].flatMap { $0.count >= 2 ? $0[1] : nil } }
    /// Inner TCP flow (addresses and ports), or nil for other traffic.
    var innerTCPFlow: String? {
        guard let source = values["tcp.srcport"]?.first, let destination = values["tcp.dstport"]?.first else {
            return nil
        }
        return "\(innerSource ?? "?"):\(source)>\(innerDestination ?? "?"):\(destination)"
    }

    var description: String {
        values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.joined(separator: "|"))" }.joined(separator: " ")
    }
}

/// `iperf3 -c` from `client` to `server` (a container address) for `seconds`, `streams` flows: the
/// bits per second the receiver counted. The server is started and stopped here. The client is
/// killed 20 s after its time is up (a stalled path can keep it waiting for ever), which fails.
func iperf3<Address: IPAddress>(
    from client: TestNamespace,
    to server: TestNamespace,
    address: Address,
    seconds: Int = 2,
    streams: Int = 1,
    bitsPerSecondPerStream: String? = nil
) throws -> Double {
    let serverProcess = try server.start(["iperf3", "-s", "-1", "-B", "\(address)"])
    defer { end(serverProcess) }
    let socket = Address.Value.bitWidth == 128 ? "[\(address)]:5201" : "\(address):5201"
    let listening = waitFor(.seconds(10), interval: .milliseconds(20)) {
        ((try? TwoHostBed.execute(server, ["ss", "-Hltn", "src", socket]))?.1 ?? "").contains(":5201")
    }
    guard listening != nil else { throw TestFailure("iperf3 -s on \(address) did not listen") }
    // SIGKILL: children inherit the test runner's blocked SIGTERM.
    let (status, output) = try TwoHostBed.execute(
        client,
        [
            "timeout", "-s", "KILL", "\(seconds + 20)",
            "iperf3", "-c", "\(address)", "-t", "\(seconds)", "-P", "\(streams)",
            "-J", "--connect-timeout", "3000",
        ]
            + (bitsPerSecondPerStream.map { ["-b", $0] } ?? [])
    )
    guard let object = try? JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any],
        let end = object["end"] as? [String: Any], let received = end["sum_received"] as? [String: Any],
        let rate = received["bits_per_second"] as? Double
    else {
        throw TestFailure("iperf3 to \(address) exited \(status): \(output.prefix(400))")
    }
    return rate
}

/// SIGINT, then SIGKILL after a second: Foundation may start children with SIGINT and SIGTERM
/// blocked, and only the process we started is signalled (by its pid).
func end(_ process: Process) {
    if process.isRunning { process.interrupt() }
    let deadline = Date().addingTimeInterval(1)
    while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
}
