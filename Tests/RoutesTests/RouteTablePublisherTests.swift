import Addressing
import Foundation
import Synchronization
import TestThreads
import Testing

@testable import Routes

/// Collects what `onFree` reports, from whatever thread reports it.
final class FreeLog: Sendable {
    private let generations = Mutex<[UInt64]>([])
    var hook: @Sendable (UInt64) -> Void { { generation in self.generations.withLock { $0.append(generation) } } }
    var freed: [UInt64] { generations.withLock { $0 } }
}

/// A snapshot whose every entry carries its generation, so a reader can tell a consistent table
/// from a mix of two or from poison. Even generations use flannel's uniform layout (direct
/// index); odd ones add a route outside the network (longest-prefix).
func stampedSnapshot(generation: UInt64) -> RouteSnapshot {
    RouteSnapshot(
        routes: stampedRoutes(generation: generation),
        network: IPv4Prefix("10.0.0.0/16")!,
        subnetLength: 24,
        generation: generation
    )
}

func stampedRoutes(generation: UInt64) -> [Route] {
    let hop = NextHop(
        publicIP: IPv4Address(UInt32(truncatingIfNeeded: generation)),
        port: UInt16(truncatingIfNeeded: generation),
        vtepMAC: MACAddress(generation),
        backend: .vxlan
    )
    var routes = (0..<stampedCount(generation)).map { index in
        Route(subnet: IPv4Prefix(IPv4Address(10, 0, UInt8(index * 3 % 256), 0), length: 24), nextHop: hop)
    }
    if generation % 2 == 1 {
        routes[routes.count - 1] = Route(subnet: IPv4Prefix("192.168.0.0/16")!, nextHop: hop)
    }
    return routes
}

func stampedCount(_ generation: UInt64) -> Int { 1 + Int(generation % 61) }

/// Empty when `table` is exactly what `stampedSnapshot(generation: table.generation)` built.
func inconsistency(of table: RouteTable) -> String? {
    let generation = table.generation
    guard generation != RouteTableMemory.poisonedGeneration else { return "read a poisoned (reclaimed) table" }
    guard table.count == stampedCount(generation) else { return "generation \(generation) has \(table.count) routes" }
    let expectedStrategy: RouteTable.LookupStrategy = generation % 2 == 0 ? .directIndex : .longestPrefixMatch
    guard table.lookupStrategy == expectedStrategy else { return "generation \(generation): wrong strategy" }
    for route in table.routes {
        let hop = route.nextHop
        guard hop.publicIP.value == UInt32(truncatingIfNeeded: generation),
            hop.port == UInt16(truncatingIfNeeded: generation),
            hop.vtepMAC == MACAddress(generation)
        else {
            return "generation \(generation) holds an entry of another table: \(route)"
        }
        guard table.lookup(route.subnet.host(1)) == hop else {
            return "generation \(generation): lookup of \(route.subnet.host(1)) disagrees with its entry"
        }
    }
    return nil
}

@Suite(.ownThread) struct RouteTablePublication {
    @Test func readerHoldingATableBlocksItsReclamation() {
        let log = FreeLog()
        let publisher = RouteTablePublisher(stampedSnapshot(generation: 0), onFree: log.hook)
        let reader = publisher.makeReader()
        let held = reader.current()
        #expect(held.generation == 0)

        publisher.publish(stampedSnapshot(generation: 1))
        #expect(publisher.statistics.awaitingReclamation == 1)
        #expect(publisher.reclaim() == 0)
        #expect(log.freed.isEmpty)
        #expect(inconsistency(of: held) == nil, "the held table must be intact")
        #expect(held.generation == 0)
        #expect(reader.current().generation == 1)

        reader.quiescent()
        #expect(publisher.reclaim() == 1)
        #expect(log.freed == [0])
        #expect(
            publisher.statistics
                == .init(published: 1, awaitingReclamation: 0, reclaimed: 1, readers: 1, onlineReaders: 1)
        )
        _ = consume reader
    }

    @Test func offlineReaderDoesNotBlockReclamation() {
        let log = FreeLog()
        let publisher = RouteTablePublisher(stampedSnapshot(generation: 0), onFree: log.hook)
        let busy = publisher.makeReader()
        let idle = publisher.makeReader()
        _ = busy.current()
        _ = idle.current()
        idle.goOffline()
        let idleIsOnline = idle.isOnline
        #expect(!idleIsOnline)
        #expect(publisher.statistics.onlineReaders == 1)

        publisher.publish(stampedSnapshot(generation: 1))
        #expect(publisher.statistics.awaitingReclamation == 1)
        busy.quiescent()
        #expect(publisher.reclaim() == 1)
        #expect(log.freed == [0])

        idle.goOnline()
        let idleCameBack = idle.isOnline
        #expect(idleCameBack)
        #expect(idle.current().generation == 1)
        publisher.publish(stampedSnapshot(generation: 2))
        busy.quiescent()
        #expect(publisher.reclaim() == 0, "the reader that came back online may hold generation 1")
        idle.quiescent()
        #expect(publisher.reclaim() == 1)
        #expect(log.freed == [0, 1])
        _ = consume busy
        _ = consume idle
    }

    /// A reader that went quiescent before a publish, and did not since, may hold the table
    /// retired by that publish only if it loaded it after its quiescent point: it must block.
    @Test func quiescentPointBeforeThePublishDoesNotCount() {
        let publisher = RouteTablePublisher(stampedSnapshot(generation: 0))
        let reader = publisher.makeReader()
        reader.quiescent()
        let held = reader.current()
        publisher.publish(stampedSnapshot(generation: 1))
        #expect(publisher.reclaim() == 0)
        #expect(inconsistency(of: held) == nil)
        reader.quiescent()
        #expect(publisher.reclaim() == 1)
        _ = consume reader
    }

    @Test func destroyedReaderReleasesItsHold() {
        let log = FreeLog()
        let publisher = RouteTablePublisher(stampedSnapshot(generation: 0), onFree: log.hook)
        let reader = publisher.makeReader()
        _ = reader.current()
        publisher.publish(stampedSnapshot(generation: 1))
        #expect(publisher.statistics.awaitingReclamation == 1)
        _ = consume reader
        #expect(publisher.statistics.readers == 0)
        #expect(publisher.statistics.awaitingReclamation == 0)
        #expect(log.freed == [0])
    }

    @Test func withoutReadersEveryPublishFreesThePrevious() {
        let log = FreeLog()
        var publisher: RouteTablePublisher? = RouteTablePublisher(stampedSnapshot(generation: 0), onFree: log.hook)
        for generation in UInt64(1)...5 { publisher!.publish(stampedSnapshot(generation: generation)) }
        #expect(log.freed == [0, 1, 2, 3, 4])
        #expect(publisher!.withCurrent { $0.generation } == 5)
        #expect(publisher!.withCurrent { inconsistency(of: $0) } == nil)
        publisher = nil
        #expect(log.freed == [0, 1, 2, 3, 4, 5])
    }

    @Test func poisonedTablesAreKeptUntilThePublisherGoes() {
        let log = FreeLog()
        var publisher: RouteTablePublisher? = RouteTablePublisher(
            stampedSnapshot(generation: 0),
            poisonsReclaimed: true,
            onFree: log.hook
        )
        do {
            let reader = publisher!.makeReader()
            let stale = reader.current()
            let probe = stale.routes[0].subnet.host(1)
            #expect(stale.lookup(probe) != nil)
            publisher!.publish(stampedSnapshot(generation: 1))
            reader.quiescent()
            #expect(publisher!.reclaim() == 1)
            // Breaking the protocol on purpose: the quarantined memory is still mapped, and shows poison.
            #expect(stale.generation == RouteTableMemory.poisonedGeneration)
            #expect(stale.count == 0)
            #expect(stale.lookup(probe) == nil)
            #expect(!stale.isPeer(publicIP: IPv4Address(0)))
            #expect(inconsistency(of: stale) != nil)
            _ = consume reader
        }
        #expect(log.freed.isEmpty)
        publisher = nil
        #expect(log.freed.sorted() == [0, 1])
    }

    /// Reader threads check every table they load while a writer publishes thousands; every
    /// retired table must be freed in the end, and none while a reader could hold it: with
    /// poisoning, a premature reclaim shows up as a poisoned table; without, as a torn one (or a
    /// crash).
    @Test(arguments: [true, false])
    func concurrentReadersSeeConsistentTables(poisons: Bool) throws {
        let readerCount = 3
        let publishes: UInt64 = 6000
        let log = FreeLog()
        var publisher: RouteTablePublisher? = RouteTablePublisher(
            stampedSnapshot(generation: 0),
            poisonsReclaimed: poisons,
            onFree: log.hook
        )
        let shared = SharedRun(readers: readerCount)

        // The threads reach the publisher through `shared`, not a capture: a Thread keeps its
        // closure until some time after it exits, which would keep the publisher alive.
        shared.publisher.withLock { $0 = publisher }
        for index in 0..<readerCount {
            Thread { shared.runReader(index: index) }.start()
        }
        while shared.registered.load(ordering: .acquiring) < readerCount { sched_yield() }

        for generation in 1...publishes {
            shared.announced.store(generation, ordering: .releasing)
            publisher!.publish(stampedSnapshot(generation: generation))
            if generation % 200 == 0 { sched_yield() }
        }
        shared.stop.store(true, ordering: .releasing)
        for _ in 0..<readerCount { shared.finished.wait() }

        let statistics = publisher!.statistics
        #expect(statistics.readers == 0)
        #expect(statistics.published == Int(publishes))
        #expect(statistics.awaitingReclamation == 0, "a destroyed reader must not hold back reclamation")
        #expect(statistics.reclaimed == Int(publishes))
        #expect(shared.problems.withLock { $0 }.isEmpty, "\(shared.problems.withLock { $0.prefix(5) })")
        for index in 0..<readerCount {
            let (batches, generations) = shared.progress.withLock { $0[index] }
            #expect(batches > 100, "reader \(index) ran \(batches) batches")
            #expect(generations > 10, "reader \(index) saw only \(generations) distinct tables")
        }
        shared.publisher.withLock { $0 = nil }
        weak let released = publisher
        publisher = nil
        #expect(released == nil)
        let freed = log.freed
        #expect(freed.count == Int(publishes) + 1)
        let missing = Set(0...publishes).subtracting(freed)
        #expect(missing.isEmpty, "never freed: \(missing.sorted().prefix(10))")
    }
}

/// State shared between the writer and the reader threads of the concurrency test.
final class SharedRun: Sendable {
    let registered = Atomic<Int>(0)
    let announced = Atomic<UInt64>(0)
    let stop = Atomic<Bool>(false)
    let finished = DispatchSemaphore(value: 0)
    let problems = Mutex<[String]>([])
    let progress: Mutex<[(batches: Int, generations: Int)]>
    let publisher = Mutex<RouteTablePublisher?>(nil)

    init(readers: Int) { progress = Mutex(Array(repeating: (0, 0), count: readers)) }

    func runReader(index: Int) {
        var batches = 0
        var generations = 0
        do {
            // Every reference to the publisher ends with this scope, before `finished` is signalled.
            let reader = publisher.withLock { $0! }.makeReader()
            registered.add(1, ordering: .releasing)
            var last: UInt64 = 0
            var problem: String?
            while !stop.load(ordering: .acquiring) && problem == nil {
                let table = reader.current()
                let generation = table.generation
                if batches % 16 == 0 { sched_yield() }  // widen the window in which the table is held
                if let inconsistency = inconsistency(of: table) {
                    problem = "reader \(index): \(inconsistency)"
                } else if generation < last {
                    problem = "reader \(index): generation went back from \(last) to \(generation)"
                } else if generation > announced.load(ordering: .acquiring) {
                    problem = "reader \(index): generation \(generation) before it was published"
                }
                if generation != last { generations += 1 }
                last = generation
                reader.quiescent()
                batches += 1
                if batches % 500 == 0 {
                    reader.goOffline()
                    sched_yield()
                    reader.goOnline()
                }
            }
            if let problem { problems.withLock { $0.append(problem) } }
            _ = consume reader
        }
        progress.withLock { $0[index] = (batches, generations) }
        finished.signal()
    }
}
