/// Whether a peer watcher's route table is confirmed current, kept as episodes: the first
/// failure begins one (told once), the next answering watch ends it. Keeps the metrics
/// (`weft_route_table_confirmed`, `weft_route_table_unconfirmed_episodes_total`); the watcher
/// says the log line and tells the daemon, in its store's words.
public struct FreshnessEpisodes: Sendable {
    public enum Confirmation: Sendable, Equatable {
        /// The first confirmation of the watcher's life.
        case first
        /// The end of an unconfirmed episode that lasted `after`.
        case again(after: Duration)
    }

    private var unconfirmedSince: Duration?
    private var everConfirmed = false
    private let confirmedGauge = ControlPlaneMetrics.routeTableConfirmed()
    private let unconfirmedEpisodes = ControlPlaneMetrics.routeTableUnconfirmedEpisodes()

    public init() {}

    /// The table is current at `now`; nil when it already was (nothing to tell).
    public mutating func confirm(at now: Duration) -> Confirmation? {
        if let since = unconfirmedSince {
            unconfirmedSince = nil
            confirmedGauge.record(1)
            return .again(after: now - since)
        }
        guard !everConfirmed else { return nil }
        everConfirmed = true
        confirmedGauge.record(1)
        return .first
    }

    /// The table cannot be confirmed from `now`; true when this begins an episode (tell it once).
    public mutating func unconfirm(at now: Duration) -> Bool {
        guard unconfirmedSince == nil else { return false }
        unconfirmedSince = now
        confirmedGauge.record(0)
        unconfirmedEpisodes.increment()
        return true
    }
}
