import ControlPlane
import KubeSubnets
import Logging

/// Kubernetes mode's node-public-ip: an address the operator stored on our Node, which replaces
/// --public-ip before the interface is chosen (flanneld's GetStoredPublicIP, reference §1.10).
/// It must be a local address, and it chooses the interface as --public-ip does.
enum NodePublicIP {
    enum Outcome: Sendable {
        /// The request to choose the interface with, and the annotation that changed it, if any.
        case request(InterfaceRequest, from: StoredPublicIP?)
        /// A stop signal arrived while the API server was being waited for.
        case stopped(Int32)
    }

    /// The interface request for `options`, with our Node's node-public-ip in place of
    /// --public-ip when it has one. In etcd mode, the flags' request as it is. flanneld reads the
    /// node only after its informer synced, so it never guesses without the API server; weftd
    /// waits for the API server too (each problem logged once, not ready meanwhile) rather than
    /// choose an interface the annotation would not have chosen.
    static func resolve(
        _ options: DaemonOptions,
        logger: Logger,
        retry: StartupRetry,
        stop: StopSignals
    ) async -> Outcome {
        let flags = InterfaceRequest(options)
        guard options.kubeSubnetManager else { return .request(flags, from: nil) }
        let manager: KubeSubnetManager
        do {
            // Its warnings and errors are the run's to log, with the manager the run makes.
            manager = try KubeSubnetManager(options.kubeSubnetManagerOptions(), warn: { _ in })
        } catch {
            return .request(flags, from: nil)
        }
        let outcome = await withTaskGroup(of: Outcome?.self) { group in
            group.addTask {
                let stored: StoredPublicIP?
                do {
                    stored = try await retry.value { () async throws(LeaseError) -> StoredPublicIP?? in
                        .some(try await manager.storedPublicIP())
                    }
                } catch {
                    return nil  // cancelled: the stop signal won
                }
                var request = flags
                if let stored { request.publicIP = stored.address }
                return .request(request, from: stored)
            }
            group.addTask {
                guard let number = await stop.wait() else { return nil }
                return .stopped(number)
            }
            var first: Outcome?
            while first == nil, let next = await group.next() { first = next }
            group.cancelAll()
            return first ?? .request(flags, from: nil)
        }
        await manager.shutdown()
        if case .request(let request, let stored?) = outcome {
            logger.info(
                "node \(stored.node)'s annotation \(stored.annotation)=\(stored.address) replaces --public-ip\(options.publicIP.map { "=\($0)" } ?? "")"
            )
            return .request(request, from: stored)
        }
        return outcome
    }
}
