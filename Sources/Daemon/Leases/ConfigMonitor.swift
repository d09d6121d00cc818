import Config
import ControlPlane
import Logging
import Operator
import Synchronization

/// Follows the network config once the dataplane runs and says, one line per change, when it
/// turns invalid, changes, or comes back. It never touches the running dataplane: flanneld reads
/// the config once too, and a typo in the store must not cut every container off.
struct ConfigMonitor {
    let subnets: any SubnetManager
    /// The config the dataplane was built with.
    let running: NetworkConfig
    let logger: Logger

    /// Until cancelled; only a change of verdict is logged.
    func run() async {
        let verdict = VerdictLog(logger: logger, location: subnets.configLocation)
        await subnets.watchConfig { reading in
            verdict.report(Verdict(reading, running: running))
        }
    }

    enum Verdict: Equatable {
        case matches
        case changed(String)
        case unusable(String)

        init(_ reading: Result<NetworkConfig, LeaseError>, running: NetworkConfig) {
            switch reading {
            case .success(let config):
                // What differs, named as the JSON names it ("Backend.DirectRouting: (none) → true").
                let changes = ConfigSummary.changes(
                    from: ConfigSummary(running, raw: ""),
                    to: ConfigSummary(config, raw: "")
                )
                self =
                    config == running
                    ? .matches
                    : .changed(
                        changes.isEmpty ? "a field Weft does not show" : changes.map(\.line).joined(separator: ", ")
                    )
            case .failure(let error):
                self = .unusable(error.description)
            }
        }
    }

    /// The last verdict, and the line for each new one.
    final class VerdictLog: Sendable {
        private let logger: Logger
        private let location: String
        private let last = Mutex(Verdict.matches)

        init(logger: Logger, location: String) {
            self.logger = logger
            self.location = location
        }

        func report(_ verdict: Verdict) {
            let changed = last.withLock { last in
                defer { last = verdict }
                return last != verdict
            }
            guard changed else { return }
            switch verdict {
            case .matches:
                logger.info("network config at \(location) matches the running dataplane again")
            case .changed(let summary):
                logger.warning(
                    "network config at \(location) changed (\(summary)); the running dataplane keeps the config it started with until weftd restarts"
                )
            case .unusable(let problem):
                logger.warning("\(problem); the running dataplane keeps the config it started with")
            }
        }
    }
}
