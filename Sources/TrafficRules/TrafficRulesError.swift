/// Why nft could not apply, list or remove Weft's table. `description` is one line naming the
/// operation and the fix.
public struct TrafficRulesError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Reason: Equatable, Sendable {
        /// No nft executable in any of the places looked at.
        case toolMissing(searched: [String])
        /// nft could not be started (the executable is there but exec failed).
        case launch(path: String, problem: String)
        /// nft started but gave no answer: killed at the deadline, or too much output.
        case unfinished(String)
        /// nft ran and refused; `output` is its standard error.
        case refused(status: Int32, output: String)
    }

    /// What was being done, e.g. "apply table ip weft".
    public let operation: String
    public let reason: Reason

    public init(operation: String, _ reason: Reason) {
        self.operation = operation
        self.reason = reason
    }

    public var description: String {
        let off =
            "or run weftd with --ip-masq=false --iptables-forward-rules=false --port-filter=false to leave nftables alone"
        switch reason {
        case .toolMissing(let searched):
            return
                "cannot \(operation): no nft executable (looked in \(searched.joined(separator: ", "))); install nftables (apt-get install nftables), \(off)"
        case .launch(let path, let problem):
            return "cannot \(operation): starting \(path) failed: \(problem); check that it is executable, \(off)"
        case .unfinished(let problem):
            return "cannot \(operation): \(problem)"
        case .refused(let status, let output):
            let message = Self.firstLine(output)
            if output.contains("Operation not permitted") || output.contains("Permission denied") {
                return
                    "cannot \(operation): nft says \(message); weftd needs CAP_NET_ADMIN for nftables (run it as root), \(off)"
            }
            return "cannot \(operation): nft exited \(status): \(message)"
        }
    }

    /// nft's first "Error:" line, else its first line: the rest is the script echoed with carets.
    static func firstLine(_ output: String) -> String {
        let lines = output.split(whereSeparator: \.isNewline).map { $0.trimmingBlanks() }.filter { !$0.isEmpty }
        return lines.first { $0.hasPrefix("Error:") } ?? lines.first ?? "no message"
    }
}
