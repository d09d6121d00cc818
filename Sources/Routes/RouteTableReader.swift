import Synchronization

/// One worker thread's handle on a `RouteTablePublisher`. Noncopyable and not Sendable: it is
/// created on its worker thread (`publisher.makeReader()`) and used only there.
///
/// Per batch:
/// ```
/// let table = reader.current()   // one acquire load
/// ... table.lookup(destination) for each packet ...
/// reader.quiescent()             // the table (and any earlier one) may now be freed
/// ```
/// Before blocking in the kernel for long (an idle wait), call `goOffline()` so this reader does
/// not hold back reclamation, and `goOnline()` before the next `current()`.
///
/// `RouteTableReader` reads IPv4 tables, `IPv6RouteTableReader` IPv6 ones.
public struct RouteTableReaderOf<Family: RouteFamily>: ~Copyable {
    @usableFromInline let words: UnsafeMutablePointer<PublicationWords<Family>>
    @usableFromInline let slot: UnsafeMutablePointer<ReaderSlot>
    // Keeps `words` and `slot` alive; never touched on the per-batch path.
    private let publisher: RouteTablePublisherOf<Family>

    init(
        publisher: RouteTablePublisherOf<Family>,
        words: UnsafeMutablePointer<PublicationWords<Family>>,
        slot: UnsafeMutablePointer<ReaderSlot>
    ) {
        self.publisher = publisher
        self.words = words
        self.slot = slot
    }

    deinit { publisher.unregister(slot) }

    /// The newest published table. Valid until this reader's next `quiescent()` or `goOffline()`;
    /// do not keep it (or anything pointing into it) past that. The reader must be online.
    @inlinable
    public func current() -> RouteTableOf<Family> {
        assert(
            slot.pointee.epoch.load(ordering: .relaxed) != ReaderSlot.offline,
            "RouteTableReader.current() called while offline: call goOnline() first"
        )
        // Acquire pairs with the publisher's exchange: the table's contents are visible.
        return RouteTableOf(header: words.pointee.current.load(ordering: .acquiring))
    }

    /// Announces that this thread holds no table obtained before this call. Call it between
    /// batches; how often bounds how long retired tables wait to be freed.
    @inlinable
    public func quiescent() {
        // Load the epoch first: anything published before that epoch was exchanged out before it,
        // so the next current() cannot return it (see RouteTablePublisher's protocol comment).
        // Release: every read of earlier tables happens before the publisher sees this store.
        let epoch = words.pointee.epoch.load(ordering: .acquiring)
        slot.pointee.epoch.store(epoch, ordering: .releasing)
    }

    /// Stops holding back reclamation; implies `quiescent()`. The reader must not use any table it
    /// obtained before, nor call `current()` until `goOnline()`.
    public func goOffline() {
        slot.pointee.epoch.store(ReaderSlot.offline, ordering: .releasing)
    }

    /// Comes back after `goOffline()`; the next `current()` may be called right after.
    public func goOnline() {
        slot.pointee.epoch.store(
            words.pointee.epoch.load(ordering: .sequentiallyConsistent),
            ordering: .sequentiallyConsistent
        )
        // Pairs with the fence in the publisher's reclaim: see RouteTablePublisher's comment.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
    }

    public var isOnline: Bool { slot.pointee.epoch.load(ordering: .relaxed) != ReaderSlot.offline }
}
