import Addressing
import Config
import ControlPlane
import Etcd
import Routes
import Timing

/// flannel's etcd subnet manager: the network config at `<prefix>/config`, leases under
/// `<prefix>/subnets/`, owner records under `<prefix>/weft/owners/`, all on one etcd client.
public struct EtcdSubnetManager: SubnetManager {
    public let client: EtcdClient
    /// --etcd-prefix.
    public let prefix: String

    public init(client: EtcdClient, prefix: String = EtcdPath.defaultPrefix) {
        self.client = client
        self.prefix = prefix
    }

    public var summary: String { "etcd \(client.endpoints.joined(separator: ",")), prefix \(prefix)" }

    public var configLocation: String { EtcdPath.config(prefix: prefix) }

    public func networkConfig() async throws(LeaseError) -> NetworkConfig {
        try await client.networkConfig(prefix: prefix)
    }

    /// The VtepMAC of a vxlan lease under `<prefix>/subnets/` with our PublicIP.
    public func storedVTEPMAC(publicIP: IPv4Address) async throws(LeaseError) -> MACAddress? {
        let listing: RangeResult
        do {
            listing = try await client.range(prefix: EtcdPath.subnets(prefix: prefix) + "/")
        } catch {
            throw LeaseError(.etcd(error))
        }
        return listing.kvs.lazy
            .compactMap { try? LeaseAttributes.parse($0.value) }
            .first { $0.publicIP == publicIP && $0.backendType == "vxlan" }
            .flatMap { try? $0.vxlanData().vtepMAC }
    }

    public func leaseKeeper(_ request: LeaseRequest, log: @escaping LogHandler) -> any LeaseKeeper {
        LeaseManager(client: client, configuration: LeaseManager.Configuration(request, prefix: prefix), log: log)
    }

    public func peerWatcher(
        for lease: AcquiredLease,
        keeper: any LeaseKeeper,
        publisher: RouteTablePublisher,
        log: @escaping LogHandler,
        events: PeerWatchEvents
    ) -> any PeerWatching {
        var configuration = PeerWatcher.Configuration(network: lease.config, localSubnet: lease.subnet, prefix: prefix)
        configuration.localIPv6Subnet = lease.ipv6Subnet
        return PeerWatcher(
            client: client,
            configuration: configuration,
            publisher: publisher,
            log: log,
            onOwnKeyChange: { await keeper.noticeOwnRecordChange(version: $0) },
            onPublish: events.published,
            onFreshness: events.freshness,
            onRecheckLease: { await keeper.recheck() }
        )
    }

    /// Reads `<prefix>/config`, then watches it from the read's revision + 1; on any watch failure
    /// waits (capped backoff) and reads again. etcd being away is not reported: the peer watcher
    /// and the lease keeper report that.
    public func watchConfig(_ report: @escaping @Sendable (Result<NetworkConfig, LeaseError>) -> Void) async {
        let key = EtcdPath.config(prefix: prefix)
        var attempt = 0
        let backoff = Backoff()
        while !Task.isCancelled {
            do {
                let current = try await client.get(key)
                report(Self.reading(current.kvs.first, key: key))
                let watch = try await client.watch(prefix: key, fromRevision: current.revision + 1)
                try await withTaskCancellationHandler {
                    for try await batch in watch {
                        attempt = 0
                        for event in batch where event.kv.key == key {
                            report(Self.reading(event.kind == .put ? event.kv : nil, key: key))
                        }
                    }
                } onCancel: {
                    watch.cancel()
                }
            } catch {
                // Only a broken read or watch reaches here: read again after a wait.
            }
            do { try await Task.sleep(for: backoff.delay(attempt: attempt)) } catch { return }
            attempt += 1
        }
    }

    /// The config `kv` holds, or why it holds none (nil: the key is gone).
    public static func reading(_ kv: KeyValue?, key: String) -> Result<NetworkConfig, LeaseError> {
        guard let kv else { return .failure(LeaseError(.configMissing(key: key))) }
        do {
            return .success(try NetworkConfig.parse(kv.value))
        } catch {
            return .failure(LeaseError(.configInvalid(key: key, error)))
        }
    }

    public func shutdown() async {
        try? await client.shutdown()
    }
}
