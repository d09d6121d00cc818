import Synchronization

/// Hands route snapshots from the control plane to the dataplane workers with quiescent-state-based
/// reclamation (QSBR): publishing is one atomic pointer exchange; a worker reads the pointer once
/// per batch without touching any reference count; a replaced snapshot is freed only after every
/// online reader has announced a quiescent state (holding no snapshot) since it was replaced.
///
/// Protocol, with E the global epoch (starts at 1; 0 in a reader slot means offline):
/// - publish: exchange the current pointer, then E += 1; the old snapshot is retired with the new
///   value r of E.
/// - reader.quiescent(): slot = E (load E, then store the slot). A reader whose slot is ≥ r loaded
///   E after the bump to r, so the exchange happened before, and every later current() returns a
///   newer snapshot; pointers loaded before quiescent() are, by contract, no longer used.
/// - reclaim: free every retired snapshot whose r ≤ the minimum slot over online readers.
/// - goOnline(): slot = E, then a sequentially consistent fence before the next current(); publish
///   has a matching fence between its exchange and its scan of the slots. Of the two fenced
///   store→load pairs at least one sees the other's store: either the scan sees the reader online
///   (with an epoch below r, so nothing it can see is freed) or the reader sees the new pointer.
///
/// The control-plane side (publish, reclaim, registration) runs under a lock; it is never on the
/// per-packet path. Readers keep the publisher alive: it is freed, with every snapshot it holds,
/// after its last reader and its owner let go of it.
///
/// `RouteTablePublisher` publishes IPv4 tables, `IPv6RouteTablePublisher` IPv6 ones; a dual-stack
/// dataplane has one of each, and a worker one reader of each.
public final class RouteTablePublisherOf<Family: RouteFamily>: @unchecked Sendable {
    // @unchecked: `words` points at atomics only; `state` is behind a Mutex; the rest is immutable.

    /// The words readers touch, in manually allocated memory so a reader reaches them through a
    /// plain pointer (no class reference, so no retain/release per batch).
    private let words: UnsafeMutablePointer<PublicationWords<Family>>
    private let state: Mutex<State>
    private let poisonsReclaimed: Bool
    private let onFree: (@Sendable (_ generation: UInt64) -> Void)?

    private struct State {
        var retired: [Retired] = []
        var quarantine: [Retired] = []
        var readers: [SlotReference] = []
        var published = 0
        var reclaimed = 0
    }

    // @unchecked Sendable: the blocks and slots the state refers to are only touched under the
    // lock (or, for slots, through their atomics).
    private struct Retired: @unchecked Sendable {
        let table: UnsafeMutablePointer<RouteTableHeader<Family>>
        /// Publish: the epoch it was retired at. Quarantine: its generation before poisoning.
        let stamp: UInt64
    }

    private struct SlotReference: @unchecked Sendable {
        let slot: UnsafeMutablePointer<ReaderSlot>
    }

    /// - Parameters:
    ///   - initial: the first table readers see.
    ///   - poisonsReclaimed: debugging aid. Instead of freeing a reclaimed snapshot, overwrite it
    ///     (generation UInt64.max, no routes, every lookup a miss) and keep its memory until the
    ///     publisher is freed, so a reader that breaks the protocol reads poison, not freed memory.
    ///   - onFree: called with a snapshot's generation when its memory is returned to the system
    ///     (without the lock held), including the current one when the publisher goes away.
    public init(
        _ initial: consuming RouteSnapshotOf<Family>,
        poisonsReclaimed: Bool = false,
        onFree: (@Sendable (_ generation: UInt64) -> Void)? = nil
    ) {
        words = .allocate(capacity: 1)
        words.initialize(to: PublicationWords(current: initial.relinquish()))
        state = Mutex(State())
        self.poisonsReclaimed = poisonsReclaimed
        self.onFree = onFree
    }

    deinit {
        // Readers hold a strong reference, so none is left: every snapshot can go.
        var freed: [UInt64] = []
        let current = words.pointee.current.load(ordering: .acquiring)
        freed.append(current.pointee.generation)
        RouteTableMemory.deallocate(current)
        state.withLock { state in
            for retired in state.retired {
                freed.append(retired.table.pointee.generation)
                RouteTableMemory.deallocate(retired.table)
            }
            for poisoned in state.quarantine {
                freed.append(poisoned.stamp)
                RouteTableMemory.deallocate(poisoned.table)
            }
            precondition(state.readers.isEmpty, "route table publisher freed with registered readers")
        }
        words.deinitialize(count: 1)
        words.deallocate()
        if let onFree { freed.forEach(onFree) }
    }

    /// Makes `snapshot` the table every reader gets from its next `current()`, retires the previous
    /// one, and frees whatever retired snapshot no reader can still hold.
    public func publish(_ snapshot: consuming RouteSnapshotOf<Family>) {
        let fresh = Retired(table: snapshot.relinquish(), stamp: 0)
        let freed = state.withLock { state in
            // Exchange before bump: a reader that sees the bumped epoch also sees the new pointer.
            let old = words.pointee.current.exchange(fresh.table, ordering: .sequentiallyConsistent)
            let epoch = words.pointee.epoch.wrappingAdd(1, ordering: .sequentiallyConsistent).newValue
            state.retired.append(Retired(table: old, stamp: epoch))
            state.published += 1
            return reclaimLocked(&state)
        }
        report(freed)
    }

    /// Frees (or, with `poisonsReclaimed`, poisons) the retired snapshots no reader can still
    /// hold; returns how many. publish does this too; call it after readers went quiescent or
    /// offline to free memory sooner.
    @discardableResult
    public func reclaim() -> Int {
        let (reclaimed, freed) = state.withLock { state in
            let before = state.reclaimed
            let freed = reclaimLocked(&state)
            return (state.reclaimed - before, freed)
        }
        report(freed)
        return reclaimed
    }

    /// Registers a reader for the calling thread, online at the current epoch. Create it on the
    /// worker thread that will use it; it unregisters itself when destroyed.
    public func makeReader() -> RouteTableReaderOf<Family> {
        let slot = state.withLock { state in
            // Under the lock no publish is in flight, so the epoch read here is at least the
            // retire epoch of every retired snapshot, and this reader's first current() (which
            // happens after the lock is released) already sees the newest pointer.
            let slot = ReaderSlot.allocate(epoch: words.pointee.epoch.load(ordering: .sequentiallyConsistent))
            state.readers.append(SlotReference(slot: slot))
            return SlotReference(slot: slot)
        }.slot
        return RouteTableReaderOf(publisher: self, words: words, slot: slot)
    }

    func unregister(_ slot: UnsafeMutablePointer<ReaderSlot>) {
        let leaving = SlotReference(slot: slot)
        let freed = state.withLock { state in
            state.readers.removeAll { $0.slot == leaving.slot }
            ReaderSlot.deallocate(leaving.slot)
            return reclaimLocked(&state)
        }
        report(freed)
    }

    /// Runs `body` with the current table, for display on the control-plane side. Snapshots are
    /// only retired and freed under the same lock, so the table cannot go away during `body`.
    public func withCurrent<Result>(_ body: (RouteTableOf<Family>) throws -> Result) rethrows -> Result {
        try state.withLock { _ in
            try body(RouteTableOf(header: words.pointee.current.load(ordering: .acquiring)))
        }
    }

    public struct Statistics: Sendable, Equatable {
        /// Snapshots published after the initial one.
        public var published: Int
        /// Retired snapshots not yet freed because some reader may still hold them.
        public var awaitingReclamation: Int
        /// Retired snapshots freed (or poisoned, with `poisonsReclaimed`).
        public var reclaimed: Int
        /// Registered readers, online or not.
        public var readers: Int
        /// Readers that are online.
        public var onlineReaders: Int
    }

    public var statistics: Statistics {
        state.withLock { state in
            Statistics(
                published: state.published,
                awaitingReclamation: state.retired.count,
                reclaimed: state.reclaimed,
                readers: state.readers.count,
                onlineReaders: state.readers.count {
                    $0.slot.pointee.epoch.load(ordering: .relaxed) != ReaderSlot.offline
                }
            )
        }
    }

    /// Frees (or poisons) retired snapshots older than every online reader's last quiescent
    /// point; returns the generations actually freed, for `onFree`.
    private func reclaimLocked(_ state: inout State) -> [UInt64] {
        guard !state.retired.isEmpty else { return [] }
        // Pairs with the fence in RouteTableReader.goOnline(): see the type's comment.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        var oldestSeen = UInt64.max
        for reader in state.readers {
            // Acquire: the reader's reads of a snapshot happen before its quiescent store, so
            // they happen before our free.
            let epoch = reader.slot.pointee.epoch.load(ordering: .sequentiallyConsistent)
            if epoch != ReaderSlot.offline { oldestSeen = min(oldestSeen, epoch) }
        }
        var freed: [UInt64] = []
        var kept: [Retired] = []
        for retired in state.retired {
            guard retired.stamp <= oldestSeen else {
                kept.append(retired)
                continue
            }
            state.reclaimed += 1
            let generation = retired.table.pointee.generation
            if poisonsReclaimed {
                RouteTableMemory.poison(retired.table)
                state.quarantine.append(Retired(table: retired.table, stamp: generation))
            } else {
                RouteTableMemory.deallocate(retired.table)
                freed.append(generation)
            }
        }
        state.retired = kept
        return freed
    }

    private func report(_ freed: [UInt64]) {
        if let onFree { freed.forEach(onFree) }
    }
}

/// The publication words shared by the publisher and all its readers.
@usableFromInline
struct PublicationWords<Family: RouteFamily>: ~Copyable {
    /// The current snapshot; never null, never freed while current.
    @usableFromInline let current: Atomic<UnsafeMutablePointer<RouteTableHeader<Family>>>
    /// Bumped once per publish, after the exchange. Starts at 1 so 0 can mean "offline".
    @usableFromInline let epoch: Atomic<UInt64>

    init(current: UnsafeMutablePointer<RouteTableHeader<Family>>) {
        self.current = Atomic(current)
        epoch = Atomic(1)
    }
}

/// One reader's announced epoch, alone on its cache lines: the reader stores to it once per
/// batch and must not invalidate a line another worker's slot lives on.
@usableFromInline
struct ReaderSlot: ~Copyable {
    /// The global epoch at the reader's last quiescent point; `offline` when it holds nothing and
    /// will not until it comes back online.
    @usableFromInline let epoch: Atomic<UInt64>

    @usableFromInline static var offline: UInt64 { 0 }

    /// Two 64-byte lines: adjacent-line prefetchers pull lines in pairs.
    static let footprint = 128

    static func allocate(epoch: UInt64) -> UnsafeMutablePointer<ReaderSlot> {
        let block = UnsafeMutableRawPointer.allocate(byteCount: footprint, alignment: footprint)
        let slot = block.bindMemory(to: ReaderSlot.self, capacity: 1)
        slot.initialize(to: ReaderSlot(epoch: Atomic(epoch)))
        return slot
    }

    static func deallocate(_ slot: UnsafeMutablePointer<ReaderSlot>) {
        slot.deinitialize(count: 1)
        UnsafeMutableRawPointer(slot).deallocate()
    }
}
