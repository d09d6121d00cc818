import Config
import ControlPlane
import Foundation
import KubeSubnets
import Synchronization
import Testing

/// net-conf.json as flanneld reads it in Kubernetes mode, from a real file.
struct NetworkConfigFileTests {
    let directory: String

    init() throws {
        directory = NSTemporaryDirectory() + "weft-netconf-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    func write(_ text: String) {
        try! Data(text.utf8).write(to: URL(fileURLWithPath: directory + "/net-conf.json"), options: .atomic)
    }

    @Test func kubeFlannelsConfigMapIsReadAsFlannelReadsIt() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        write(#"{"Network":"10.244.0.0/16","EnableNFTables":false,"Backend":{"Type":"vxlan"}}"#)
        let config = try NetworkConfigFile(path: directory + "/net-conf.json").read()
        #expect(config.network?.description == "10.244.0.0/16")
        #expect(config.backend.kind == .vxlan)
    }

    /// flanneld never runs CheckNetworkConfig on net-conf.json: a SubnetLen etcd mode would refuse
    /// runs in a cluster today, so it must run under weftd too.
    @Test func subnetFieldsEtcdModeWouldRefuseAreNotCheckedAsFlannelDoesNotCheckThem() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        write(#"{"Network":"10.244.0.0/16","SubnetLen":31,"Backend":{"Type":"host-gw"}}"#)
        let config = try NetworkConfigFile(path: directory + "/net-conf.json").read()
        #expect(config.network?.description == "10.244.0.0/16")
        #expect(config.backend.kind == .hostGateway)
        #expect(config.subnetLength == 24, "SubnetLen 31 is not used in Kubernetes mode; the default stands in")
    }

    @Test func aMissingOrBrokenFileIsOneLineNamingTheFileAndTheFix() {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = NetworkConfigFile(path: directory + "/net-conf.json")
        do throws(LeaseError) {
            _ = try file.read()
            Issue.record("a missing file must not read")
        } catch {
            #expect(error.kind == .configMissing)
            #expect(error.description.hasPrefix("failed to read net conf \(directory)/net-conf.json: "))
            #expect(error.description.contains("--net-config-path"))
            #expect(!error.description.contains("\n"))
        }
        write(#"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":-1}}"#)
        do throws(LeaseError) {
            _ = try file.read()
            Issue.record("a negative VNI must not parse")
        } catch {
            #expect(error.kind == .configInvalid)
            #expect(error.description.hasPrefix("error parsing subnet config in \(directory)/net-conf.json: "))
            #expect(error.description.contains("kubectl -n kube-flannel edit configmap kube-flannel-cfg"))
        }
    }

    @Test func watchReportsTheFirstReadingAndEachChangeButNotARereadOfTheSame() async throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        write(#"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}"#)
        let readings = Readings()
        let file = NetworkConfigFile(path: directory + "/net-conf.json")
        let watching = Task {
            await file.watch(every: .milliseconds(20)) { reading in readings.list.withLock { $0.append(reading) } }
        }
        defer { watching.cancel() }
        func count() -> Int { readings.list.withLock { $0.count } }
        try await waitUntil { count() == 1 }
        try await Task.sleep(for: .milliseconds(100))
        #expect(count() == 1, "an unchanged file is not reported again")
        write(#"{"Network":"10.245.0.0/16","Backend":{"Type":"vxlan"}}"#)
        try await waitUntil { count() == 2 }
        write("{broken")
        try await waitUntil { count() == 3 }
        let last = readings.list.withLock { $0 }
        #expect((try? last[1].get())?.network?.description == "10.245.0.0/16")
        guard case .failure(let error) = last[2] else {
            Issue.record("broken JSON must be reported as a failure")
            return
        }
        #expect(error.kind == .configInvalid)
    }

    final class Readings: Sendable {
        let list = Mutex<[Result<NetworkConfig, LeaseError>]>([])
    }

    private func waitUntil(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("condition not met within 10 s")
                return
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}
