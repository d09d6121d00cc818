import ControlPlane
import KubeSubnets
import Logging

/// Kubernetes mode's node-public-ip: an address the operator stored on our Node, which replaces
/// --public-ip before the interface is chosen (flanneld's GetStoredPublicIP, reference §1.10).
/// It must be a local address, and it chooses the interface as --public-ip does.
enum NodePublicIP {
    /// The interface request for `options`, with our Node's node-public-ip in place of
    /// --public-ip when it has one. In etcd mode, the flags' request as it is. flanneld reads the
    /// node only after its informer synced, so it never guesses without the API server; weftd
    /// waits for the API server too (each problem logged once, not ready meanwhile) rather than
    /// choose an interface the annotation would not have chosen.
    static func resolve(
        _ options: DaemonOptions,
        logger: Logger,
        retry: StartupRetry
    ) async throws(CancellationError) -> (InterfaceRequest, from: StoredPublicIP?) {
        let flags = InterfaceRequest(options)
        guard options.kubeSubnetManager else { return (flags, nil) }
        let manager: KubeSubnetManager
        do {
            // Its warnings and errors are the run's to log, with the manager the run makes.
            manager = try KubeSubnetManager(options.kubeSubnetManagerOptions(), warn: { _ in })
        } catch {
            return (flags, nil)
        }
        let stored: StoredPublicIP?
        do {
            stored = try await retry.value { () async throws(LeaseError) -> StoredPublicIP?? in
                .some(try await manager.storedPublicIP())
            }
        } catch {
            // Only cancellation (a stop signal) ends the wait.
            await manager.shutdown()
            throw CancellationError()
        }
        await manager.shutdown()
        guard let stored else { return (flags, nil) }
        var request = flags
        request.publicIP = stored.address
        logger.info(
            "node \(stored.node)'s annotation \(stored.annotation)=\(stored.address) replaces --public-ip\(options.publicIP.map { "=\($0)" } ?? "")"
        )
        return (request, stored)
    }
}
