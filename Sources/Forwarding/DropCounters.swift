import Packets

/// One counter per `DropReason`, indexed by its raw value, held inline: counting a drop is an
/// add to a fixed slot, no allocation, no dictionary.
public struct DropCounters: Equatable, Sendable {
    /// Slots for reasons; `DropReason` cases are only appended, so there is room to grow.
    public static let capacity = 32

    // A tuple, not InlineArray: InlineArray needs macOS 26 and the package still builds for 15.
    @usableFromInline
    var slots:
        (
            UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
            UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
            UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
            UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64
        ) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

    public init() {
        precondition(
            DropReason.allCases.count <= DropCounters.capacity,
            "DropReason outgrew DropCounters.capacity (\(DropCounters.capacity)): raise it"
        )
    }

    @inlinable
    public mutating func count(_ reason: DropReason, by amount: UInt64 = 1) {
        withUnsafeMutableBytes(of: &slots) { slots in
            let slot = Int(reason.rawValue) &* MemoryLayout<UInt64>.stride
            let value = slots.load(fromByteOffset: slot, as: UInt64.self)
            slots.storeBytes(of: value &+ amount, toByteOffset: slot, as: UInt64.self)
        }
    }

    @inlinable
    public subscript(reason: DropReason) -> UInt64 {
        withUnsafeBytes(of: slots) {
            $0.load(fromByteOffset: Int(reason.rawValue) &* MemoryLayout<UInt64>.stride, as: UInt64.self)
        }
    }

    /// Every drop, whatever the reason.
    public var total: UInt64 { DropReason.allCases.reduce(0) { $0 &+ self[$1] } }

    /// The reasons counted at least once, in `DropReason` order.
    public var nonZero: [(reason: DropReason, count: UInt64)] {
        DropReason.allCases.compactMap { self[$0] > 0 ? ($0, self[$0]) : nil }
    }

    /// Adds another set of counters (a worker's) into this one.
    public mutating func add(_ other: DropCounters) {
        for reason in DropReason.allCases { count(reason, by: other[reason]) }
    }

    public static func == (lhs: DropCounters, rhs: DropCounters) -> Bool {
        DropReason.allCases.allSatisfy { lhs[$0] == rhs[$0] }
    }
}
