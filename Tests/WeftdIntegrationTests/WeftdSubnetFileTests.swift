import Foundation
import Glibc
import TestSupport
import Testing

extension WeftdBeds {
    /// subnet.env with a real weftd: a FLANNEL_SUBNET outside the Network left by an earlier run is
    /// ignored with a reason, and the file weftd wrote comes back within a resync when it is
    /// truncated or deleted.
    @Suite(.serialized, .enabled(if: bedUnavailable == nil, "\(bedUnavailable ?? "")"))
    struct WeftdSubnetFileTests {
        @Test(.timeLimit(.minutes(2)))
        func aForeignPreviousSubnetIsIgnoredAndTheFileIsKept() throws {
            let bed = try Bed(hosts: 1)
            defer { bed.tearDown() }
            try bed.startEtcd()
            try bed.putConfig(Bed.udpConfig)
            let path = bed.subnetFile(1)
            try "FLANNEL_NETWORK=10.99.0.0/16\nFLANNEL_SUBNET=10.99.5.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=false\n"
                .write(toFile: path, atomically: true, encoding: .utf8)

            let (daemons, subnets) = try bed.startReady([1], extra: ["--iptables-resync", "1"])
            let weftd = daemons[1]!
            #expect(subnets[1]!.hasPrefix("10.244."), "\(subnets)")
            #expect(
                weftd.lines(
                    containing: "ignoring FLANNEL_SUBNET 10.99.5.0/24 in \(path) from a previous run: "
                        + "10.99.5.0/24 lies outside the Network 10.244.0.0/16"
                ).count == 1,
                "\(weftd.log.suffix(2000))"
            )

            let written = try String(contentsOfFile: path, encoding: .utf8)
            #expect(written.contains("FLANNEL_SUBNET=\(Bed.split(subnets[1]!).0).1/24\n"), "\(written)")
            // Truncated, then deleted: each back within a resync (1 s) and said once.
            for (damage, was) in [({ _ = truncate(path, 0) }, "empty"), ({ _ = unlink(path) }, "missing")]
                as [(() -> Void, String)]
            {
                damage()
                let back = waitFor(.seconds(1) + WeftdBeds.loadMargin) {
                    (try? String(contentsOfFile: path, encoding: .utf8)) == written
                }
                #expect(back != nil, "\(path) not put back after it was made \(was): \(weftd.log.suffix(1500))")
                let said = waitFor(WeftdBeds.hangGuard) {
                    !weftd.lines(containing: "\(path) was \(was); wrote it again").isEmpty
                }
                #expect(
                    said != nil && weftd.lines(containing: "\(path) was \(was); wrote it again").count == 1,
                    "\(weftd.log.suffix(1500))"
                )
            }
            #expect(bed.readyz(1) == 200)
        }
    }
}
