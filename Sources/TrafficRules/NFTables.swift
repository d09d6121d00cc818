import Foundation
import Spawn

/// The `nft` tool, run as a child process in weftd's own network namespace. Control-plane code:
/// a call takes milliseconds and happens at startup, on a lease change and once per resync.
public struct NFTables: Sendable {
    /// Where nft is looked for when no path is given (Debian's, then other layouts).
    public static let searchPaths = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft", "/usr/local/sbin/nft"]

    /// The executable; nil when none was found (every call then fails with `toolMissing`).
    public let path: String?

    public init(path: String? = nil) {
        self.path = path ?? Self.searchPaths.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs `script` as one nft command line: nft parses the whole buffer and commits it as one
    /// transaction, all or nothing. An argument, not `-f -`, so no pipe can raise SIGPIPE in weftd.
    public func apply(_ script: String, operation: String) async throws(TrafficRulesError) {
        _ = try await run([script], operation: operation)
    }

    /// `nft list table ip weft` (`ip6 weft` for `family` "ip6"), or nil when the table does not exist.
    public func listTable(family: String = TrafficRuleset.family) async throws(TrafficRulesError) -> String? {
        try await listing(
            ["list", "table", family, TrafficRuleset.table],
            operation: "list \(TrafficRuleset.tableSpecifier(family))"
        )
    }

    /// Whether nft has `table <family> <table>`.
    public func hasTable(family: String, _ table: String) async throws(TrafficRulesError) -> Bool {
        try await listing(["list", "table", family, table], operation: "list table \(family) \(table)") != nil
    }

    /// Whether nft has `chain <family> <table> <chain>` (false when the chain or its table is missing).
    public func hasChain(family: String, table: String, _ chain: String) async throws(TrafficRulesError) -> Bool {
        try await listing(["list", "chain", family, table, chain], operation: "list chain \(family) \(table) \(chain)")
            != nil
    }

    /// What an `nft list …` printed, or nil when what it names does not exist.
    private func listing(_ arguments: [String], operation: String) async throws(TrafficRulesError) -> String? {
        do throws(TrafficRulesError) {
            return try await run(arguments, operation: operation)
        } catch {
            // ENOENT is how nft says it is not there (LC_ALL=C keeps strerror in English).
            if case .refused(_, let output) = error.reason, output.contains("No such file or directory") { return nil }
            throw error
        }
    }

    /// Runs nft with `arguments` and returns its standard output; a non-zero exit throws with its
    /// standard error.
    func run(_ arguments: [String], operation: String) async throws(TrafficRulesError) -> String {
        guard let path else { throw TrafficRulesError(operation: operation, .toolMissing(searched: Self.searchPaths)) }
        let outcome: ChildProcess.Outcome
        do {
            outcome = try await ChildProcess.run(
                path,
                arguments: arguments,
                environment: ["LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]
            )
        } catch  where error.reason == .cannotStart(errno: ENOENT) {
            // Removed since weftd found it at startup.
            throw TrafficRulesError(operation: operation, .toolMissing(searched: [path]))
        } catch {
            if case .cannotStart = error.reason {
                throw TrafficRulesError(operation: operation, .launch(path: path, problem: error.description))
            }
            throw TrafficRulesError(operation: operation, .unfinished(error.description))
        }
        guard outcome.succeeded else {
            let status: Int32 =
                switch outcome.termination {
                case .exited(let code): code
                case .signalled(let signal): 128 + signal
                }
            throw TrafficRulesError(
                operation: operation,
                .refused(status: status, output: String(decoding: outcome.errors, as: UTF8.self))
            )
        }
        return String(decoding: outcome.output, as: UTF8.self)
    }
}
