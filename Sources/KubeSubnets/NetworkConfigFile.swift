import Config
import ControlPlane
import Foundation

/// flanneld's --net-config-path in Kubernetes mode: the network config is a file, in a cluster the
/// `net-conf.json` of the kube-flannel-cfg ConfigMap mounted at /etc/kube-flannel/. Read whole on
/// each call; a ConfigMap update arrives as a new file (the kubelet swaps a symlink), so `watch`
/// compares contents, not modification times.
public struct NetworkConfigFile: Sendable {
    public static let defaultPath = "/etc/kube-flannel/net-conf.json"

    public let path: String

    public init(path: String = Self.defaultPath) {
        self.path = path
    }

    /// The config, checked as flanneld checks net-conf.json (its syntax and types, a Network,
    /// a known Backend; not the subnet allocation fields), or flanneld's two errors ("failed to read net conf", "error parsing subnet
    /// config") with the file and the fix named.
    public func read() throws(LeaseError) -> NetworkConfig {
        let bytes: [UInt8]
        do {
            bytes = try readBytes()
        } catch {
            throw LeaseError(
                .configMissing,
                "failed to read net conf \(path): \(error); mount the kube-flannel-cfg ConfigMap's net-conf.json there, or point --net-config-path at the file"
            )
        }
        return try Self.parse(bytes, path: path)
    }

    static func parse(
        _ bytes: [UInt8],
        path: String
    ) throws(LeaseError) -> NetworkConfig {
        do {
            return try NetworkConfig.parse(bytes, checks: .podCIDRs)
        } catch {
            throw LeaseError(
                .configInvalid,
                "error parsing subnet config in \(path): \(error.problem); fix net-conf.json in the kube-flannel-cfg ConfigMap (kubectl -n kube-flannel edit configmap kube-flannel-cfg)"
            )
        }
    }

    /// Reports the config now and after each change of the file's contents (checked every
    /// `period`), until cancelled. A file that cannot be read is reported once per episode.
    public func watch(
        every period: Duration = .seconds(10),
        _ report: @escaping @Sendable (Result<NetworkConfig, LeaseError>) -> Void
    ) async {
        var last: Result<[UInt8], LeaseError>?
        while !Task.isCancelled {
            let now: Result<[UInt8], LeaseError>
            do {
                now = .success(try readBytes())
            } catch {
                now = .failure(LeaseError(.configMissing, "failed to read net conf \(path): \(error)"))
            }
            if now != last {
                last = now
                switch now {
                case .success(let bytes):
                    do throws(LeaseError) {
                        report(.success(try Self.parse(bytes, path: path)))
                    } catch {
                        report(.failure(error))
                    }
                case .failure(let error):
                    report(.failure(error))
                }
            }
            do { try await Task.sleep(for: period) } catch { return }
        }
    }

    private func readBytes() throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }
}
