import Addressing
import HostGateway
import Netlink
import TestThreads
import Testing

/// BlackholeRoute against a host's bridge in the kernel.
@Suite(
    .ownThread,
    .enabled(if: ThreeHostBed.missing == nil, "\(ThreeHostBed.missing ?? "")"),
    .serialized,
    .timeLimit(.minutes(1))
)
struct BlackholeRouteKernelTests {
    /// Host 1's bridge ctr0 holds 10.244.1.1/24, so the kernel has the connected route for the
    /// subnet at metric 0. With the blackhole added, the container is still reached (the lower
    /// metric wins); with the bridge's address gone, the subnet is a blackhole rather than a path
    /// into the Network's route. Added again it is not duplicated; unwanted, it goes.
    @Test func theBridgeWinsAndTheBlackholeCatchesTheRest() throws {
        try ThreeHostBed.with { bed in
            let subnet = ThreeHostBed.subnet(1)
            // What weftd adds besides: the Network's route, which the blackhole must keep the subnet out of.
            try bed.ip(1, "route", "add", "10.244.0.0/16", "via", "198.18.0.2", "dev", "ul0")
            let first = try bed.enter(bed.host(1)) { try BlackholeRoute.reconcile(wanted: subnet) }
            #expect(first == BlackholeRoute.Change(added: subnet, deleted: []))
            let routes = try bed.routes(1)
            #expect(routes.contains("blackhole 10.244.1.0/24 proto 87 metric 4294967295"), "\(routes)")
            let (reached, _) = try ThreeHostBed.run([
                "netns", "exec", bed.host(1), "ping", "-n", "-c", "1", "-W", "2", "10.244.1.2",
            ])
            #expect(reached == 0, "the container behind the bridge")

            let again = try bed.enter(bed.host(1)) { try BlackholeRoute.reconcile(wanted: subnet) }
            #expect(again.isEmpty)
            #expect(try bed.routes(1).filter { $0.hasPrefix("blackhole") }.count == 1)

            try bed.ip(1, "addr", "del", "10.244.1.1/24", "dev", "ctr0")
            let (status, output) = try ThreeHostBed.run(["-n", bed.host(1), "route", "get", "10.244.1.2"])
            #expect(status != 0 && output.contains("Invalid argument"), "a blackholed destination: \(output)")

            let removed = try bed.enter(bed.host(1)) { try BlackholeRoute.reconcile(wanted: nil, IPv4Prefix.self) }
            #expect(removed == BlackholeRoute.Change(added: nil, deleted: [subnet]))
            let (after, via) = try ThreeHostBed.run(["-n", bed.host(1), "route", "get", "10.244.1.2"])
            #expect(after == 0 && via.contains("via 198.18.0.2"), "without it, the Network's route: \(via)")
        }
    }
}
