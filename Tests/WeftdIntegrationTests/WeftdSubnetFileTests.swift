import Foundation
import Glibc
import Testing

extension WeftdBeds {
    /// subnet.env with a real weftd: the file weftd wrote comes back within a resync when it is
    /// truncated or deleted.
    @Suite(.serialized, .enabled(if: bedUnavailable == nil, "\(bedUnavailable ?? "")"))
    struct WeftdSubnetFileTests {
        @Test(.timeLimit(.minutes(2)))
        func theFileIsKept() throws {
            let bed = try Bed(hosts: 1)
            defer { bed.tearDown() }
            try bed.startEtcd()
            try bed.putConfig(Bed.udpConfig)
            let path = bed.subnetFile(1)

            let (daemons, subnets) = try bed.startReady([1], extra: ["--iptables-resync", "1"])
            let weftd = daemons[1]!

            let written = try String(contentsOfFile: path, encoding: .utf8)
            #expect(written.contains("FLANNEL_SUBNET=\(Bed.split(subnets[1]!).0).1/24\n"), "\(written)")
            // Truncated, then deleted: each back within a resync (1 s) and said once.
            for (damage, was) in [({ _ = truncate(path, 0) }, "empty"), ({ _ = unlink(path) }, "missing")] as [(() -> Void, String)] {
                damage()
                let back = waitFor(.seconds(1) + WeftdBeds.loadMargin) { (try? String(contentsOfFile: path, encoding: .utf8)) == written }
                #expect(back != nil, "\(path) not put back after it was made \(was): \(weftd.log.suffix(1500))")
                let said = waitFor(WeftdBeds.hangGuard) { !weftd.lines(containing: "\(path) was \(was); wrote it again").isEmpty }
                #expect(said != nil && weftd.lines(containing: "\(path) was \(was); wrote it again").count == 1, "\(weftd.log.suffix(1500))")
            }
            #expect(bed.readyz(1) == 200)
        }
    }
}
