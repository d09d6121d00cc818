import Addressing
import Foundation
import Glibc
import TestThreads
import Testing
import TrafficRulesTestSupport

@testable import TrafficRules

/// The port filter through the keeper against the real nft, in a network namespace of the test's
/// own: datagrams from 127.0.0.1 to the namespace's own port stand in for a stranger's (the input
/// hook sees loopback traffic as any other), dropped before the socket and counted; admitted once
/// 127.0.0.1 is a peer. The count survives peer changes (elements changed in place) and whole-table
/// replacements (carried over).
@Suite(.ownThread, .serialized, .enabled(if: keeperTestsUnavailable == nil, "\(keeperTestsUnavailable ?? "")"))
struct PortFilterKeeperTests {
    static let port: UInt16 = 8472
    static let loopback = IPv4Address(127, 0, 0, 1)
    /// 20 bytes IP + 8 UDP + 22 payload: nft counts the IP packet.
    static let datagramBytes: UInt64 = 50

    @Test(.timeLimit(.minutes(1)))
    func dropsAndCountsStrangersFollowsPeersAndKeepsItsCount() async throws {
        let namespace = try TrafficRuleKeeperTests.Namespace()
        defer { namespace.close() }
        #expect(try runIP(["-n", namespace.name, "link", "set", "lo", "up"]).0 == 0)
        let receiver = try namespace.inside { try Self.socket(bindingPort: Self.port) }
        defer { close(receiver) }
        let keeper = TrafficRuleKeeper(nft: namespace.tables)
        var ruleset = Rulesets.portFiltered(port: Self.port)
        try await keeper.install(ruleset)
        let listed = try #require(try namespace.listing())
        #expect(
            NFTListing(parsing: listed).differences(
                from: ruleset.chains,
                sets: ruleset.sets,
                counters: ruleset.counters
            ).isEmpty,
            "\(listed)"
        )
        #expect(await keeper.check() == .intact)
        #expect(await keeper.portFilterCounts() == PortFilterCounts())
        #expect(
            try await TrafficRuleKeeper(nft: namespace.tables).listedPeers() == Rulesets.peers,
            "what a restarted weftd finds"
        )

        // 1. A stranger: dropped before the socket, counted.
        try namespace.inside { try Self.send(5, "stranger", to: Self.port) }
        #expect(
            await keeper.portFilterCounts()
                == PortFilterCounts(packets: 5, bytes: 5 * Self.datagramBytes)
        )

        // 2. Admitted as a peer (the set changed in place: the counter keeps its count); the first
        //    datagram the socket holds is the one sent after, so none of the five got through.
        ruleset.portFilter!.peers.insert(Self.loopback)
        try await keeper.install(ruleset)
        try namespace.inside { try Self.send(1, "peer", to: Self.port) }
        #expect(try Self.receiveAll(receiver) == ["peer"])
        #expect(
            await keeper.portFilterCounts()
                == PortFilterCounts(packets: 5, bytes: 5 * Self.datagramBytes)
        )
        #expect(await keeper.check() == .intact)

        // 3. Removed again: dropped again.
        ruleset.portFilter!.peers.remove(Self.loopback)
        try await keeper.install(ruleset)
        try namespace.inside { try Self.send(2, "stranger", to: Self.port) }
        #expect(await keeper.portFilterCounts()?.packets == 7)

        // 4. A whole new table (the forward chain gone) starts a new counter; the total carries on.
        ruleset.forwardAccept = false
        try await keeper.install(ruleset)
        #expect(try namespace.listing()?.contains("chain forward") == false)
        #expect(await keeper.portFilterCounts()?.packets == 7)
        try namespace.inside { try Self.send(1, "stranger", to: Self.port) }
        #expect(await keeper.portFilterCounts()?.packets == 8)

        // 5. Tampering: the table deleted (its counter with it: the last reading stands in), an
        //    element deleted, a set out of step when the next change comes.
        #expect(try namespace.nft(["delete", "table", "ip", "weft"]).0 == 0)
        #expect(await keeper.check() == .restored(differences: ["missing table ip weft"]))
        #expect(await keeper.portFilterCounts()?.packets == 8)
        #expect(try namespace.nft(["delete", "element", "ip", "weft", "peers", "{ 198.18.0.9 }"]).0 == 0)
        #expect(await keeper.check() == .restored(differences: ["missing in set peers: 198.18.0.9"]))
        #expect(try namespace.nft(["delete", "element", "ip", "weft", "peers", "{ 198.18.0.2 }"]).0 == 0)
        ruleset.portFilter!.peers.remove(IPv4Address(198, 18, 0, 2))
        ruleset.portFilter!.peers.insert(Self.loopback)
        try await keeper.install(ruleset)  // "delete element 198.18.0.2" fails: the whole table instead
        let relisted = try #require(try namespace.listing())
        #expect(
            NFTListing(parsing: relisted).differences(
                from: ruleset.chains,
                sets: ruleset.sets,
                counters: ruleset.counters
            ).isEmpty,
            "\(relisted)"
        )
        try namespace.inside { try Self.send(1, "peer again", to: Self.port) }
        #expect(try Self.receiveAll(receiver) == ["peer again"])
        #expect(await keeper.portFilterCounts()?.packets == 8)

        // 6. A filter left by an earlier run: deleted by a keeper that wants no rules, left by one that wants some.
        ruleset.forwardAccept = true
        try await keeper.install(ruleset)
        #expect(try await keeper.removeLeftoverPortFilter() == false)
        let next = TrafficRuleKeeper(nft: namespace.tables)
        let nothing = TrafficRuleset(
            network: ruleset.network,
            subnet: ruleset.subnet,
            masquerade: false,
            forwardAccept: false
        )
        try await next.install(nothing)
        #expect(try await next.removeLeftoverPortFilter() == true)
        let left = try #require(try namespace.listing())
        #expect(
            NFTListing(parsing: left) == NFTListing(chains: [Rulesets.ipv4(masquerade: false).chains[0]]),
            "\(left)"
        )
        #expect(try await next.removeLeftoverPortFilter() == false)
        #expect(try await next.listedPeers() == nil)
        #expect(await next.portFilterCounts() == nil, "no filter wanted, no count")
    }

    /// A UDP socket bound to 127.0.0.1:`port` (`ipv6`: [::1]:`port`) in the calling thread's
    /// namespace, waiting up to 5 s per receive.
    static func socket(bindingPort port: UInt16, ipv6: Bool = false) throws -> Int32 {
        var (address, length) = Self.loopbackAddress(port, ipv6: ipv6)
        let fd = Glibc.socket(Int32(address.ss_family), Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw SetupFailure(description: "socket: \(String(cString: strerror(errno)))") }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0 else {
            close(fd)
            throw SetupFailure(description: "bind loopback port \(port): \(String(cString: strerror(errno)))")
        }
        return fd
    }

    /// `count` datagrams from 127.0.0.1 to 127.0.0.1:`port` (`ipv6`: ::1 to [::1]:`port`), each
    /// `text` padded to 22 bytes.
    static func send(_ count: Int, _ text: String, to port: UInt16, ipv6: Bool = false) throws {
        var (address, length) = Self.loopbackAddress(port, ipv6: ipv6)
        let fd = Glibc.socket(Int32(address.ss_family), Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw SetupFailure(description: "socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let payload = Array(text.utf8) + [UInt8](repeating: 0, count: 22 - text.utf8.count)
        for _ in 0..<count {
            let sent = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { destination in
                    payload.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, destination, length) }
                }
            }
            guard sent == payload.count else {
                throw SetupFailure(description: "sendto: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Waits for the first datagram, then takes whatever else is queued: each one's text.
    static func receiveAll(_ fd: Int32) throws -> [String] {
        var texts: [String] = []
        var buffer = [UInt8](repeating: 0, count: 64)
        while true {
            let flags = texts.isEmpty ? Int32(0) : Int32(MSG_DONTWAIT)
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, flags) }
            if count < 0 {
                if texts.isEmpty {
                    throw SetupFailure(description: "nothing received: \(String(cString: strerror(errno)))")
                }
                return texts
            }
            texts.append(String(decoding: buffer[..<count].prefix { $0 != 0 }, as: UTF8.self))
        }
    }

    /// The loopback address of either family at `port`, and its length.
    static func loopbackAddress(_ port: UInt16, ipv6: Bool) -> (sockaddr_storage, socklen_t) {
        var storage = sockaddr_storage()
        if ipv6 {
            withUnsafeMutableBytes(of: &storage) { raw in
                let address = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in6.self)
                address.pointee.sin6_family = sa_family_t(AF_INET6)
                address.pointee.sin6_port = port.bigEndian
                address.pointee.sin6_addr = in6addr_loopback
            }
            return (storage, socklen_t(MemoryLayout<sockaddr_in6>.size))
        }
        withUnsafeMutableBytes(of: &storage) { raw in
            let address = raw.baseAddress!.assumingMemoryBound(to: sockaddr_in.self)
            address.pointee.sin_family = sa_family_t(AF_INET)
            address.pointee.sin_port = port.bigEndian
            address.pointee.sin_addr.s_addr = inet_addr("127.0.0.1")
        }
        return (storage, socklen_t(MemoryLayout<sockaddr_in>.size))
    }
}
