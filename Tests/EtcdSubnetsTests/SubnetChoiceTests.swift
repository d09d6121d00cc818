import Addressing
import Config
import Etcd
import Testing
import Timing

@testable import ControlPlane
@testable import EtcdSubnets

/// The order of preference, without etcd: reservation, existing lease, requested, random.
struct SubnetChoiceTests {
    let config = try! NetworkConfig.parse(
        #"{"Network":"10.244.0.0/16","SubnetMin":"10.244.1.0","SubnetMax":"10.244.4.0"}"#
    )
    let us = IPv4Address("198.18.0.1")!

    func listed(_ subnet: String, ip: String, lease: Int64?, value: String? = nil) -> ListedLease {
        let key = "/coreos.com/network/subnets/\(cidr(subnet).leaseKey)"
        let text = value ?? #"{"PublicIP":"\#(ip)","PublicIPv6":null}"#
        return ListedLease(
            KeyValue(
                key: key,
                value: text,
                createRevision: 1,
                modRevision: 1,
                version: 1,
                lease: lease.map(LeaseID.init)
            )
        )!
    }

    func choose(_ listing: [ListedLease], requested: [IPv4Prefix] = []) -> (SubnetChoice, [KeyValue]) {
        var generator = SystemRandomNumberGenerator()
        let (choice, stale) = SubnetChoice.choose(
            listing: listing,
            config: config,
            attributes: LeaseAttributes(publicIP: us),
            requested: requested.map { LeaseKey(subnet: $0) },
            using: &generator
        )
        return (choice, stale)
    }

    @Test func reservationBeatsOurLeaseWhichBeatsRequested() {
        let reservation = listed("10.244.3.0/24", ip: "198.18.0.1", lease: nil)
        let existing = listed("10.244.2.0/24", ip: "198.18.0.1", lease: 7)
        #expect(
            choose([existing, reservation], requested: [cidr("10.244.4.0/24")]).0
                == .reservation(reservation.kv, LeaseKey(subnet: cidr("10.244.3.0/24")))
        )
        #expect(
            choose([existing], requested: [cidr("10.244.4.0/24")]).0
                == .existing(existing.kv, LeaseKey(subnet: cidr("10.244.2.0/24")))
        )
        #expect(
            choose([], requested: [cidr("10.244.4.0/24")]).0
                == .create(LeaseKey(subnet: cidr("10.244.4.0/24")), .requested)
        )
    }

    @Test func ourLeaseOutsideTheRangeIsStaleAndItsSubnetIsFreeAgain() {
        let outside = listed("10.244.9.0/24", ip: "198.18.0.1", lease: 7)
        let (choice, stale) = choose([outside])
        #expect(stale == [outside.kv])
        guard case .create(let subnet, .random) = choice else {
            Issue.record("expected a random subnet, got \(choice)")
            return
        }
        #expect(config.fits(subnet) && subnet.ipv6Subnet == nil)
    }

    @Test func requestedSubnetIsSkippedWhenTakenOrOutsideTheRangeOrOverlapped() {
        let taken = listed("10.244.4.0/24", ip: "198.18.0.2", lease: 7)
        // A hand-made /23 covering 10.244.2.0 and 10.244.3.0, with an unreadable value: still occupied.
        let wide = listed("10.244.2.0/23", ip: "", lease: nil, value: "not json")
        let (choice, _) = choose(
            [taken, wide],
            requested: [cidr("10.244.4.0/24"), cidr("10.244.9.0/24"), cidr("10.244.3.0/24")]
        )
        #expect(choice == .create(LeaseKey(subnet: cidr("10.244.1.0/24")), .random))
    }

    @Test func fullRangeIsOutOfSubnets() {
        let listing = (1...4).map { listed("10.244.\($0).0/24", ip: "198.18.0.\($0 + 1)", lease: 7) }
        #expect(choose(listing).0 == .outOfSubnets)
    }

    @Test func randomPicksOnlyFreeSubnetsAndSpreads() {
        let listing = [listed("10.244.2.0/24", ip: "198.18.0.2", lease: 7)]
        var picks: Set<IPv4Prefix> = []
        for _ in 0..<200 {
            guard case .create(let subnet, .random) = choose(listing).0 else {
                Issue.record("expected a random subnet")
                return
            }
            picks.insert(subnet.subnet!)
        }
        #expect(picks == [cidr("10.244.1.0/24"), cidr("10.244.3.0/24"), cidr("10.244.4.0/24")])
    }
}

struct BackoffTests {
    @Test func delaysStayBetweenHalfTheCeilingAndTheCeilingWhichDoublesToTheCap() {
        let backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(5))
        #expect(
            (0...8).map { backoff.ceiling(attempt: $0) } == [
                .milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .milliseconds(1600),
                .milliseconds(3200), .seconds(5), .seconds(5), .seconds(5),
            ]
        )
        #expect(backoff.ceiling(attempt: 10_000) == .seconds(5))
        var generator = SystemRandomNumberGenerator()
        for attempt in 0..<12 {
            let ceiling = backoff.ceiling(attempt: attempt)
            for _ in 0..<50 {
                let delay = backoff.delay(attempt: attempt, using: &generator)
                #expect(delay >= ceiling / 2 && delay <= ceiling)
            }
        }
    }
}

/// The same order with an IPv6 half: both halves must fit and be free, as flannel's AcquireLease.
struct DualStackSubnetChoiceTests {
    let config = try! NetworkConfig.parse(
        #"{"Network":"10.244.0.0/16","SubnetMin":"10.244.1.0","SubnetMax":"10.244.4.0","EnableIPv6":true,"IPv6Network":"fc00::/48","IPv6SubnetMin":"fc00:0:0:1::","IPv6SubnetMax":"fc00:0:0:3::"}"#
    )
    let us = IPv4Address("198.18.0.1")!

    func listed(_ name: String, ip: String, lease: Int64?) -> ListedLease {
        ListedLease(
            KeyValue(
                key: "/coreos.com/network/subnets/\(name)",
                value: #"{"PublicIP":"\#(ip)","PublicIPv6":null}"#,
                createRevision: 1,
                modRevision: 1,
                version: 1,
                lease: lease.map(LeaseID.init)
            )
        )!
    }

    func choose(_ listing: [ListedLease], requested: [LeaseKey] = []) -> (SubnetChoice, [KeyValue]) {
        var generator = SystemRandomNumberGenerator()
        return SubnetChoice.choose(
            listing: listing,
            config: config,
            attributes: LeaseAttributes(publicIP: us),
            requested: requested,
            using: &generator
        )
    }

    func key(_ name: String) -> LeaseKey { LeaseKey(parsing: name)! }

    @Test func ourLeaseIsKeptOnlyWithBothHalvesFitting() {
        let dual = listed("10.244.2.0-24&fc00:0:0:2::-64", ip: "198.18.0.1", lease: 7)
        #expect(choose([dual]).0 == .existing(dual.kv, key("10.244.2.0-24&fc00:0:0:2::-64")))
        let ipv4Only = listed("10.244.2.0-24", ip: "198.18.0.1", lease: 7)
        let outside = listed("10.244.3.0-24&fc00:0:0:9::-64", ip: "198.18.0.1", lease: 8)
        let (choice, stale) = choose([ipv4Only, outside])
        #expect(Set(stale.map(\.key)) == [ipv4Only.kv.key, outside.kv.key])
        guard case .create(let taken, .random) = choice else {
            Issue.record("expected a random dual-stack subnet, got \(choice)")
            return
        }
        #expect(config.fits(taken) && taken.ipv6Subnet != nil)
    }

    @Test func randomPicksAFreeSubnetOfEachFamily() {
        let listing = [
            listed("10.244.1.0-24&fc00:0:0:1::-64", ip: "198.18.0.2", lease: 7),
            listed("10.244.2.0-24&fc00:0:0:3::-64", ip: "198.18.0.3", lease: 7),
        ]
        var picks: Set<LeaseKey> = []
        for _ in 0..<200 {
            guard case .create(let subnets, .random) = choose(listing).0 else {
                Issue.record("expected a random subnet")
                return
            }
            picks.insert(subnets)
        }
        #expect(Set(picks.map(\.subnet)) == [cidr("10.244.3.0/24"), cidr("10.244.4.0/24")])
        #expect(Set(picks.compactMap(\.ipv6Subnet)) == [IPv6Prefix("fc00:0:0:2::/64")!])
    }

    @Test func requestedNeedsBothHalvesFreeAndNoIPv6LeftIsItsOwnOutcome() {
        let listing = [listed("10.244.1.0-24&fc00:0:0:1::-64", ip: "198.18.0.2", lease: 7)]
        let clash = key("10.244.3.0-24&fc00:0:0:1::-64")
        let free = key("10.244.3.0-24&fc00:0:0:2::-64")
        #expect(choose(listing, requested: [clash, free]).0 == .create(free, .requested))
        let full = (1...3).map { listed("10.244.\($0).0-24&fc00:0:0:\($0)::-64", ip: "198.18.0.9", lease: 7) }
        #expect(choose(full).0 == .outOfIPv6Subnets(config.ipv6!))
    }
}
