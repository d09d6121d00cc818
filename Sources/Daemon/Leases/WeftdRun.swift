import Addressing
import Config
import ControlPlane
import Engine
import EtcdSubnets
import Foundation
import KubeSubnets
import Logging
import Netlink
import Timing

/// What weftd runs between startup and a stop signal: read the network config, take the subnet
/// lease, start the dataplane, write subnet.env, then keep the lease and follow it.
///
/// Order and failure policy follow flanneld: a missing or invalid config and an unreachable etcd
/// are waited out (one log line per distinct problem, not ready meanwhile); after the first lease
/// nothing in etcd tears the running dataplane down except our lease moving to another subnet.
/// A stop keeps the lease (no revoke), so a restart finds its subnet again.
public enum WeftdRun {
    public static let body: WeftDaemon.Body = { context in
        try await WeftdRunner(context: context).run()
    }
}

struct WeftdRunner {
    let context: DaemonContext
    /// --ip-masq and --iptables-forward-rules: installed for each lease before ready.
    let rules: LeaseTrafficRules
    var options: DaemonOptions { context.options }
    var logger: Logger { context.logger }

    init(context: DaemonContext) {
        self.context = context
        rules = LeaseTrafficRules(context: context)
    }

    func run() async throws {
        let subnets = try makeSubnetManager()
        do {
            try await serve(subnets)
        } catch {
            await subnets.shutdown()
            throw error
        }
        await subnets.shutdown()
    }

    /// The subnet manager the flags choose: the Kubernetes API's with --kube-subnet-mgr, else etcd's.
    func makeSubnetManager() throws -> any SubnetManager {
        if options.kubeSubnetManager {
            do {
                let manager = try KubeSubnetManager(
                    options.kubeSubnetManagerOptions(),
                    warn: { [logger] in logger.warning("\($0)") }
                )
                for warning in manager.warnings { logger.warning("\(warning)") }
                logger.info("subnet manager: \(manager.summary)")
                return manager
            } catch {
                throw WeftdError(description: "\(error)")
            }
        }
        do {
            let client = try options.makeEtcdClient(warning: { logger.warning("\($0)") })
            return EtcdSubnetManager(client: client, prefix: options.etcdPrefix)
        } catch {
            throw WeftdError(description: "\(error)")
        }
    }

    private func serve(_ subnets: any SubnetManager) async throws {
        let problems = ProblemLog(logger: logger)
        let initial = try await retrying(problems) { () async throws(LeaseError) -> NetworkConfig? in
            try await subnets.networkConfig()
        }
        // As flanneld's LookupExtIface fails on a dual-stack network without an IPv6 address.
        if let refusal = Self.ipv6Refusal(
            initial,
            interface: context.interface,
            vxlanDataplane: options.vxlanDataplane
        ) {
            throw WeftdError(description: refusal)
        }
        // Before any lease, as flannel's hostgw.New runs before RegisterNetwork.
        if initial.backend.kind == .hostGateway {
            let interface = context.interface
            if let refusal = Self.hostGatewayRefusal(publicIP: interface.publicIP, interfaceAddress: interface.address)
            {
                throw WeftdError(description: refusal)
            }
            if initial.ipv6 != nil, let publicIPv6 = interface.publicIPv6, let address = interface.ipv6Address,
                let refusal = Self.hostGatewayRefusal(publicIP: publicIPv6, interfaceAddress: address)
            {
                throw WeftdError(description: refusal)
            }
        }

        // The backend is fixed for this run: it decides what our lease says (flanneld too reads
        // the config once). A lease later taken under another backend ends the run (see start).
        var identity = Identity(backend: initial.backend.kind, vni: initial.backend.vni, vtepMAC: MACAddress(0))
        if identity.backend == .vxlan {
            identity.vtepMAC = try await retrying(problems) { () async throws(LeaseError) -> MACAddress? in
                try await VTEPIdentity.choose(
                    subnets: subnets,
                    publicIP: context.interface.publicIP,
                    subnetFile: options.subnetFile,
                    logger: logger
                )
            }
        }
        let manager = subnets.leaseKeeper(leaseRequest(identity, config: initial), log: Dataplane.logHandler(logger))
        let first = try await retrying(problems) { () async throws(LeaseError) -> AcquiredLease? in
            try await manager.acquire()
        }
        switch await runGenerations(first: first, identity: identity, subnets: subnets, manager: manager) {
        case .failed(let error):
            throw error
        case .stopped(let wasReady):
            guard Task.isCancelled else {
                throw WeftdError(description: "the lease keeper stopped following the lease; see the lines above")
            }
            if wasReady { await rules.removeOnStop() }
        }
    }

    /// How the run ended.
    enum RunEnd {
        /// Cancelled (SIGTERM); `wasReady` once a dataplane had been ready, and the rules installed.
        case stopped(wasReady: Bool)
        /// A dataplane could not be started where no retry is due.
        case failed(any Error)
    }

    /// Why the next dataplane is started, which decides what its failure to start means.
    enum Attempt {
        /// The run's first: a failure ends the run with its error.
        case first
        /// After the last one stopped forwarding: tried again, paced by `RebuildPacing`, until one starts.
        case rebuild
        /// For a lease that moved or came back under another config: a failure ends the run.
        case leaseChange
    }

    /// What ended a dataplane's generation (see `generation`).
    enum GenerationEnd {
        /// The run was cancelled, or the lease keeper's changes ended.
        case stopped
        /// It could not be built, or not made ready (subnet.env).
        case notStarted(any Error)
        /// It stopped forwarding (`RunEvent.dataplaneFailed`): build one again for the same lease.
        case failed
        /// The lease moved, or came back under another config: build one for it.
        case leaseChanged(AcquiredLease)
    }

    /// Runs one dataplane after another until the run is cancelled or one cannot be started.
    /// Keeping the lease, the traffic rules' resync and their peer following start with the
    /// first dataplane ready, and run beside every generation.
    private func runGenerations(
        first: AcquiredLease,
        identity: Identity,
        subnets: any SubnetManager,
        manager: any LeaseKeeper
    ) async -> RunEnd {
        // The lease's changes and the dataplanes' failures, in one stream. Each dataplane gets a
        // serial, so a failure reported by one already replaced is ignored.
        let (events, sink) = AsyncStream<RunEvent>.makeStream()
        var pending = events.makeAsyncIterator()
        var lease = first
        var attempt = Attempt.first
        var serial = 0
        var rebuilds = RebuildPacing()
        var lastError: String?
        var wasReady = false
        return await withDiscardingTaskGroup { shared -> RunEnd in
            defer { shared.cancelAll() }
            while true {
                if attempt == .rebuild {
                    let wait = rebuilds.next()
                    if wait > .zero {
                        do { try await Task.sleep(for: wait) } catch { return .stopped(wasReady: wasReady) }
                    }
                    if Task.isCancelled { return .stopped(wasReady: wasReady) }
                }
                serial += 1
                let subnet = lease.label
                let end = await generation(
                    &lease,
                    serial: serial,
                    identity: identity,
                    subnets: subnets,
                    manager: manager,
                    events: &pending,
                    sink: sink
                ) {
                    if attempt == .rebuild { logger.info("dataplane for \(subnet) rebuilt") }
                    lastError = nil
                    guard !wasReady else { return }
                    wasReady = true
                    shared.addTask { await manager.run() }
                    shared.addTask { await rules.resync() }
                    shared.addTask { await rules.followPeers() }
                    shared.addTask {
                        for await change in manager.changes { sink.yield(.lease(change)) }
                        sink.finish()
                    }
                }
                switch end {
                case .stopped:
                    return .stopped(wasReady: wasReady)
                case .failed:
                    attempt = .rebuild
                case .leaseChanged(let changed):
                    lease = changed
                    attempt = .leaseChange
                case .notStarted(let error) where attempt == .first:
                    return .failed(error)
                case .notStarted(let error) where attempt == .leaseChange:
                    logger.error("cannot start the dataplane for \(lease.label): \(error); stopping")
                    return .failed(WeftdError(description: "the dataplane could not be rebuilt; see the lines above"))
                case .notStarted(let error):
                    let text = "cannot rebuild the dataplane for \(lease.label): \(error); trying again"
                    if text != lastError { logger.error("\(text)") }
                    lastError = text
                    context.readiness.markNotReady(text)
                }
            }
        }
    }

    /// One dataplane for `lease`, from start to stop: built, its services and the config monitor
    /// run as child tasks, ready (`onReady` after the rules, subnet.env and readiness) only once
    /// the peers' first publication is in effect, then following the run's events until one ends
    /// it. The services end before the dataplane is stopped.
    private func generation(
        _ lease: inout AcquiredLease,
        serial: Int,
        identity: Identity,
        subnets: any SubnetManager,
        manager: any LeaseKeeper,
        events: inout AsyncStream<RunEvent>.Iterator,
        sink: AsyncStream<RunEvent>.Continuation,
        onReady: () -> Void
    ) async -> GenerationEnd {
        let dataplane: any LeaseDataplane
        do {
            dataplane = try build(lease, identity: identity, subnets: subnets, manager: manager) { reason in
                sink.yield(.dataplaneFailed(serial: serial, reason: reason))
            }
        } catch {
            return .notStarted(error)
        }
        let config = lease.config
        let end = await withDiscardingTaskGroup { services -> GenerationEnd in
            defer { services.cancelAll() }
            services.addTask { await dataplane.run() }
            guard await dataplane.awaitFirstReconcile() else { return .stopped }
            do {
                try await becomeReady(lease, dataplane)
            } catch {
                return .notStarted(error)
            }
            onReady()
            services.addTask { [logger] in
                await ConfigMonitor(subnets: subnets, running: config, logger: logger).run()
            }
            return await follow(&events, serial: serial, lease: &lease, dataplane: dataplane)
        }
        context.status.detach()
        await dataplane.stop()
        return end
    }

    /// Builds a dataplane for `lease`: the engine, the kernel vxlan device or host-gw's route
    /// socket, whose services `run` then runs.
    private func build(
        _ lease: AcquiredLease,
        identity: Identity,
        subnets: any SubnetManager,
        manager: any LeaseKeeper,
        onFailure: @escaping @Sendable (String) -> Void
    ) throws -> any LeaseDataplane {
        guard lease.config.backend.kind == identity.backend, lease.config.backend.vni == identity.vni else {
            throw WeftdError(
                description:
                    "the network config's Backend changed from \(identity.backend.rawValue) to \(lease.config.backend.kind.rawValue) (or its VNI changed) since weftd started; restart weftd to publish a lease for it"
            )
        }
        // A lease taken again under a config changed since the start (EnableIPv4 turned off, say).
        if let refusal = Self.ipv6Refusal(
            lease.config,
            interface: context.interface,
            vxlanDataplane: options.vxlanDataplane
        ) {
            throw WeftdError(description: refusal)
        }
        if identity.backend == .hostGateway {
            do {
                return try HostGatewayDataplane(lease: lease, context: context, subnets: subnets, leaseKeeper: manager)
            } catch {
                throw WeftdError(description: "cannot start host-gw routing for \(lease.label): \(error)")
            }
        }
        if identity.backend == .vxlan && options.vxlanDataplane == .kernel {
            do throws(NetlinkError) {
                return try KernelVXLANDataplane(
                    lease: lease,
                    vtepMAC: identity.vtepMAC,
                    context: context,
                    subnets: subnets,
                    leaseKeeper: manager,
                    onFailure: onFailure
                )
            } catch {
                // rtnl_newlink's answer for a kind no module provides.
                let hint =
                    error.code == EOPNOTSUPP
                    ? "; the kernel has no vxlan support (modprobe vxlan), or run weftd with --vxlan-dataplane=weft"
                    : ""
                throw WeftdError(
                    description: "cannot set up the kernel vxlan device for \(lease.label): \(error)\(hint)"
                )
            }
        }
        do {
            return try Dataplane(
                lease: lease,
                vtepMAC: identity.vtepMAC,
                context: context,
                subnets: subnets,
                keeper: manager,
                onFailure: onFailure
            )
        } catch {
            throw WeftdError(description: "cannot start the engine for \(lease.label): \(error)")
        }
    }

    /// Once the peers' first publication is in effect: installs the traffic rules, writes
    /// subnet.env and marks the daemon ready.
    private func becomeReady(_ lease: AcquiredLease, _ dataplane: any LeaseDataplane) async throws {
        // Before subnet.env and readiness, as flanneld installs its rules before writing it.
        await rules.install(for: lease)
        do {
            try context.publish(
                SubnetEnv(
                    network: lease.config.network,
                    subnet: lease.subnet,
                    ipv6Network: lease.ipv6Subnet == nil ? nil : lease.config.ipv6?.network,
                    ipv6Subnet: lease.ipv6Subnet,
                    mtu: dataplane.mtu,
                    ipMasq: options.ipMasq
                )
            )
        } catch {
            throw WeftdError(description: "\(error)")
        }
        context.status.attach(dataplane)
        markReady(lease, dataplane)
    }

    /// Follows the run's events for the running `dataplane` until one ends its generation; a
    /// lease taken again for the same subnet and config only updates `current`.
    private func follow(
        _ events: inout AsyncStream<RunEvent>.Iterator,
        serial: Int,
        lease current: inout AcquiredLease,
        dataplane: any LeaseDataplane
    ) async -> GenerationEnd {
        // Ends when the run is cancelled (SIGTERM): the iteration returns nil then.
        while let event = await events.next() {
            switch event {
            case .dataplaneFailed(let failed, let reason):
                guard failed == serial else { continue }
                logger.error("the dataplane for \(current.label) stopped forwarding (\(reason)); rebuilding it")
                rules.withdrawReady()
                context.readiness.markNotReady("rebuilding the dataplane for \(current.label): \(reason)")
                return .failed
            case .lease(.acquired(let lease))
            where lease.leaseKey == dataplane.leaseKey && lease.config == dataplane.config:
                current = lease
                if !context.readiness.current.isReady {
                    logger.info("lease \(lease.label) taken again; the dataplane stayed up")
                    markReady(lease, dataplane)
                }
            case .lease(.acquired(let lease)):
                current = lease
                if lease.leaseKey != dataplane.leaseKey {
                    logger.error(
                        "LEASE MOVED from \(dataplane.leaseKey.label) to \(lease.label): rebuilding the dataplane; containers addressed from \(dataplane.leaseKey.label) must be restarted"
                    )
                } else {
                    logger.warning(
                        "lease \(lease.label) taken again under a changed network config: rebuilding the dataplane"
                    )
                }
                rules.withdrawReady()
                context.readiness.markNotReady("rebuilding the dataplane for \(lease.label)")
                return .leaseChanged(lease)
            case .lease(.renewed):
                break  // the lease manager logs renewals at debug level
            case .lease(.lost(let lease, let reason)):
                rules.withdrawReady()
                context.markNotReady(
                    "lease \(lease.label) lost (\(reason)); taking it again, the dataplane stays up meanwhile"
                )
            }
        }
        return .stopped
    }

    /// What the run loop reacts to.
    enum RunEvent: Sendable {
        case lease(LeaseChange)
        /// The dataplane started with this serial lost a worker (`Dataplane`'s onFailure).
        case dataplaneFailed(serial: Int, reason: String)
    }

    /// flannel's backoff for recreating a deleted flannel.1: 1 s doubling to 30 s. A dataplane that
    /// fails again soon after a rebuild waits longer before the next; one that ran a minute resets it.
    struct RebuildPacing {
        static let backoff = Backoff(initial: .seconds(1), maximum: .seconds(30))
        static let settled: Duration = .seconds(60)
        var attempt = 0
        var lastRebuild: ContinuousClock.Instant?

        /// How long to wait before the next rebuild, and counts it.
        mutating func next(now: ContinuousClock.Instant = .now) -> Duration {
            if let lastRebuild, now - lastRebuild >= Self.settled { attempt = 0 }
            defer {
                attempt += 1
                lastRebuild = now
            }
            return attempt == 0 ? .zero : Self.backoff.delay(attempt: attempt - 1)
        }
    }

    /// Ready only with the traffic rules in place (see LeaseTrafficRules.markReady).
    private func markReady(_ lease: AcquiredLease, _ dataplane: any LeaseDataplane) {
        rules.markReady("lease \(lease.label) (\(lease.origin)); \(dataplane.summary)")
    }

    /// What this run publishes in its lease.
    struct Identity {
        var backend: BackendConfig.Kind
        var vni: UInt32
        var vtepMAC: MACAddress
    }

    private func leaseRequest(_ identity: Identity, config: NetworkConfig) -> LeaseRequest {
        // The node ID guards etcd's leases (owner records); in Kubernetes mode the Node is the identity.
        var request = LeaseRequest(
            attributes: Self.leaseAttributes(identity, interface: context.interface, config: config),
            previousSubnet: context.subnetFile.previousSubnet(fitting: config),
            node: options.kubeSubnetManager ? nil : NodeIdentity.resolve(nodeID: options.nodeID, logger: logger)
        )
        request.previousIPv6Subnet = context.subnetFile.previousIPv6Subnet(fitting: config)
        request.ttl = options.subnetLeaseTTL
        request.renewMargin = options.subnetLeaseRenewMargin
        return request
    }

    /// What the lease publishes: the interface's PublicIP and, when the network has IPv6, its
    /// PublicIPv6 (--public-ipv6, else the interface's IPv6 address), as flanneld's ExtV6Addr.
    static func leaseAttributes(
        _ identity: Identity,
        interface: ExternalInterface,
        config: NetworkConfig
    ) -> LeaseAttributes {
        // flanneld sets PublicIP only with EnableIPv4: an IPv6-only lease publishes 0.0.0.0, and
        // its host is known by PublicIPv6.
        let publicIP = config.isIPv6Only ? .any : interface.publicIP
        var attributes: LeaseAttributes =
            switch identity.backend {
            case .vxlan:
                .vxlan(
                    publicIP: publicIP,
                    // flannel.<VNI>'s, which an IPv6-only network does not have (flanneld writes none there).
                    data: config.isIPv6Only
                        ? nil : VXLANLeaseData(configuredVNI: identity.vni, vtepMAC: identity.vtepMAC),
                    // flannel-v6.<VNI>'s VNI and MAC, as flanneld publishes them for a dual-stack network.
                    dataV6: config.ipv6 == nil
                        ? nil
                        : VXLANLeaseData(
                            configuredVNI: identity.vni,
                            vtepMAC: VTEPIdentity.ipv6MAC(from: identity.vtepMAC)
                        )
                )
            case .hostGateway: .hostGateway(publicIP: publicIP)
            case .udp: .udp(publicIP: publicIP)
            }
        if config.ipv6 != nil { attributes.publicIPv6Address = interface.publicIPv6 }
        return attributes
    }

    /// flannel's NAT check for host-gw, as one line, or nil: peers route to our PublicIP (or
    /// PublicIPv6) as an on-link gateway, so it must be the address our interface holds, not one a
    /// NAT forwards.
    static func hostGatewayRefusal<Address: IPAddress>(publicIP: Address, interfaceAddress: Address) -> String? {
        guard publicIP != interfaceAddress else { return nil }
        let (name, flag) = Address.bitWidth == 32 ? ("PublicIP", "--public-ip") : ("PublicIPv6", "--public-ipv6")
        return
            "your \(name) \(publicIP) differs from interface IP \(interfaceAddress), meaning that probably you're on a NAT, which is not supported by host-gw backend; "
            + "drop \(flag) (peers must reach \(interfaceAddress) on one L2 segment) or use the vxlan backend"
    }

    /// Why a dual-stack network cannot run here, as one line, or nil: an interface without an
    /// IPv6 address (the lease would publish no PublicIPv6 and no peer could route our IPv6
    /// subnet). vxlan carries a dual-stack network's IPv6 over the IPv6 underlay on either
    /// dataplane (the kernel's flannel-v6.<VNI>, or the engine's IPv6 socket). An IPv6-only network
    /// (EnableIPv4 false) runs where flanneld runs one: host-gw, and vxlan on the kernel's
    /// flannel-v6.<VNI>, with etcd or in Kubernetes mode (the Node's IPv6 podCIDR). The engine
    /// (udp, --vxlan-dataplane=weft) carries the IPv4 overlay: refused in one line.
    static func ipv6Refusal(
        _ config: NetworkConfig,
        interface: ExternalInterface,
        vxlanDataplane: DaemonOptions.VXLANDataplane
    ) -> String? {
        guard let ipv6 = config.ipv6 else { return nil }
        if config.isIPv6Only {
            switch config.backend.kind {
            case .udp:
                return
                    "an IPv6-only network (EnableIPv4 false) cannot use the udp backend, which carries the IPv4 overlay (flannel's is IPv4 only); use Backend.Type host-gw or vxlan"
            case .vxlan where vxlanDataplane == .weft:
                return
                    "an IPv6-only network (EnableIPv4 false) with the vxlan backend needs --vxlan-dataplane=kernel (flannel-v6.\(config.backend.vni) over the IPv6 underlay, as flanneld runs it); the user-space engine carries the IPv4 overlay"
            case .vxlan, .hostGateway:
                break
            }
        }
        if interface.ipv6Address == nil {
            return
                "the network config has EnableIPv6 (IPv6Network \(ipv6.network)) but interface \(interface.name) has no usable IPv6 address; "
                + "add one to \(interface.name), choose an interface that has one with --iface, or set EnableIPv6 false"
        }
        return nil
    }

    /// Runs `attempt` until it yields a value, logging each distinct failure once and keeping
    /// the daemon not ready meanwhile. `attempt` returns nil for a problem it reported itself.
    private func retrying<T>(_ problems: ProblemLog, _ attempt: () async throws(LeaseError) -> T?) async throws -> T {
        try await StartupRetry(
            problems: problems,
            waiting: { [context] reason in
                context.readiness.markNotReady(reason)
                context.notify("STATUS=\(reason)")
            }
        ).value(attempt)
    }
}
