import Addressing
import Daemon
import Foundation
import KernelVXLAN
import Netlink
import Packets
import Routes

/// `weft dataplane --backend vxlan --vxlan-dataplane kernel`: the kernel's vxlan device moves the
/// packets, programmed by the code weftd's default vxlan dataplane runs (`VXLANDevice`: the device,
/// then per peer a permanent neighbour, an FDB entry and an onlink route), on the static route
/// table of --peer. The benchmark harness's weft-kernel-vxlan row runs it beside the reference
/// flannel.1 set up with `ip`, so the two differ only in who programmed the device.
extension Dataplane {
    /// What the kernel dataplane is given, checked before anything in the kernel is touched.
    struct KernelVXLANSetup: Equatable {
        var link: VXLANLink
        var routes: [Route]
    }

    /// The device and the peers' routes from the arguments, or the one line that says what is wrong.
    /// `underlay` is the interface holding --public-ip (its index becomes the device's `dev`).
    func kernelVXLANSetup(underlay: ExternalInterface) throws -> KernelVXLANSetup {
        guard backend == .vxlan else {
            throw CommandFailure("--vxlan-dataplane kernel is for --backend vxlan only")
        }
        if ipv6Network != nil || ipv6Subnet != nil || !ipv6Peer.isEmpty {
            throw CommandFailure(
                "--ipv6-network, --ipv6-subnet and --ipv6-peer are for Weft's engine (--vxlan-dataplane weft); this kernel device carries IPv4"
            )
        }
        if offloads {
            throw CommandFailure(
                "--offloads is for Weft's engine; the kernel's vxlan device uses the kernel's own offloads"
            )
        }
        guard let vtepMAC else {
            throw CommandFailure("--backend vxlan needs --vtep-mac: the MAC this host's lease publishes as VtepMAC")
        }
        if vtepMAC.value == 0 || vtepMAC.byte(0) & 1 != 0 {
            throw CommandFailure(
                "--vtep-mac \(vtepMAC): give the VTEP a unicast MAC (flannel picks a random locally administered one)"
            )
        }
        if vni > 0xFF_FFFF { throw CommandFailure("--vni \(vni): a VXLAN VNI has 24 bits, use 0 to 16777215") }
        let mtu = underlayMTU - 28 - VXLAN.overhead
        guard mtu >= 68 else {
            throw CommandFailure("--underlay-mtu \(underlayMTU) leaves \(mtu) for the vxlan device (IPv4 needs 68)")
        }
        let port = port ?? VXLAN.defaultPort
        let link = VXLANLink(
            name: tun ?? FlannelDevice.name(vxlan: true, vni: vni),
            vni: vni,
            local: underlay.address,
            underlayIndex: Int32(underlay.index),
            port: port,
            learning: false,
            mac: vtepMAC,
            mtu: mtu
        )
        return KernelVXLANSetup(link: link, routes: try routes(port: port))
    }

    /// Sets the device up and its peers' entries, prints `ready engine=kernel workers=0`, waits for
    /// SIGTERM or SIGINT, then deletes the device (with its entries) and prints the report.
    func runKernelVXLAN() throws {
        let underlay: ExternalInterface
        do {
            underlay = try HostNetwork.selectInterface(InterfaceRequest(publicIP: publicIP))
        } catch is InterfaceSelectionError {
            throw CommandFailure(
                "--public-ip \(publicIP) is not an address of any interface here; the kernel device takes its local address and underlay from the interface holding it"
            )
        }
        let setup = try kernelVXLANSetup(underlay: underlay)
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGTERM)
        sigaddset(&signals, SIGINT)
        pthread_sigmask(SIG_BLOCK, &signals, nil)

        let log: @Sendable (String) -> Void = { line in
            FileHandle.standardError.write(Data("weft dataplane: \(line)\n".utf8))
        }
        let name = setup.link.name
        var device = try VXLANDevice(
            link: setup.link,
            localSubnet: subnet,
            network: network,
            publicIP: publicIP,
            log: log
        )
        do {
            let found = try device.setUp()
            log(
                "kernel vxlan device \(name) (index \(device.index), \(found)): VNI \(vni), local \(underlay.address) dev \(underlay.name), dstport \(setup.link.port), MAC \(setup.link.mac!), MTU \(setup.link.mtu!), address \(device.address)/32"
            )
            // A peer the kernel dataplane would refuse fails the command: the harness row must not measure without it.
            if let refused = try device.reconcile(setup.routes).refused.first {
                throw CommandFailure(refused.description)
            }
        } catch {
            if device.index != 0 { Self.deleteLink(index: device.index) }
            throw error
        }
        let index = device.index
        FileHandle.standardOutput.write(Data("ready engine=kernel workers=0\n".utf8))

        var received: Int32 = 0
        while sigwait(&signals, &received) != 0 {}
        let listing = try? device.listing()
        let traffic = Self.linkStatistics(name)
        let statistics = device.statistics
        Self.deleteLink(index: index)
        FileHandle.standardOutput.write(
            Self.kernelReport(device: name, statistics: statistics, listing: listing, traffic: traffic)
                + Data("\n".utf8)
        )
    }

    private static func deleteLink(index: Int32) {
        guard var netlink = try? RouteNetlink() else { return }
        try? netlink.deleteLink(index: index)
    }

    /// The device's own counters (sysfs; `ip netns exec` mounts the namespace's): what crossed it.
    static func linkStatistics(_ name: String) -> [String: UInt64] {
        var counters: [String: UInt64] = [:]
        for counter in ["rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "rx_dropped", "tx_dropped", "tx_errors"] {
            guard
                let text = try? String(contentsOfFile: "/sys/class/net/\(name)/statistics/\(counter)", encoding: .utf8),
                let value = UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines))
            else { continue }
            counters[counter] = value
        }
        return counters
    }

    /// One JSON object: {"engine": "kernel", "workers": 0, "device", "peers", "entries_written",
    /// "entries_removed", "entries": {"neighbours", "fdb", "routes"} as the kernel held them at the
    /// stop (null if they could not be read), "device_traffic": {counter: n}}.
    static func kernelReport(
        device: String,
        statistics: VXLANDevice.Statistics,
        listing: VXLANDevice.Listing?,
        traffic: [String: UInt64]
    ) -> Data {
        let entries: Any =
            listing.map { listing -> [String: [String]] in
                [
                    "neighbours": listing.neighbours.map(\.description), "fdb": listing.fdb.map(\.description),
                    "routes": listing.routes.map(\.description),
                ]
            } ?? NSNull()
        let object: [String: Any] = [
            "engine": "kernel",
            "workers": 0,
            "device": device,
            "peers": statistics.peers,
            "entries_written": statistics.written,
            "entries_removed": statistics.removed,
            "entries": entries,
            "device_traffic": traffic,
        ]
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
    }
}
