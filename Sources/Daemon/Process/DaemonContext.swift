import Config
import Logging

/// What the pieces weftd runs (lease manager, engine) are handed: the options, the chosen
/// interface, a logger, and the switches that tell /readyz and systemd how things stand.
public struct DaemonContext: Sendable {
    public let options: DaemonOptions
    public let interface: ExternalInterface
    public let logger: Logger
    public let readiness: Readiness
    public let notifier: SystemdNotifier?
    /// What /metrics, /v1/routes and /v1/stats read; the run loop attaches each dataplane it starts.
    public let status: DaemonStatus
    /// subnet.env at --subnet-file: written by `publish`, kept by the resync.
    let subnetFile: SubnetFile
    /// The peers' PublicIPs from each route-table publication, for the port filter.
    let peerAddresses = PeerAddressFeed()

    public init(
        options: DaemonOptions,
        interface: ExternalInterface,
        logger: Logger,
        readiness: Readiness = Readiness(),
        notifier: SystemdNotifier? = nil,
        status: DaemonStatus = DaemonStatus()
    ) {
        self.options = options
        self.interface = interface
        self.logger = logger
        self.readiness = readiness
        self.notifier = notifier
        self.status = status
        subnetFile = SubnetFile(path: options.subnetFile, logger: logger)
    }

    /// Lease held, subnet.env written, dataplane up: /readyz turns 200 and, the first time,
    /// systemd hears READY=1.
    public func markReady(_ reason: String) {
        guard readiness.markReady(reason) else { return }
        logger.info("ready: \(reason)")
        notify("READY=1\nSTATUS=\(reason)")
    }

    /// /readyz answers 503 with `reason` (e.g. the lease was lost) until markReady again.
    public func markNotReady(_ reason: String) {
        readiness.markNotReady(reason)
        logger.warning("not ready: \(reason)")
        notify("STATUS=\(reason)")
    }

    /// Writes subnet.env at --subnet-file (atomically) and then, with --docker-opts-file, the
    /// Docker options rendered from it as mk-docker-opts.sh would.
    public func publish(_ env: SubnetEnv) throws(ConfigError) {
        try subnetFile.write(env)
        if let path = options.dockerOptionsFile {
            try options.dockerOptions.write(from: options.subnetFile, to: path)
        }
    }

    func notify(_ state: String) {
        notifier?.send(state, warningTo: logger)
    }
}
