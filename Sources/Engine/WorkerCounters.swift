import Addressing
import Forwarding
import Packets
import Synchronization

/// One worker's counters, in one allocation made before the worker starts.
///
/// Single writer: only the owning worker adds, with a relaxed load and a relaxed store (no locked
/// instruction, no lock), so a count costs a plain add. Anyone may read at any time with relaxed
/// loads; a reader sees each counter's value at some recent point, which is all a metric needs.
/// The handle is a bare pointer (no class reference on the hot path); `EngineCounters` owns the memory.
public struct WorkerCounters: @unchecked Sendable {
    /// Traffic counters, after the drop slots.
    public enum Traffic: Int, CaseIterable, Sendable {
        /// Packets and bytes read from the TUN (before any drop).
        case tunReadPackets, tunReadBytes
        /// Datagrams and payload bytes handed to the kernel for peers.
        case wireSentPackets, wireSentBytes
        /// Datagrams and payload bytes received on the socket (before any drop).
        case wireReceivedPackets, wireReceivedBytes
        /// Packets and bytes written to the TUN (delivered, plus ICMP replies).
        case tunWrittenPackets, tunWrittenBytes
        /// ICMP net unreachable replies written back to the TUN.
        case icmpReplies
        /// Sends or TUN writes the kernel refused (errno), and buffers the ring ran out of.
        case sendErrors, tunWriteErrors, bufferShortages
        /// Offloads: inner segments a UDP_GRO receive added to a super-packet (TUN writes saved),
        /// and sockets that refused a UDP_SEGMENT send (EIO) and went on one datagram per send.
        case coalescedSegments, segmentationFallbacks
        /// Offloads: small packets that left in a batch of several in one UDP_SEGMENT send.
        case batchedPackets
        /// Times the worker found nothing to do and slept in the kernel (each one a wake-up later).
        case idleWaits
        /// A smaller MTU on the way to a peer (UringPathMTU.swift): ICMP fragmentation needed
        /// written back to the TUN for IPv4 packets with DF that do not fit, and ICMPv6 Packet Too
        /// Big for IPv6 ones; sends made to fit it (TCP super-packets cut smaller than their
        /// sender's MSS, datagrams sent to be fragmented); times a worker learned a peer's path
        /// MTU from the kernel.
        case fragmentationNeededSent, packetTooBigSent, pathMTULimitedSends, pathMTUUpdates
    }

    /// Per-peer slots: open addressing on the peer's PublicIP; a full table counts into `overflow`.
    public static let peerCapacity = 1024
    /// key, sent packets, sent bytes, received packets, received bytes, path MTU (0: not learned)
    @usableFromInline static let peerWords = 6
    @usableFromInline static let dropBase = 0
    @usableFromInline static let trafficBase = DropCounters.capacity
    /// 24 traffic words: WorkerCountersTests checks that every Traffic case has its own.
    @usableFromInline static let overflowBase = trafficBase + 24
    @usableFromInline static let peerBase = overflowBase + peerWords
    static let wordCount = peerBase + peerCapacity * peerWords

    @usableFromInline let words: UnsafeMutablePointer<Atomic<UInt64>>

    init(words: UnsafeMutablePointer<Atomic<UInt64>>) { self.words = words }

    @inlinable @inline(__always)
    func add(_ index: Int, _ amount: UInt64) {
        let word = words + index
        word.pointee.store(word.pointee.load(ordering: .relaxed) &+ amount, ordering: .relaxed)
    }

    @inlinable
    public func countDrop(_ reason: DropReason, by amount: UInt64 = 1) {
        add(Self.dropBase + Int(reason.rawValue), amount)
    }

    @inlinable
    public func count(_ counter: Traffic, by amount: UInt64 = 1) {
        add(Self.trafficBase + counter.rawValue, amount)
    }

    /// `packets` datagrams (one unless a UDP_SEGMENT send) of `bytes` payload sent to the peer at `publicIP`.
    @inlinable
    public func countSent(to publicIP: IPv4Address, bytes: Int, packets: Int = 1) {
        let slot = peerSlot(publicIP)
        add(slot + 1, UInt64(truncatingIfNeeded: packets))
        add(slot + 2, UInt64(truncatingIfNeeded: bytes))
    }

    /// A datagram of `bytes` payload accepted from the peer at `publicIP`.
    @inlinable
    public func countReceived(from publicIP: IPv4Address, bytes: Int) {
        let slot = peerSlot(publicIP)
        add(slot + 3, 1)
        add(slot + 4, UInt64(truncatingIfNeeded: bytes))
    }

    /// The path MTU to `publicIP` this worker learned from the kernel; 0 when none. A gauge in
    /// the peer's slot: the worker reads it back when a packet is larger than its smallest one.
    @inlinable
    public func pathMTU(to publicIP: IPv4Address) -> Int {
        Int(truncatingIfNeeded: words[peerSlot(publicIP) + 5].load(ordering: .relaxed))
    }

    @inlinable
    public func setPathMTU(_ mtu: Int, to publicIP: IPv4Address) {
        words[peerSlot(publicIP) + 5].store(UInt64(truncatingIfNeeded: mtu), ordering: .relaxed)
    }

    /// The word index of `publicIP`'s slot, claiming an empty one on first sight. Keys are stored
    /// as address + 1 so 0 means empty; a slot once claimed is never given back (peers are few).
    @inlinable
    func peerSlot(_ publicIP: IPv4Address) -> Int {
        let key = UInt64(publicIP.value) &+ 1
        var index = Int(truncatingIfNeeded: (publicIP.value &* 0x9E37_79B1) >> 22) & (Self.peerCapacity - 1)
        for _ in 0..<Self.peerCapacity {
            let slot = Self.peerBase + index * Self.peerWords
            let stored = words[slot].load(ordering: .relaxed)
            if stored == key { return slot }
            if stored == 0 {
                // Release: a reader that sees the key sees zeroed counters behind it, never another peer's.
                words[slot].store(key, ordering: .releasing)
                return slot
            }
            index = (index + 1) & (Self.peerCapacity - 1)
        }
        return Self.overflowBase
    }

    // MARK: Reading (any thread)

    public func drops() -> DropCounters {
        var counters = DropCounters()
        for reason in DropReason.allCases {
            counters.count(reason, by: words[Self.dropBase + Int(reason.rawValue)].load(ordering: .relaxed))
        }
        return counters
    }

    public func value(_ counter: Traffic) -> UInt64 {
        words[Self.trafficBase + counter.rawValue].load(ordering: .relaxed)
    }

    public func peers() -> [IPv4Address: PeerTraffic] {
        var result: [IPv4Address: PeerTraffic] = [:]
        for index in 0..<Self.peerCapacity {
            let slot = Self.peerBase + index * Self.peerWords
            let key = words[slot].load(ordering: .acquiring)
            guard key != 0 else { continue }
            result[IPv4Address(UInt32(truncatingIfNeeded: key &- 1))] = traffic(at: slot)
        }
        return result
    }

    /// Traffic of peers that found the table full.
    public func overflow() -> PeerTraffic { traffic(at: Self.overflowBase) }

    private func traffic(at slot: Int) -> PeerTraffic {
        PeerTraffic(
            sentPackets: words[slot + 1].load(ordering: .relaxed),
            sentBytes: words[slot + 2].load(ordering: .relaxed),
            receivedPackets: words[slot + 3].load(ordering: .relaxed),
            receivedBytes: words[slot + 4].load(ordering: .relaxed),
            pathMTU: Int(truncatingIfNeeded: words[slot + 5].load(ordering: .relaxed))
        )
    }
}

public struct PeerTraffic: Equatable, Sendable {
    public var sentPackets: UInt64 = 0
    public var sentBytes: UInt64 = 0
    public var receivedPackets: UInt64 = 0
    public var receivedBytes: UInt64 = 0
    /// The path MTU to the peer that the kernel reported (a router on the way with a smaller MTU
    /// than our interface); 0 while none was learned. Over workers: the smallest learned.
    public var pathMTU = 0

    public init(
        sentPackets: UInt64 = 0,
        sentBytes: UInt64 = 0,
        receivedPackets: UInt64 = 0,
        receivedBytes: UInt64 = 0,
        pathMTU: Int = 0
    ) {
        self.sentPackets = sentPackets
        self.sentBytes = sentBytes
        self.receivedPackets = receivedPackets
        self.receivedBytes = receivedBytes
        self.pathMTU = pathMTU
    }

    public mutating func add(_ other: PeerTraffic) {
        sentPackets &+= other.sentPackets
        sentBytes &+= other.sentBytes
        receivedPackets &+= other.receivedPackets
        receivedBytes &+= other.receivedBytes
        if other.pathMTU > 0 && (pathMTU == 0 || other.pathMTU < pathMTU) { pathMTU = other.pathMTU }
    }
}

/// Owns every worker's counter block; the control plane reads totals from here.
public final class EngineCounters: @unchecked Sendable {
    public let workers: [WorkerCounters]

    public init(workerCount: Int) {
        workers = (0..<workerCount).map { _ in
            let words = UnsafeMutablePointer<Atomic<UInt64>>.allocate(capacity: WorkerCounters.wordCount)
            for index in 0..<WorkerCounters.wordCount { (words + index).initialize(to: Atomic(0)) }
            return WorkerCounters(words: words)
        }
    }

    deinit {
        for worker in workers {
            worker.words.deinitialize(count: WorkerCounters.wordCount)
            worker.words.deallocate()
        }
    }

    /// Sums over all workers, read without stopping them.
    public func snapshot() -> EngineStatistics {
        var statistics = EngineStatistics()
        for worker in workers {
            statistics.drops.add(worker.drops())
            for counter in WorkerCounters.Traffic.allCases {
                statistics.traffic[counter, default: 0] &+= worker.value(counter)
            }
            for (address, traffic) in worker.peers() { statistics.peers[address, default: PeerTraffic()].add(traffic) }
            statistics.unattributed.add(worker.overflow())
        }
        return statistics
    }
}

/// Totals over all workers at one moment.
public struct EngineStatistics: Equatable, Sendable {
    public var drops = DropCounters()
    public var traffic: [WorkerCounters.Traffic: UInt64] = [:]
    public var peers: [IPv4Address: PeerTraffic] = [:]
    /// Traffic of peers beyond `WorkerCounters.peerCapacity`.
    public var unattributed = PeerTraffic()

    public init() {}

    public subscript(counter: WorkerCounters.Traffic) -> UInt64 { traffic[counter] ?? 0 }
}
