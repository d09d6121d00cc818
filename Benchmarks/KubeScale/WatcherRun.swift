import Addressing
import Config
import ControlPlane
import Foundation
import KubeSubnets
import Routes
import Synchronization

struct Plan {
    var nodes = 5_000
    var changes = 3_000
    var rate = 100.0
    var output: String?
}

/// The parent: weftd's KubeSubnetManager and node watcher against the child's stand-in.
struct WatcherRun {
    static let stallLimit: UInt64 = 5_000_000_000

    let plan: Plan

    func run() async throws -> Report {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("weft-kube-scale-\(getpid())")
            .path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let child = try Child(arguments: ["serve", directory, String(plan.nodes)])
        defer { child.stop() }
        guard try await child.waitForLine(seconds: 300, where: { $0 == "ready" }) != nil else {
            throw BenchmarkFailure("the stand-in did not become ready within 300 s")
        }
        let loadBefore = Load.now()

        var options = KubeSubnetManager.Options()
        options.kubeconfigPath = directory + "/kubeconfig"
        options.netConfigPath = directory + "/net-conf.json"
        options.environment = ["NODE_NAME": ClusterShape.ownName]
        let manager = try KubeSubnetManager(options, warn: { _ in })
        let request = LeaseRequest(
            attributes: .vxlan(
                publicIP: IPv4Address("198.18.0.1")!,
                data: VXLANLeaseData(configuredVNI: 1, vtepMAC: MACAddress("0a:00:00:00:00:00")!)
            )
        )
        let keeper = manager.leaseKeeper(request, log: { _, _ in })
        let lease = try await keeper.acquire()
        let publisher = lease.emptyPublisher()
        let record = PublicationRecord()
        let watcher = manager.peerWatcher(
            for: lease,
            keeper: keeper,
            publisher: publisher,
            log: { record.log($1) },
            events: PeerWatchEvents(published: { record.published($0) }, freshness: { record.freshness($0) })
        )
        let memoryBefore = Memory.now()
        let listStart = monotonicNanoseconds()
        record.log("watcher started")
        let running = Task { await watcher.run() }
        defer { running.cancel() }
        guard let complete = await record.waitFor(seconds: 120, { $0.count >= plan.nodes }) else {
            throw BenchmarkFailure("no complete table of \(plan.nodes) routes within 120 s (last: \(record.lastCount))")
        }
        let memoryAfterList = Memory.now()

        let sampler = Sampler()
        let sampling = Task { await sampler.run(every: .milliseconds(250)) }
        let interval = UInt64(1e9 / plan.rate)
        record.log("churn of \(plan.changes) changes started")
        child.send("churn \(plan.changes) \(interval)")
        let churnSeconds = Double(plan.changes) / plan.rate
        guard try await child.waitForLine(seconds: churnSeconds * 3 + 60, where: { $0 == "done" }) != nil else {
            throw BenchmarkFailure(
                "the stand-in did not finish \(plan.changes) changes within \(Int(churnSeconds * 3 + 60)) s"
            )
        }
        let changes = child.lines.compactMap(Change.init(line:))
        let lastVersion = changes.map(\.version).max() ?? 0
        _ = await record.waitFor(seconds: Double(Self.stallLimit) / 1e9, { $0.revision >= lastVersion })
        sampling.cancel()
        let samples = await sampling.value
        let memoryAfterChurn = Memory.now()
        let statistics = publisher.statistics
        trimMalloc()
        let memoryTrimmed = Memory.now()
        let loadAfter = Load.now()
        // Before the stand-in stops: its going away breaks the watch, which is not the run's.
        let unconfirmed = record.unconfirmedEpisodes
        let watcherLog = record.logLines
        child.send("quit")

        let publications = record.all
        var latencies: [Double] = []
        var unpublished = 0
        var stalled = 0
        var slowSeconds = Set<Int>()
        for change in changes {
            // The first publish whose resourceVersion covers the change (revisions only grow).
            let first = Self.firstIndex(in: publications) { $0.revision >= change.version }
            guard first < publications.count else {
                unpublished += 1
                continue
            }
            let latency = publications[first].time > change.t0 ? publications[first].time - change.t0 : 0
            if latency > Self.stallLimit { stalled += 1 }
            if latency > 50_000_000 { slowSeconds.insert(Int((change.t0 - (changes.first?.t0 ?? 0)) / 1_000_000_000)) }
            latencies.append(Double(latency) / 1e6)
        }
        latencies.sort()
        let churnSamples = samples.filter { $0.time >= complete.time }
        return Report(
            nodes: plan.nodes,
            changes: changes.count,
            rate: plan.rate,
            firstCompleteTableMilliseconds: Double(complete.time - listStart) / 1e6,
            latencyMilliseconds: Percentiles(latencies),
            secondsWithChangesOver50: slowSeconds.sorted(),
            stalledChanges: stalled,
            unpublishedChanges: unpublished,
            publications: publications.count,
            snapshotsAwaitingReclamation: statistics.awaitingReclamation,
            snapshotsReclaimed: statistics.reclaimed,
            unconfirmedEpisodes: unconfirmed,
            watcherLog: watcherLog,
            memoryKiB: .init(
                beforeList: memoryBefore,
                afterList: memoryAfterList,
                afterChurn: memoryAfterChurn,
                afterChurnTrimmed: memoryTrimmed
            ),
            memorySlope: Slope(churnSamples),
            load: .init(before: loadBefore, after: loadAfter),
            machine: .init(cores: ProcessInfo.processInfo.activeProcessorCount, kernel: Load.kernel())
        )
    }

    static func firstIndex(in publications: [Publication], _ covers: (Publication) -> Bool) -> Int {
        var low = 0
        var high = publications.count
        while low < high {
            let middle = (low + high) / 2
            if covers(publications[middle]) { high = middle } else { low = middle + 1 }
        }
        return low
    }
}

struct BenchmarkFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

struct Publication: Sendable {
    let revision: Int64
    let time: UInt64
    let count: Int
}

/// Every publish the watcher made, as it made it (the callback runs on the watcher's actor right
/// after the snapshot is published).
final class PublicationRecord: Sendable {
    private let state = Mutex<(publications: [Publication], unconfirmed: Int, log: [String])>(([], 0, []))

    func published(_ publication: RoutePublication) {
        let entry = Publication(
            revision: publication.revision,
            time: monotonicNanoseconds(),
            count: publication.routes.count
        )
        state.withLock { $0.publications.append(entry) }
    }

    func freshness(_ freshness: RouteFreshness) {
        if case .unconfirmed = freshness { state.withLock { $0.unconfirmed += 1 } }
    }

    var all: [Publication] { state.withLock { $0.publications } }
    var unconfirmedEpisodes: Int { state.withLock { $0.unconfirmed } }
    var logLines: [String] { state.withLock { $0.log } }

    /// The watcher's log, each line with the seconds since the process started.
    func log(_ line: String) {
        let start = processStart  // a lazy global: read before the clock
        let stamped = String(format: "%.3f ", Double(monotonicNanoseconds() - start) / 1e9) + line
        state.withLock { $0.log.append(stamped) }
    }
    var lastCount: Int { state.withLock { $0.publications.last?.count ?? 0 } }

    func waitFor(seconds: Double, _ condition: (Publication) -> Bool) async -> Publication? {
        let deadline = monotonicNanoseconds() + UInt64(seconds * 1e9)
        while true {
            if let found = state.withLock({ $0.publications.first(where: condition) }) { return found }
            if monotonicNanoseconds() > deadline { return nil }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }
}

struct Change {
    let version: Int64
    let kind: String
    let t0: UInt64

    init?(line: String) {
        let words = line.split(separator: " ")
        guard words.count == 4, words[0] == "change", let version = Int64(words[1]), let t0 = UInt64(words[3]) else {
            return nil
        }
        self.version = version
        kind = String(words[2])
        self.t0 = t0
    }
}
