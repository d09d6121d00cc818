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
        let name: String
        /// nft inside the namespace, for a keeper: a script running it under `ip netns exec`, as
        /// a keeper's children start on whichever thread spawns them, never one in the namespace.
        let tables: NFTables
        private let script: String

        init() throws {
            name = "wtr\(getpid() % 100_000)\(UInt16.random(in: 0...999))"
            script = FileManager.default.temporaryDirectory.appendingPathComponent("weft-nft-in-\(name)").path
            tables = NFTables(path: script)
            let (status, output) = try runIP(["netns", "add", name])
            guard status == 0 else { throw SetupFailure(description: "ip netns add \(name): \(output)") }
            try writeNFT(at: script)
        }

        func close() {
            unlink(script)
            _ = try? runIP(["netns", "del", name])
        }

        /// Puts an executable at `path` that runs nft in this namespace with its arguments.
        func writeNFT(at path: String) throws {
            let text = "#!/bin/sh\nexec /usr/sbin/ip netns exec \(name) \(NFTables().path!) \"$@\"\n"
            let attributes: [FileAttributeKey: Any] = [.posixPermissions: 0o755]
            guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: attributes) else {
                throw SetupFailure(description: "cannot write \(path)")
            }
        }

        /// `nft arguments…` inside the namespace; the status and combined output.
        func nft(_ arguments: [String]) throws -> (Int32, String) {
            try runIP(["netns", "exec", name, NFTables().path!] + arguments)
        }

        func listing() throws -> String? {
            let (status, output) = try nft(["list", "table", "ip", "weft"])
            return status == 0 ? output : nil
        }

        /// Runs `body` on a thread inside the namespace.
        func inside<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
            try inNetworkNamespace(name, body)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func installsOnceRepairsWhatIsTamperedWithAndRemoves() async throws {
        let namespace = try Namespace()
        defer { namespace.close() }
        let keeper = TrafficRuleKeeper(nft: namespace.tables)
        let ruleset = Rulesets.ipv4()

        try await keeper.install(ruleset)
        try await keeper.install(ruleset)
        #expect(try namespace.listing() == ruleset.text, "applying twice leaves exactly one copy")
        #expect(await keeper.check() == .intact)

        // One rule deleted by handle.
        let masquerade = "ip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random"
        let (_, annotated) = try namespace.nft(["-a", "list", "chain", "ip", "weft", "postrouting"])
        let line = try #require(annotated.split(separator: "\n").first { $0.contains(masquerade) })
        let handle = try #require(line.split(separator: " ").last)
        #expect(try namespace.nft(["delete", "rule", "ip", "weft", "postrouting", "handle", String(handle)]).0 == 0)
        #expect(
            await keeper.check() == .restored(differences: ["missing in postrouting: \(masquerade)"])
        )
        #expect(try namespace.listing() == ruleset.text)

        // The whole table deleted.
        #expect(try namespace.nft(["delete", "table", "ip", "weft"]).0 == 0)
        #expect(await keeper.check() == .restored(differences: ["missing table ip weft"]))
        #expect(try namespace.listing() == ruleset.text)

        // A rule added to our chain goes.
        #expect(
            try namespace.nft(["add", "rule", "ip", "weft", "forward", "ip", "saddr", "198.18.0.9", "drop"]).0 == 0
        )
        #expect(
            await keeper.check()
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
        try await keeper.install(moved)
        #expect(try namespace.listing() == moved.text)
        #expect(await keeper.check() == .intact)

        // A keeper that never installed leaves the table alone; this one removes it.
        #expect(try await TrafficRuleKeeper(nft: namespace.tables).remove() == false)
        #expect(try namespace.listing() != nil)
        #expect(try await keeper.remove() == true)
        #expect(try namespace.listing() == nil)
        #expect(await keeper.check() == .nothingWanted)
        // Other tables are not weftd's business.
        #expect(try namespace.nft(["add", "table", "ip", "other"]).0 == 0)
        try await keeper.install(ruleset)
        _ = try await keeper.remove()
        #expect(try namespace.nft(["list", "table", "ip", "other"]).0 == 0)
    }

    @Test(.timeLimit(.minutes(1)))
    func aFailingNftIsReportedAndRetriedUntilItWorks() async throws {
        let namespace = try Namespace()
        defer { namespace.close() }
        // nft is not there yet: a path that a script running the real nft fills in later.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("weft-nft-\(namespace.name)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let later = directory + "/nft"
        let broken = TrafficRuleKeeper(nft: NFTables(path: later))
        let ruleset = Rulesets.ipv4()
        let error = try await #require(throws: TrafficRulesError.self) {
            try await broken.install(ruleset)
        }
        #expect(
            error.description.hasPrefix("cannot apply table ip weft: no nft executable (looked in \(later))"),
            "\(error)"
        )
        #expect(await !broken.isInstalled)
        #expect(await broken.wanted == ruleset, "a failed ruleset stays wanted for the next check")
        if case .failed = await broken.check() {} else { Issue.record("check must fail again") }
        #expect(try namespace.listing() == nil)

        // nft refusing (a rule for a chain that does not exist) is one line with nft's own message.
        let keeper = TrafficRuleKeeper(nft: namespace.tables)
        let refused = try await #require(throws: TrafficRulesError.self) {
            try await keeper.nft.apply(
                "add table ip weft\nadd rule ip weft nochain accept\n",
                operation: "apply table ip weft"
            )
        }
        #expect(refused.description.hasPrefix("cannot apply table ip weft: nft exited 1: Error:"), "\(refused)")
        #expect(try namespace.listing() == nil, "a refused transaction leaves nothing behind")

        // Once nft works, the next check installs the wanted ruleset.
        try namespace.writeNFT(at: later)
        #expect(await broken.check() == .installed)
        #expect(await broken.isInstalled)
        #expect(try namespace.listing() == ruleset.text)
        #expect(await broken.check() == .intact)

        // An empty ruleset (--ip-masq=false --iptables-forward-rules=false) leaves nftables alone.
        _ = try await broken.remove()
        let working = TrafficRuleKeeper(nft: namespace.tables)
        try await working.install(
            TrafficRuleset(
                network: ruleset.network,
                subnet: ruleset.subnet,
                masquerade: false,
                forwardAccept: false
            )
        )
        #expect(try namespace.listing() == nil)
        #expect(await working.check() == .nothingWanted)
    }
}
