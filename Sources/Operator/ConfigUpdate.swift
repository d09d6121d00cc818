import Config

/// What `weft config set` is about to do: the new config validated by the parser weftd uses, and
/// what changes against the config in etcd. Built before anything is written, so a config weftd
/// would refuse never reaches etcd.
public struct ConfigUpdate: Equatable, Sendable {
    /// The config at `<prefix>/config` when it was read, or nil when the key does not exist.
    public struct Current: Equatable, Sendable {
        public var text: String
        /// The key's mod_revision: the write succeeds only if it still is this.
        public var modRevision: Int64

        public init(text: String, modRevision: Int64) {
            self.text = text
            self.modRevision = modRevision
        }
    }

    public var key: String
    public var text: String
    public var config: NetworkConfig
    public var current: Current?
    /// The current config's summary, nil when there is none or it does not parse.
    public var currentSummary: ConfigSummary?
    /// Why the current config does not parse, when it does not (the update then replaces it).
    public var currentProblem: String?
    public var changes: [ConfigSummary.Change]

    public struct Refusal: Error, Equatable, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Throws one line naming the problem and the fix when `text` is not a config weftd accepts.
    public init(key: String, text: String, current: Current?) throws(Refusal) {
        do {
            config = try NetworkConfig.parse(text)
        } catch {
            throw Refusal(description: "not written to \(key): \(error)")
        }
        self.key = key
        self.text = text
        self.current = current
        if let current {
            do {
                currentSummary = ConfigSummary(try NetworkConfig.parse(current.text), raw: current.text)
            } catch {
                currentProblem = error.description
            }
        }
        changes = ConfigSummary.changes(from: currentSummary, to: ConfigSummary(config, raw: text))
    }

    /// The JSON text is the same as in etcd: writing would change nothing.
    public var isUnchanged: Bool { current?.text == text }

    /// What the update does, for the operator: one line per changed field.
    public var description: [String] {
        var lines: [String] = []
        if current == nil {
            lines.append("\(key) does not exist yet; creating it")
        } else if let currentProblem {
            lines.append("replacing an invalid config (\(currentProblem))")
        }
        if isUnchanged {
            lines.append("no change: \(key) already holds this config")
        } else if changes.isEmpty {
            lines.append("no change to the config in force (only the JSON's wording differs)")
        } else {
            lines += changes.map { "  " + $0.line }
        }
        return lines
    }
}
