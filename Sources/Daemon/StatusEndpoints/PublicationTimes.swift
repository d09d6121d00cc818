import Foundation
import Synchronization

/// When each route-table generation was published, for /v1/routes' age and the age gauge.
final class PublicationTimes: Sendable {
    private let last: Mutex<(generation: UInt64, at: Date)>

    /// Generation 0, the empty table a dataplane starts with, dates from `start`.
    init(start: Date = Date()) {
        last = Mutex((0, start))
    }

    func record(generation: UInt64, at date: Date = Date()) {
        last.withLock { $0 = (generation, date) }
    }

    /// When `generation` was published; a newer one than recorded is being published right now
    /// (the publisher swaps the table before the watcher's callback runs).
    func publishedAt(generation: UInt64, now: Date) -> Date {
        let recorded = last.withLock { $0 }
        return generation > recorded.generation ? now : recorded.at
    }
}
