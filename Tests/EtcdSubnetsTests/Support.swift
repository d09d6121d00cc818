import Addressing
import Config
import ControlPlane
import Etcd
import EtcdSubnets
import EtcdTestSupport
import Foundation
import Routes
import Synchronization
import Testing

/// A clock that moves only when a test says so; sleepers poll it, so cancellation stays prompt.
final class ManualClock: ControlPlaneClock {
    private let time = Mutex<Duration>(.zero)

    var now: Duration { time.withLock { $0 } }

    func advance(by duration: Duration) { time.withLock { $0 += duration } }

    func sleep(for duration: Duration) async throws {
        let deadline = now + duration
        while now < deadline { try await Task.sleep(for: .milliseconds(5)) }
    }
}

/// Collects log lines, so a test can check what an operator would read.
final class LogRecorder: Sendable {
    private let lines = Mutex<[(LogLevel, String)]>([])

    var handler: LogHandler { { level, line in self.lines.withLock { $0.append((level, line)) } } }

    func lines(at level: LogLevel) -> [String] { lines.withLock { $0.filter { $0.0 == level }.map(\.1) } }
}

/// A fresh key prefix per test, so leftovers of one test never meet another.
func uniquePrefix() -> String { "/weft-test-\(UUID().uuidString.prefix(8))/network" }

/// The network config most tests lease under.
let vxlanConfig = #"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}"#

/// The start of the tests that need etcd: a real etcd, a client for it (`configure`d), and a fresh
/// prefix holding the network config `config` (none when nil). The client is shut down, and
/// awaited, however `body` ends; then etcd stops.
func withNetwork<T>(
    _ config: String? = vxlanConfig,
    client configure: (inout EtcdClient.Configuration) -> Void = { _ in },
    _ body: (TestEtcd, EtcdClient, String) async throws -> T
) async throws -> T {
    try await TestEtcd.with { etcd in
        let client = try etcd.client(configure: configure)
        let prefix = uniquePrefix()
        do {
            if let config { try await etcd.putConfig(config, prefix: prefix) }
            let result = try await body(etcd, client, prefix)
            try? await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }
}

extension TestEtcd {
    /// Writes the network config with etcdctl (the operator's way), v3 API.
    func putConfig(_ json: String, prefix: String) async throws {
        _ = try await etcdctl("put", EtcdPath.config(prefix: prefix), json)
    }

    /// `etcdctl get --prefix <prefix>/subnets/` as (key, value) pairs, read independently of our client.
    func subnetKeys(prefix: String) async throws -> [(key: String, value: String)] {
        let lines = try await etcdctl("get", "--prefix", EtcdPath.subnets(prefix: prefix) + "/")
            .split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        return stride(from: 0, to: lines.count - 1, by: 2).map { (lines[$0], lines[$0 + 1]) }
    }
}

/// The lease value flannel's vxlan backend writes, spelled out by hand (not via LeaseAttributes).
func flannelVXLANValue(publicIP: String, mac: String) -> String {
    #"{"PublicIP":"\#(publicIP)","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"\#(mac)"}}"#
}

func vxlanAttributes(_ publicIP: String, mac: String) -> LeaseAttributes {
    .vxlan(publicIP: IPv4Address(publicIP)!, data: VXLANLeaseData(vni: 1, vtepMAC: MACAddress(mac)!))
}

func cidr(_ text: String) -> IPv4Prefix { IPv4Prefix(text)! }
