import Addressing
import CShims
import Forwarding
import Packets
import Synchronization

/// What one worker knows of the paths to its peers: the path MTU the kernel learned for each
/// (kept in the peer's counter slot, so /v1/stats shows it), learned when a send fails with
/// EMSGSIZE. The worker's sockets use IP_PMTUDISC_DO, so a datagram larger than the path MTU
/// the kernel knows is refused before it leaves, where IP_PMTUDISC_WANT would fragment it unseen
/// and a UDP_SEGMENT send would fail on every try.
///
/// `socket` (IP_PMTUDISC_OMIT, bound to the PublicIP on a port of its own) looks the path MTU up
/// and sends what must go out though it does not fit: packets without DF (their outer datagram
/// is fragmented, as the kernel's tunnels let theirs be: re-fragmenting the inner packet would
/// hand the receiving container fragments to reassemble instead of the receiving host) and
/// sends that failed before the path MTU was known. Peers accept it: they check the sender's
/// address, never its port.
struct PathMTUs {
    let socket: Int32
    let counters: WorkerCounters
    /// Bytes between the outer UDP header and the inner packet (the forwarder's headroom).
    let encapsulation: Int
    let reports: PathMTUReports
    /// The smallest path MTU learned to any peer (Int.max while none): a datagram no larger
    /// than it needs no look-up, so the packet path pays one comparison until a path shrinks.
    private(set) var smallest = Int.max

    init(socket: Int32, counters: WorkerCounters, encapsulation: Int, reports: PathMTUReports) {
        self.socket = socket
        self.counters = counters
        self.encapsulation = encapsulation
        self.reports = reports
    }

    /// The path MTU to `peer` when a datagram of `payload` bytes does not fit it, else nil.
    @inline(__always)
    func exceeded(payload: Int, to peer: IPv4Address) -> Int? {
        guard payload + PathFit.outerHeaders > smallest else { return nil }
        let mtu = counters.pathMTU(to: peer)
        return mtu > 0 && payload + PathFit.outerHeaders > mtu ? mtu : nil
    }

    /// The path MTU learned to `peer`, or nil when none (only looked up once one was learned).
    @inline(__always)
    func known(_ peer: IPv4Address) -> Int? {
        guard smallest != Int.max else { return nil }
        let mtu = counters.pathMTU(to: peer)
        return mtu > 0 ? mtu : nil
    }

    /// A send to `peer` failed with EMSGSIZE: asks the kernel for the path MTU now, keeps it when
    /// it is new and reports it (logged once per peer and value). Returns what is known, or nil
    /// when the kernel would not say.
    mutating func learn(_ peer: IPv4Address, port: UInt16) -> Int? {
        let mtu = Int(weft_path_mtu(socket, peer.networkOrder, port.bigEndian))
        let known = counters.pathMTU(to: peer)
        guard mtu >= 68 else { return known > 0 ? known : nil }
        if mtu != known {
            counters.setPathMTU(mtu, to: peer)
            counters.count(.pathMTUUpdates)
            reports.learned(peer, pathMTU: mtu, innerMTU: PathFit.innerMTU(pathMTU: mtu, encapsulation: encapsulation))
        }
        smallest = min(smallest, mtu)
        return mtu
    }

    /// When `payload` (a datagram payload as `fromTUN` made it) holds an inner packet with DF that
    /// `pathMTU` cannot carry, turns it in place into ICMP fragmentation needed for its sender,
    /// naming the inner MTU that fits, and returns the reply (counted). Nil when no reply is due:
    /// no DF, an inner MTU below the kernel tunnels' 576, or a packet that gets no ICMP error.
    /// An inner IPv6 packet (never fragmented on the way) is answered with Packet Too Big when the
    /// inner MTU is at least IPv6's minimum of 1280; below it, it is sent whole, as IPv4 without DF.
    func answer(_ payload: PacketBuffer, pathMTU: Int, forwarder: Forwarder) -> PacketBuffer? {
        var inner = payload
        guard inner.consume(encapsulation), inner.length > 0 else { return nil }
        let innerMTU = PathFit.innerMTU(pathMTU: pathMTU, encapsulation: encapsulation)
        if inner[0] >> 4 == 6 {
            guard innerMTU >= IPv6Header.minimumMTU, let source = forwarder.ipv6Subnet?.network,
                ICMPv6Error.replace(&inner, with: .packetTooBig(mtu: UInt32(innerMTU)), source: source)
            else { return nil }
            counters.countDrop(.exceedsPathMTU)
            counters.count(.packetTooBigSent)
            return inner
        }
        guard IPv4.validate(inner) == nil, IPv4Header(inner).dontFragment else { return nil }
        guard innerMTU >= PathFit.smallestAnsweredMTU,
            ICMPUnreachable.replace(
                &inner,
                with: .fragmentationNeeded(nextHopMTU: UInt16(innerMTU)),
                source: forwarder.tunAddress
            )
        else { return nil }
        counters.countDrop(.exceedsPathMTU)
        counters.count(.fragmentationNeededSent)
        return inner
    }
}

/// The engine's one log line per peer and path MTU, whichever worker learns it first.
final class PathMTUReports: Sendable {
    private let logged = Mutex<[IPv4Address: Int]>([:])
    private let log: Engine.Log

    init(log: @escaping Engine.Log) { self.log = log }

    func learned(_ peer: IPv4Address, pathMTU: Int, innerMTU: Int) {
        let isNew = logged.withLock { logged in
            guard logged[peer] != pathMTU else { return false }
            logged[peer] = pathMTU
            return true
        }
        guard isNew else { return }
        log(
            "path MTU to \(peer) is \(pathMTU) (smaller than this host's interface): inner packets up to \(innerMTU) bytes fit, "
                + "larger TCP is cut to fit and DF packets get ICMP fragmentation needed; "
                + "set FLANNEL_MTU / the pod MTU to \(innerMTU) or raise the path MTU"
        )
    }
}
