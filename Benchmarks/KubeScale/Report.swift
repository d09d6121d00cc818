import Foundation

/// What one run measured; written as JSON.
struct Report: Codable {
    var nodes: Int
    var changes: Int
    /// Changes per second, applied open-loop (each at its time whatever the watcher is doing).
    var rate: Double
    /// From starting the watcher to the publish holding every peer's route.
    var firstCompleteTableMilliseconds: Double
    /// From a change applied to the stand-in's store to the first publish that contains it.
    var latencyMilliseconds: Percentiles
    /// The seconds of the churn (from its first change) in which some change took over 50 ms:
    /// one cluster is an episode (the VM busy elsewhere), spread seconds a steady cost.
    var secondsWithChangesOver50: [Int]
    /// Changes published more than 5 s after they were made.
    var stalledChanges: Int
    /// Changes never published (5 s after the last change was made).
    var unpublishedChanges: Int
    var publications: Int
    /// The RouteTablePublisher's count of replaced snapshots not yet freed, and freed.
    var snapshotsAwaitingReclamation: Int
    var snapshotsReclaimed: Int
    var unconfirmedEpisodes: Int
    /// What the watcher logged, with seconds since the benchmark started.
    var watcherLog: [String]
    var memoryKiB: MemoryPoints
    var memorySlope: Slope
    var load: LoadPoints
    var machine: Machine

    struct MemoryPoints: Codable {
        var beforeList: Memory
        var afterList: Memory
        var afterChurn: Memory
        /// After malloc_trim(0): what the heap holds live once glibc returns its free pages.
        var afterChurnTrimmed: Memory
    }

    struct LoadPoints: Codable {
        var before: Load
        var after: Load
    }

    struct Machine: Codable {
        var cores: Int
        var kernel: String
    }
}

struct Percentiles: Codable {
    var count: Int
    var p50: Double
    var p90: Double
    var p99: Double
    var max: Double
    /// How many exceed issue 16's 50 ms.
    var over50: Int

    /// `sorted` ascending; nearest rank.
    init(_ sorted: [Double]) {
        count = sorted.count
        func rank(_ p: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            return sorted[Swift.min(sorted.count - 1, Swift.max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1))]
        }
        p50 = rank(0.50)
        p90 = rank(0.90)
        p99 = rank(0.99)
        max = sorted.last ?? 0
        over50 = sorted.count { $0 > 50 }
    }
}

/// The watcher process's resident memory (/proc/self/status): VmRSS, and RssAnon (heap and
/// stacks, the part a leak grows).
struct Memory: Codable {
    var rss: Int
    var rssAnon: Int

    static func now() -> Memory {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        func field(_ name: String) -> Int {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return 0 }
            return Int(
                line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.map(String.init)?
                    .trimmingCharacters(in: .whitespaces) ?? ""
            ) ?? 0
        }
        return Memory(rss: field("VmRSS"), rssAnon: field("RssAnon"))
    }
}

struct Load: Codable {
    var oneMinute: Double
    var fiveMinutes: Double

    static func now() -> Load {
        let text = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? ""
        let fields = text.split(separator: " ").compactMap { Double($0) }
        return Load(oneMinute: fields.first ?? 0, fiveMinutes: fields.count > 1 ? fields[1] : 0)
    }

    static func kernel() -> String {
        ((try? String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8)) ?? "").trimmingCharacters(
            in: .whitespacesAndNewlines
        )
    }
}

struct Sample: Sendable {
    let time: UInt64
    let memory: Memory
}

extension Memory: Sendable {}

actor Sampler {
    /// Samples until cancelled; returns them.
    func run(every period: Duration) async -> [Sample] {
        var samples: [Sample] = []
        while !Task.isCancelled {
            samples.append(Sample(time: monotonicNanoseconds(), memory: Memory.now()))
            try? await Task.sleep(for: period)
        }
        return samples
    }
}

/// Least-squares slopes of RSS and RssAnon over the churn, in KiB per minute, over the whole
/// churn and over its second half (a heap that settles shows a slope falling towards zero).
struct Slope: Codable {
    var samples: Int
    var seconds: Double
    var rssKiBPerMinute: Double
    var rssAnonKiBPerMinute: Double
    var secondHalfRssAnonKiBPerMinute: Double

    init(_ samples: [Sample]) {
        self.samples = samples.count
        let start = samples.first?.time ?? 0
        seconds = Double((samples.last?.time ?? start) - start) / 1e9
        func fit(_ points: ArraySlice<Sample>, _ value: (Memory) -> Int) -> Double {
            guard points.count >= 2 else { return 0 }
            let xs = points.map { Double($0.time - start) / 60e9 }
            let ys = points.map { Double(value($0.memory)) }
            let mx = xs.reduce(0, +) / Double(xs.count)
            let my = ys.reduce(0, +) / Double(ys.count)
            let covariance = zip(xs, ys).reduce(0) { $0 + ($1.0 - mx) * ($1.1 - my) }
            let variance = xs.reduce(0) { $0 + ($1 - mx) * ($1 - mx) }
            return variance > 0 ? covariance / variance : 0
        }
        rssKiBPerMinute = fit(samples[...], \.rss)
        rssAnonKiBPerMinute = fit(samples[...], \.rssAnon)
        secondHalfRssAnonKiBPerMinute = fit(samples[(samples.count / 2)...], \.rssAnon)
    }
}

/// glibc's malloc_trim(0): returns the free memory at the top of every arena and the free pages
/// inside them to the kernel, so RSS after it shows what the heap still holds live.
func trimMalloc() {
    typealias Trim = @convention(c) (Int) -> Int32
    guard let symbol = dlsym(nil, "malloc_trim") else { return }  // nil: RTLD_DEFAULT
    _ = unsafeBitCast(symbol, to: Trim.self)(0)
}
