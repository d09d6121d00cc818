import Addressing
import Foundation
import Glibc
import TestThreads
import Testing
import TrafficRulesTestSupport

@testable import TrafficRules

/// Why the keeper's namespace tests cannot run here, or nil.
let keeperTestsUnavailable: String? = {
    if geteuid() != 0 {
        return "TrafficRuleKeeperTests need root (a network namespace, nftables); run swift test as root"
    }
    if NFTables().path == nil { return "TrafficRuleKeeperTests need nft; install nftables" }
    return nil
}()

struct SetupFailure: Error, CustomStringConvertible {
    let description: String
}

/// The keeper against the real nft, inside a network namespace of the test's own (the root
/// namespace's firewall is never touched): install, idempotency, repair, a moved subnet, removal.
@Suite(.ownThread, .serialized, .enabled(if: keeperTestsUnavailable == nil, "\(keeperTestsUnavailable ?? "")"))
struct TrafficRuleKeeperTests {

    /// A namespace named for this run, deleted with everything in it by `close`.
    final class Namespace {
        let name = "wtr\(getpid() % 100_000)\(UInt16.random(in: 0...999))"

        init() throws {
            let (status, output) = try runIP(["netns", "add", name])
            guard status == 0 else { throw SetupFailure(description: "ip netns add \(name): \(output)") }
        }

        func close() { _ = try? runIP(["netns", "del", name]) }

        /// `nft arguments…` inside the namespace; the status and combined output.
        func nft(_ arguments: [String]) throws -> (Int32, String) {
            try runIP(["netns", "exec", name, NFTables().path!] + arguments)
        }

        func listing() throws -> String? {
            let (status, output) = try nft(["list", "table", "ip", "weft"])
            return status == 0 ? output : nil
        }

        /// Runs `body` on a thread inside the namespace: the keeper's nft children start there.
        func inside<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
            try inNetworkNamespace(name, body)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func installsOnceRepairsWhatIsTamperedWithAndRemoves() throws {
        let namespace = try Namespace()
        defer { namespace.close() }
        let keeper = TrafficRuleKeeper()
        let ruleset = Rulesets.ipv4()

        try namespace.inside { try keeper.install(ruleset) }
        try namespace.inside { try keeper.install(ruleset) }
        #expect(try namespace.listing() == ruleset.text, "applying twice leaves exactly one copy")
        #expect(try namespace.inside { keeper.check() } == .intact)

        // One rule deleted by handle.
        let masquerade = "ip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random"
        let (_, annotated) = try namespace.nft(["-a", "list", "chain", "ip", "weft", "postrouting"])
        let line = try #require(annotated.split(separator: "\n").first { $0.contains(masquerade) })
        let handle = try #require(line.split(separator: " ").last)
        #expect(try namespace.nft(["delete", "rule", "ip", "weft", "postrouting", "handle", String(handle)]).0 == 0)
        #expect(
            try namespace.inside { keeper.check() } == .restored(differences: ["missing in postrouting: \(masquerade)"])
        )
        #expect(try namespace.listing() == ruleset.text)

        // The whole table deleted.
        #expect(try namespace.nft(["delete", "table", "ip", "weft"]).0 == 0)
        #expect(try namespace.inside { keeper.check() } == .restored(differences: ["missing table ip weft"]))
        #expect(try namespace.listing() == ruleset.text)

        // A rule added to our chain goes.
        #expect(
            try namespace.nft(["add", "rule", "ip", "weft", "forward", "ip", "saddr", "198.18.0.9", "drop"]).0 == 0
        )
        #expect(
            try namespace.inside { keeper.check() }
                == .restored(differences: ["unexpected in forward: ip saddr 198.18.0.9 drop"])
        )
        #expect(try namespace.listing() == ruleset.text)

        // A moved lease: the table is rendered for the new subnet, in one piece.
        let moved = TrafficRuleset(
            network: ruleset.network,
            subnet: IPv4Prefix("10.244.9.0/24")!,
            masquerade: true,
            forwardAccept: true
        )
        try namespace.inside { try keeper.install(moved) }
        #expect(try namespace.listing() == moved.text)
        #expect(try namespace.inside { keeper.check() } == .intact)

        // A keeper that never installed leaves the table alone; this one removes it.
        #expect(try namespace.inside { try TrafficRuleKeeper().remove() } == false)
        #expect(try namespace.listing() != nil)
        #expect(try namespace.inside { try keeper.remove() } == true)
        #expect(try namespace.listing() == nil)
        #expect(try namespace.inside { keeper.check() } == .nothingWanted)
        // Other tables are not weftd's business.
        #expect(try namespace.nft(["add", "table", "ip", "other"]).0 == 0)
        try namespace.inside { try keeper.install(ruleset) }
        try namespace.inside { _ = try keeper.remove() }
        #expect(try namespace.nft(["list", "table", "ip", "other"]).0 == 0)
    }

    @Test(.timeLimit(.minutes(1)))
    func aFailingNftIsReportedAndRetriedUntilItWorks() throws {
        let namespace = try Namespace()
        defer { namespace.close() }
        // nft is not there yet: a path that a link to the real nft fills in later.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("weft-nft-\(namespace.name)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let later = directory + "/nft"
        let broken = TrafficRuleKeeper(nft: NFTables(path: later))
        let ruleset = Rulesets.ipv4()
        let error = try #require(throws: TrafficRulesError.self) {
            try namespace.inside { try broken.install(ruleset) }
        }
        #expect(error.description.hasPrefix("cannot apply table ip weft: starting \(later) failed"), "\(error)")
        #expect(!broken.isInstalled)
        #expect(broken.wanted == ruleset, "a failed ruleset stays wanted for the next check")
        if case .failed = try namespace.inside({ broken.check() }) {} else { Issue.record("check must fail again") }
        #expect(try namespace.listing() == nil)

        // nft refusing (a rule for a chain that does not exist) is one line with nft's own message.
        let keeper = TrafficRuleKeeper()
        let refused = try #require(throws: TrafficRulesError.self) {
            try namespace.inside {
                try keeper.nft.apply(
                    "add table ip weft\nadd rule ip weft nochain accept\n",
                    operation: "apply table ip weft"
                )
            }
        }
        #expect(refused.description.hasPrefix("cannot apply table ip weft: nft exited 1: Error:"), "\(refused)")
        #expect(try namespace.listing() == nil, "a refused transaction leaves nothing behind")

        // Once nft works, the next check installs the wanted ruleset.
        try FileManager.default.createSymbolicLink(atPath: later, withDestinationPath: NFTables().path!)
        #expect(try namespace.inside { broken.check() } == .installed)
        #expect(broken.isInstalled)
        #expect(try namespace.listing() == ruleset.text)
        #expect(try namespace.inside { broken.check() } == .intact)

        // An empty ruleset (--ip-masq=false --iptables-forward-rules=false) leaves nftables alone.
        _ = try namespace.inside { try broken.remove() }
        let working = TrafficRuleKeeper()
        try namespace.inside {
            try working.install(
                TrafficRuleset(
                    network: ruleset.network,
                    subnet: ruleset.subnet,
                    masquerade: false,
                    forwardAccept: false
                )
            )
        }
        #expect(try namespace.listing() == nil)
        #expect(try namespace.inside { working.check() } == .nothingWanted)
    }
}
