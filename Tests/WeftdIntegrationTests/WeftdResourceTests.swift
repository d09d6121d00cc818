import Foundation
import Glibc
import Testing

/// What a long-running weftd holds: open descriptors and resident memory, read from /proc.
struct ProcessResources {
    let descriptors: Int
    let residentKiB: Int

    init?(pid: Int32) {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd"),
            let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kib = Int(line.split(separator: " ").dropFirst().first ?? "")
        else { return nil }
        descriptors = entries.count
        residentKiB = kib
    }
}

extension WeftdBeds {
    /// A weftd left idle must not grow: every resync ran `nft` through Foundation's Process, which
    /// left two pipe descriptors open per run (about 24 a minute at the default 5 s resync) until
    /// the process ran out of them.
    @Suite(.serialized, .enabled(if: bedUnavailable == nil, "\(bedUnavailable ?? "")"))
    struct WeftdResourceTests {
        @Test(.timeLimit(.minutes(4)))
        func anIdleWeftdKeepsItsDescriptorCountFlat() throws {
            let bed = try Bed(hosts: 1)
            defer { bed.tearDown() }
            try bed.startEtcd()
            try bed.putConfig(Bed.udpConfig)
            // A resync every second with masquerade and the blackhole route (nft and netlink each
            // time), and a lease renewed every few seconds: the leak showed within a minute.
            let (daemons, _) = try bed.startReady(
                [1],
                extra: [
                    "--iptables-resync", "1", "--ip-masq", "--ip-blackhole-route",
                    "--subnet-lease-ttl", "12s", "--subnet-lease-renew-margin", "8s",
                ]
            )
            let weftd = daemons[1]!
            // Start-up settles (threads, the etcd connections, the first resyncs) before the baseline.
            Thread.sleep(forTimeInterval: 10)
            var samples: [ProcessResources] = []
            for _ in 0..<10 {
                // The fewest of three reads 100 ms apart: an nft run in progress holds two pipes
                // for a few milliseconds, which a single read can land on (a flake seen once).
                var reads: [ProcessResources] = []
                for _ in 0..<3 {
                    reads.append(
                        try #require(ProcessResources(pid: weftd.pid), "weftd exited: \(weftd.log.suffix(2000))")
                    )
                    Thread.sleep(forTimeInterval: 0.1)
                }
                samples.append(reads.min { $0.descriptors < $1.descriptors }!)
                Thread.sleep(forTimeInterval: 10)
            }
            let counts = samples.map(\.descriptors)
            print("weftd descriptors every 10 s: \(counts); RSS KiB: \(samples.map(\.residentKiB))")
            // 90 resyncs ran nft 180+ times: the old leak would show hundreds. A connection to etcd
            // may come or go, so a few descriptors of slack, and none gained from the first half
            // of the run to the second.
            #expect(counts.max()! - counts.min()! <= 4, "descriptors moved: \(counts)")
            #expect(counts.suffix(5).max()! <= counts.prefix(5).max()!, "descriptors grew: \(counts)")
            #expect(weftd.lines(containing: "lease").isEmpty == false)
        }
    }
}
