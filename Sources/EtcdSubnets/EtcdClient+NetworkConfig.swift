import Config
import ControlPlane
import Etcd

extension EtcdClient {
    /// Reads and validates `<prefix>/config`. A missing key is `.configMissing`, whose message
    /// gives the etcdctl command that creates it; flannel retries every second, and so should the caller.
    public func networkConfig(prefix: String) async throws(LeaseError) -> NetworkConfig {
        let key = EtcdPath.config(prefix: prefix)
        let result: RangeResult
        do {
            result = try await get(key)
        } catch {
            ControlPlaneMetrics.etcdErrors("config").increment()
            throw LeaseError(.etcd(error))
        }
        guard let kv = result.kvs.first else { throw LeaseError(.configMissing(key: key)) }
        do {
            return try NetworkConfig.parse(kv.value)
        } catch {
            throw LeaseError(.configInvalid(key: key, error))
        }
    }
}
