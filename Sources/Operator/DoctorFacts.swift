import Config

/// What `weft doctor` found on this host and in etcd. Gathering is the executable's job; judging
/// (`DoctorCheck.evaluate`) is pure, so every verdict can be tested from made-up facts.
public struct DoctorFacts: Sendable {
    public struct EndpointProbe: Equatable, Sendable {
        public var endpoint: String
        /// Why the endpoint did not answer; nil when it did.
        public var error: String?

        public init(endpoint: String, error: String? = nil) {
            self.endpoint = endpoint
            self.error = error
        }
    }

    public enum ConfigState: Sendable {
        /// etcd did not answer, so the config could not be read.
        case unknown
        /// `message` says how to create it (and that v2 data is invisible).
        case missing(key: String, message: String)
        case invalid(key: String, problem: String)
        case valid(key: String, NetworkConfig)
    }

    public enum SubnetFile: Sendable {
        case missing(path: String)
        case unreadable(path: String, problem: String)
        case parsed(path: String, SubnetEnv)
    }

    public enum OwnLease: Sendable {
        /// Not looked up: etcd unreachable or subnet.env names no subnet.
        case unknown
        case missing(key: String)
        case malformed(key: String, problem: String)
        case found(key: String, LeaseAttributes, expiresInSeconds: Int64?)
    }

    /// InterfaceSelector's choice, as weftd with the same flags would make it.
    public struct Interface: Equatable, Sendable {
        public var name: String
        public var address: String
        public var publicIP: String
        public var mtu: Int
        public var reason: String
        /// Other up, non-loopback interfaces with IPv4 (overlay devices left out).
        public var others: [String]
        /// --iface, --iface-regex, --iface-can-reach or --public-ip named it.
        public var requested: Bool

        public init(
            name: String,
            address: String,
            publicIP: String,
            mtu: Int,
            reason: String,
            others: [String],
            requested: Bool
        ) {
            self.name = name
            self.address = address
            self.publicIP = publicIP
            self.mtu = mtu
            self.reason = reason
            self.others = others
            self.requested = requested
        }
    }

    public struct Device: Equatable, Sendable {
        public var name: String
        public var mtu: Int
        public var isUp: Bool
        /// As `ip -d link` names it: "tun" for weftd's, "vxlan" for a kernel flannel's; nil when unknown.
        public var kind: String?

        public init(name: String, mtu: Int, isUp: Bool, kind: String? = nil) {
            self.name = name
            self.mtu = mtu
            self.isUp = isUp
            self.kind = kind
        }
    }

    public enum Rules: Equatable, Sendable {
        /// `nft list table ip weft` (`ip6 weft`) printed this.
        case table(String)
        /// The table does not exist.
        case absent
        /// nft could not be run.
        case unavailable(String)
    }

    /// What flanneld left in the ruleset, as nft sees it (nftables mode, or iptables-nft).
    public enum FlannelLeftovers: Equatable, Sendable {
        /// Each as nft names it: "table ip flannel-ipv4", "chain ip nat FLANNEL-POSTRTG".
        case found([String])
        /// nft could not be asked.
        case unavailable(String)
    }

    public var endpoints: [EndpointProbe] = []
    /// Kubernetes mode: the API server instead of etcd; nil in etcd mode.
    public var kube: KubeFacts?
    public var config = ConfigState.unknown
    public var subnetFile = SubnetFile.missing(path: SubnetEnv.defaultPath)
    public var ownLease = OwnLease.unknown
    public var interface: Result<Interface, InterfaceProblem> = .failure(InterfaceProblem("not checked"))
    /// The overlay device: weftd's TUN (flannel0, flannel.<VNI>), or a kernel flannel's flannel.<VNI>; nil when none exists.
    public var device: Device?
    /// The device name looked for when `device` is nil.
    public var expectedDevice = "flannel0"
    /// The text of /proc/sys/net/ipv4/ip_forward, trimmed; nil when unreadable.
    public var ipForward: String?
    /// The text of /proc/sys/net/ipv6/conf/all/forwarding, trimmed; nil when unreadable (no IPv6).
    public var ipv6Forward: String?
    /// DF probes of the path to each peer (at most `PathProbe.peerLimit`), nil when not probed.
    public var paths: [PathProbe]?
    public var rules = Rules.absent
    /// `table ip6 weft`, read only when the config has EnableIPv6.
    public var ipv6Rules = Rules.absent
    public var flannelLeftovers = FlannelLeftovers.found([])
    /// What the running weftd says about its dataplane through its status socket.
    public var dataplane = DataplaneState.notAsked
    /// The port filter as the running weftd reports it and nft lists it; nil when weftd was not
    /// asked or carries no port (host-gw).
    public var portFilter: PortFilterState?
    /// The same over the IPv6 underlay (`table ip6 weft`), for a dual-stack vxlan lease
    /// (flannel-v6.<VNI>, or the engine's IPv6 socket, on the same port); nil otherwise.
    public var ipv6PortFilter: PortFilterState?

    public init() {}

    /// weftd's port filter (the nft set of peers and the input rule in front of the udp/vxlan port),
    /// set beside the leases weftd holds.
    public struct PortFilterState: Equatable, Sendable {
        /// The udp or vxlan port the filter guards.
        public var port: UInt16
        /// Datagrams and bytes the filter dropped since weftd started, from /v1/stats; nil when weftd
        /// runs without the filter (--port-filter=false).
        public var droppedPackets: UInt64?
        public var droppedBytes: UInt64
        /// Whether the table's input chain drops strangers' datagrams to `port`.
        public var ruleInstalled: Bool
        /// The table it is in: "table ip weft", or "table ip6 weft" for the IPv6 underlay.
        public var table: String
        /// Peers' PublicIPs the set lacks (their datagrams are dropped), and addresses it holds that
        /// no peer has (accepted from anyone there).
        public var missing: [String]
        public var stale: [String]

        public init(
            port: UInt16,
            droppedPackets: UInt64?,
            droppedBytes: UInt64 = 0,
            ruleInstalled: Bool,
            missing: [String] = [],
            stale: [String] = [],
            table: String = "table ip weft"
        ) {
            self.port = port
            self.droppedPackets = droppedPackets
            self.droppedBytes = droppedBytes
            self.ruleInstalled = ruleInstalled
            self.missing = missing
            self.stale = stale
            self.table = table
        }
    }

    public enum DataplaneState: Sendable {
        case notAsked
        /// The status socket did not answer (weftd not running, or another --status-socket).
        case unreachable(socket: String, problem: String)
        case running(RunningDataplane)
    }

    /// weftd's /v1/routes, the part doctor judges.
    public struct RunningDataplane: Equatable, Sendable {
        /// "weft" (the engine) or "kernel"; nil from a weftd older than the field.
        public var dataplane: String?
        public var backend: String
        /// Peers through the dataplane: with vxlan's DirectRouting, those not routed directly.
        public var peers: Int
        /// Peers vxlan's DirectRouting routes directly (a kernel route via the PublicIP).
        public var directPeers: Int
        /// The kernel vxlan dataplane's device, its entry count, how they differ from the lease
        /// table, and why they could not be read; nil for the other dataplanes.
        public var kernelDevice: String?
        public var kernelEntries = 0
        public var kernelDifferences: [String] = []
        public var kernelError: String?

        public init(
            dataplane: String?,
            backend: String,
            peers: Int,
            directPeers: Int = 0,
            kernelDevice: String? = nil,
            kernelEntries: Int = 0,
            kernelDifferences: [String] = [],
            kernelError: String? = nil
        ) {
            self.dataplane = dataplane
            self.backend = backend
            self.peers = peers
            self.directPeers = directPeers
            self.kernelDevice = kernelDevice
            self.kernelEntries = kernelEntries
            self.kernelDifferences = kernelDifferences
            self.kernelError = kernelError
        }
    }
}

/// How large a DF packet reached one peer: ICMP echoes with DF set, sizes searched between the
/// minimum IPv4 MTU and the size the overlay needs, so a path that drops large packets without an
/// ICMP error (a firewall eating them, a bridge port with a smaller MTU) shows itself.
public struct PathProbe: Equatable, Sendable {
    /// Peers probed at most: each bad one costs a few one-second timeouts.
    public static let peerLimit = 16
    public static let smallest = 576

    public var peer: String
    /// The size weftd sends at most to this peer: FLANNEL_MTU + the backend's overhead.
    public var needed: Int
    /// The largest IP packet (bytes) that got an answer; nil when none did, not even the smallest.
    public var largest: Int?

    public init(peer: String, needed: Int, largest: Int?) {
        self.peer = peer
        self.needed = needed
        self.largest = largest
    }
}

public struct InterfaceProblem: Error, Equatable, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// What `weft doctor` found through the Kubernetes API (Kubernetes mode only).
public struct KubeFacts: Sendable {
    public struct Access: Equatable, Sendable {
        /// As RBAC names it: "nodes get", "nodes/status patch".
        public var rule: String
        public var error: String?

        public init(rule: String, error: String?) {
            self.rule = rule
            self.error = error
        }
    }

    public var server: String
    /// Why no client could be made (kubeconfig, in-cluster environment); nil when one was.
    public var clientProblem: String?
    /// Our node's name, or why it is unknown.
    public var node: Result<String, InterfaceProblem>
    public var access: [Access]
    /// Our node's IPv4 podCIDR inside the Network, or why not; nil when not read.
    public var podCIDR: Result<String, InterfaceProblem>?
    /// flannel's annotations on our node by short name ("public-ip"); nil when not read.
    public var annotations: [String: String]?

    public init(
        server: String,
        clientProblem: String? = nil,
        node: Result<String, InterfaceProblem>,
        access: [Access] = [],
        podCIDR: Result<String, InterfaceProblem>? = nil,
        annotations: [String: String]? = nil
    ) {
        self.server = server
        self.clientProblem = clientProblem
        self.node = node
        self.access = access
        self.podCIDR = podCIDR
        self.annotations = annotations
    }
}
