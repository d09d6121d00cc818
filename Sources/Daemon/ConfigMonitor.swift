import Config
import ControlPlane
import Etcd
import Logging

/// Watches `<prefix>/config` once the dataplane runs and says, one line per change, when it turns
/// invalid, changes, or comes back. It never touches the running dataplane: flanneld reads the
/// config once too, and a typo in etcd must not cut every container off.
struct ConfigMonitor {
    let client: EtcdClient
    let prefix: String
    /// The config the dataplane was built with.
    let running: NetworkConfig
    let logger: Logger

    private var key: String { EtcdPath.config(prefix: prefix) }

    /// Until cancelled: read, then watch from the read's revision + 1; on any watch failure wait
    /// (capped backoff) and read again. Only a change of verdict is logged.
    func run() async {
        var verdict = Verdict.matches
        var attempt = 0
        let backoff = RetryBackoff()
        while !Task.isCancelled {
            do {
                let current = try await client.get(key)
                verdict = report(Verdict(current.kvs.first, running: running, key: key), after: verdict)
                let watch = try await client.watch(prefix: key, fromRevision: current.revision + 1)
                try await withTaskCancellationHandler {
                    for try await batch in watch {
                        attempt = 0
                        for event in batch where event.kv.key == key {
                            verdict = report(Verdict(event.kind == .put ? event.kv : nil, running: running, key: key), after: verdict)
                        }
                    }
                } onCancel: {
                    watch.cancel()
                }
            } catch {
                // etcd being away is the peer watcher's and the lease manager's to report.
                logger.debug("config watch of \(key) interrupted: \(error)")
            }
            do { try await Task.sleep(for: backoff.delay(attempt: attempt)) } catch { return }
            attempt += 1
        }
    }

    private func report(_ verdict: Verdict, after previous: Verdict) -> Verdict {
        guard verdict != previous else { return verdict }
        switch verdict {
        case .matches:
            logger.info("network config at \(key) matches the running dataplane again")
        case .changed(let summary):
            logger.warning("network config at \(key) changed (\(summary)); the running dataplane keeps the config it started with until weftd restarts")
        case .unusable(let problem):
            logger.warning("\(problem); the running dataplane keeps the config it started with")
        }
        return verdict
    }

    enum Verdict: Equatable {
        case matches
        case changed(String)
        case unusable(String)

        init(_ kv: KeyValue?, running: NetworkConfig, key: String) {
            guard let kv else {
                self = .unusable(LeaseError(.configMissing(key: key)).description)
                return
            }
            do {
                let config = try NetworkConfig.parse(kv.value)
                self = config == running ? .matches : .changed("Network \(config.network), SubnetLen \(config.subnetLength), Backend \(config.backend.kind.rawValue)")
            } catch {
                self = .unusable(LeaseError(.configInvalid(key: key, error)).description)
            }
        }
    }
}
