import Foundation
import KubeSubnets
import Logging
import ServiceLifecycle

/// weftd from flags to exit status. The lease manager and dataplane run inside `body`: it gets the
/// context, calls markReady once the lease is held and the dataplane is up, and must return soon
/// after its task is cancelled (SIGTERM/SIGINT cancel it, through the service group's shutdown).
public enum WeftDaemon {
    public static let version = "0.1.0"

    public typealias Body = @Sendable (DaemonContext) async throws -> Void

    /// Runs until cancelled: what weftd does while nothing else is wired in.
    public static let idle: Body = { _ in
        while true { try await Task.sleep(for: .seconds(3600)) }
    }

    /// Exit status: 0 after a stop signal or when `body` returns, 1 when startup or `body`
    /// fails, 2 for a bad flag or FLANNELD_* value.
    public static func main(
        arguments: [String],
        environment: [String: String],
        body: @escaping Body = idle
    ) async -> Int32 {
        let options: DaemonOptions
        do {
            switch try DaemonOptions.parse(arguments: arguments, environment: environment) {
            case .help:
                print(DaemonOptions.usage, terminator: "")
                return 0
            case .version:
                print("weftd \(version)")
                return 0
            case .run(let parsed):
                options = parsed
            }
        } catch {
            FileHandle.standardError.write(Data("weftd: \(error)\n".utf8))
            return 2
        }

        var logger = Logger(label: "weftd") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = options.logLevel
        let stop = await StopSignals.trapping()  // before anything slow, so an early SIGTERM is kept
        for flag in options.ignored {
            logger.info("ignoring \(flag): Weft accepts it for compatibility with flanneld and does not use it")
        }

        // In Kubernetes mode the etcd flags are ignored, as flanneld ignores them; the API server is logged with the subnet manager.
        let store =
            options.kubeSubnetManager
            ? "Kubernetes subnet manager, net config \(options.netConfigPath)"
            : "etcd \(options.etcdEndpoints.joined(separator: ",")) prefix \(options.etcdPrefix)"
        logger.info(
            "\(store); subnet file \(options.subnetFile); vxlan dataplane \(options.vxlanDataplane.rawValue); engine \(options.engine.rawValue), workers \(options.workers == 0 ? "one per core" : String(options.workers)); ip-masq \(options.ipMasq)"
        )

        let readiness = Readiness()
        let status = DaemonStatus()
        let notifier = SystemdNotifier(environment: environment)
        var servers: [HealthServer] = []
        if options.healthzPort != 0 {
            do {
                servers.append(
                    try HealthServer(
                        address: options.healthzIP,
                        port: options.healthzPort,
                        readiness: readiness,
                        status: status
                    )
                )
            } catch {
                logger.error("\(error)")
                return 1
            }
            logger.info(
                "health server on http://\(options.healthzIP):\(options.healthzPort) (/healthz, /readyz, /metrics, /v1/routes, /v1/stats)"
            )
        }
        if let path = options.statusSocketPath {
            do {
                servers.append(try HealthServer(socketPath: path, readiness: readiness, status: status))
            } catch {
                logger.error("\(error)")
                return 1
            }
            logger.info("status socket \(path) (weft routes, weft stats; /metrics, /v1/routes, /v1/stats)")
        }

        // The servers answer while weftd waits for the API server here: alive, not ready.
        let prepare: @Sendable () async throws -> DaemonContext = { [logger] in
            let retry = StartupRetry(
                problems: ProblemLog(logger: logger),
                waiting: { reason in
                    readiness.markNotReady(reason)
                    try? notifier?.send("STATUS=\(reason)")
                }
            )
            let (request, stored) = try await NodePublicIP.resolve(options, logger: logger, retry: retry)
            let interface: ExternalInterface
            do {
                interface = try HostNetwork.selectInterface(request)
            } catch {
                let origin =
                    stored.map {
                        " (the public IP is node \($0.node)'s annotation \($0.annotation)=\($0.address), which must be an address of this host; fix it or remove it with kubectl annotate node \($0.node) \($0.annotation)-)"
                    } ?? ""
                throw WeftdError(description: "cannot choose the external interface: \(error)\(origin)")
            }
            logger.info("\(interface.summary)")
            let context = DaemonContext(
                options: options,
                interface: interface,
                logger: logger,
                readiness: readiness,
                notifier: notifier,
                status: status
            )
            context.notify("STATUS=\(readiness.current.reason)")
            return context
        }
        let run = DaemonRunService(
            logger: logger,
            readiness: readiness,
            notifier: notifier,
            prepare: prepare,
            body: body
        )
        return await serve(run, servers: servers, until: stop, logger: logger)
    }

    /// The run loop for a context made elsewhere (tests): `body` runs until it returns, throws, or
    /// `stopSignal` yields a signal number; then systemd hears STOPPING=1 and `body` is cancelled
    /// and awaited.
    public static func run(
        _ context: DaemonContext,
        until stopSignal: @escaping @Sendable () async -> Int32?,
        body: @escaping Body
    ) async -> Int32 {
        let run = DaemonRunService(
            logger: context.logger,
            readiness: context.readiness,
            notifier: context.notifier,
            prepare: { context },
            body: body
        )
        return await serve(run, servers: [], until: stopSignal, logger: context.logger)
    }

    /// weftd's services under one ServiceGroup. The first to finish (a stop signal, or the run
    /// returning or failing) shuts the group down gracefully in reverse order: the run (lease
    /// keeping and traffic rules, then the dataplane), then the health servers, last, so /readyz
    /// and the status endpoints answer until the rest has stopped.
    static func serve(
        _ run: DaemonRunService,
        servers: [HealthServer],
        until stopSignal: @escaping @Sendable () async -> Int32?,
        logger: Logger
    ) async -> Int32 {
        let signals = StopSignals(first: stopSignal, received: { run.stop(by: $0) })
        let services: [any Service] = servers.map { $0 as any Service } + [run, signals]
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services.map {
                    ServiceGroupConfiguration.ServiceConfiguration(
                        service: $0,
                        successTerminationBehavior: .gracefullyShutdownGroup,
                        failureTerminationBehavior: .gracefullyShutdownGroup
                    )
                },
                logger: logger
            )
        )
        do {
            try await group.run()
        } catch {
            logger.error("\(error)")
            return 1
        }
        return run.status
    }
}
