import Addressing
import CShims
import Forwarding
import Glibc
import Packets
import Routes
import SystemCalls

/// The worker loop on recvmmsg/sendmmsg + poll, for hosts where io_uring is disabled, and (with
/// batch size 1) our stand-in for flannel's udp proxy, which moves one packet per syscall.
///
/// Each round: read up to a batch from the TUN (non-blocking reads until EAGAIN), run `fromTUN`
/// on each in place and send the batch with one sendmmsg; then take up to a batch from the socket
/// with one recvmmsg, run `fromWire` on each and write the delivered ones to the TUN (the TUN has
/// no batched write). Only when a round moved nothing (and no `--busy-poll` budget is left, see
/// `BusyPoll`) does the worker go offline and poll both fds, for at most `WorkerSetup.idleWait`.
public struct MmsgWorker: ~Copyable {
    // One worker's state, made and owned by `run`: plain pointers and values (no class reference).
    let buffers: MmsgBuffers
    let tun: Int32
    let socket: Int32
    /// The IPv6 underlay's socket, or -1.
    let ipv6Socket: Int32
    let forwarder: Forwarder
    let counters: WorkerCounters
    let sourcePorts: SourcePorts
    let ipv6SourcePorts: SourcePorts
    var paths: PathMTUs

    public static func run(_ setup: consuming WorkerSetup) throws(EngineError) {
        let tun = setup.tunQueue
        let forwarder = setup.forwarder
        let counters = setup.counters
        let stop = setup.stop
        // The TUN queue is handed over blocking (io_uring wants that); this loop reads until EAGAIN.
        let wasNonblocking = try EngineError.check(
            weft_set_nonblocking(tun, 1),
            "fcntl(O_NONBLOCK)",
            "TUN queue \(setup.index)"
        )
        defer { if wasNonblocking == 0 { _ = weft_set_nonblocking(tun, 0) } }
        let idleMilliseconds = WorkerSetup.idleWait.clampedMilliseconds
        var busyPoll = BusyPoll(setup.busyPoll)
        var worker = MmsgWorker(
            buffers: MmsgBuffers(batchSize: setup.batchSize, mtu: setup.mtu, headroom: forwarder.headroom),
            tun: tun,
            socket: setup.socket,
            ipv6Socket: setup.ipv6Socket,
            forwarder: forwarder,
            counters: counters,
            sourcePorts: setup.sourcePorts,
            ipv6SourcePorts: setup.ipv6SourcePorts,
            paths: setup.pathMTUs
        )

        let reader = setup.publisher.makeReader()
        let ipv6Reader = setup.ipv6Publisher.makeReader()
        let carriesIPv6 = forwarder.ipv6Subnet != nil
        while !stop.isStopped {
            let table = reader.current()
            let ipv6Table = carriesIPv6 ? ipv6Reader.current() : nil
            let fromTUN = try worker.forwardFromTUN(table: table, ipv6Table: ipv6Table)
            var fromWire = try worker.forwardFromWire(table: table, ipv6Table: ipv6Table)
            if worker.ipv6Socket >= 0, let ipv6Table {
                fromWire += try worker.forwardFromIPv6Wire(table: ipv6Table)
            }
            reader.quiescent()
            ipv6Reader.quiescent()
            if fromTUN != 0 || fromWire != 0 {
                busyPoll.worked()
            } else if !busyPoll.keepPolling() {
                counters.count(.idleWaits)
                reader.goOffline()
                ipv6Reader.goOffline()
                let ready = weft_poll_either(tun, worker.socket, worker.ipv6Socket, idleMilliseconds)
                reader.goOnline()
                ipv6Reader.goOnline()
                if ready < 0 { throw EngineError("poll", "TUN queue \(setup.index) and socket", code: -ready) }
            }
        }
    }

    /// One batch TUN → peers. Returns how many packets were read.
    mutating func forwardFromTUN(table: RouteTable, ipv6Table: IPv6RouteTable?) throws(EngineError) -> Int {
        let headroom = buffers.headroom
        let readBytes = buffers.slotBytes - headroom
        var read = 0
        while read < buffers.batchSize {
            let count = SystemCall.retryingNegatedErrno { weft_read(tun, buffers.tunSlot(read) + headroom, readBytes) }
            if count < 0 {
                if count == -Int(EAGAIN) { break }
                throw EngineError("read", "TUN queue fd \(tun)", code: Int32(-count))
            }
            buffers.tunLengths[read] = count
            counters.count(.tunReadPackets)
            counters.count(.tunReadBytes, by: UInt64(count))
            read += 1
        }

        var staged = 0
        for index in 0..<read {
            var packet = PacketBuffer(
                base: buffers.tunSlot(index),
                headroom: headroom,
                length: buffers.tunLengths[index],
                capacity: buffers.slotBytes
            )
            switch forwarder.fromTUN(&packet, table: table, ipv6Table: ipv6Table) {
            case .send(let nextHop):
                var from = sourcePorts.socket(for: packet, forwarder: forwarder, bound: socket)
                if let pathMTU = paths.exceeded(payload: packet.length, to: nextHop.publicIP) {
                    if let reply = paths.answer(packet, pathMTU: pathMTU, forwarder: forwarder) {
                        writeToTUN(reply)
                        continue
                    }
                    from = paths.socket
                    counters.count(.pathMTULimitedSends)
                }
                buffers.stageSend(staged, packet, publicIP: nextHop.publicIP.value, port: nextHop.port, socket: from)
                staged += 1
            case .sendIPv6(let hop):
                // The path is the interface's MTU − 70 (what the forwarder holds inner IPv6 to), not learned.
                let from = ipv6SourcePorts.socket(for: packet, forwarder: forwarder, bound: ipv6Socket)
                buffers.stageSend(staged, packet, to: hop, socket: from)
                staged += 1
            case .replyToTUN(let reason):
                counters.countDrop(reason)
                counters.count(.icmpReplies)
                writeToTUN(packet)
            case .drop(let reason):
                counters.countDrop(reason)
            }
        }

        var sent = 0
        while sent < staged {
            // One sendmmsg per run of sends from the same socket (one flow's packets are one run).
            let from = buffers.sendSockets[sent]
            var run = 1
            while sent + run < staged && buffers.sendSockets[sent + run] == from { run += 1 }
            let result = Int(weft_sendmmsg(from, buffers.sendMessages + sent, UInt32(run)))
            // The kernel stops at the first failing message and reports it only when it is the first.
            guard result > 0 else {
                counters.count(.sendErrors)
                if result == -Int(EMSGSIZE) && !buffers.sendsOverIPv6(sent) {
                    resendToFit(sent)
                }
                sent += 1
                continue
            }
            for index in sent..<(sent + result) {
                let bytes = buffers.sendVectors[index].iov_len
                counters.count(.wireSentPackets)
                counters.count(.wireSentBytes, by: UInt64(bytes))
                counters.countSent(to: IPv4Address(buffers.sendPeers[index]), bytes: bytes)
            }
            sent += result
        }
        return read
    }

    /// Staged send `index` failed with EMSGSIZE: learn the path MTU to its peer, then answer its
    /// packet with ICMP fragmentation needed (DF) or send it from the path socket (`PathMTUs`).
    private mutating func resendToFit(_ index: Int) {
        let peer = IPv4Address(buffers.sendPeers[index])
        let port = UInt16(bigEndian: buffers.sendNames[index].sin_port)
        let vector = buffers.sendVectors[index]
        guard let start = vector.iov_base else { return }
        let packet = PacketBuffer(base: start, headroom: 0, length: vector.iov_len, capacity: vector.iov_len)
        if let pathMTU = paths.learn(peer, port: port),
            let reply = paths.answer(packet, pathMTU: pathMTU, forwarder: forwarder)
        {
            return writeToTUN(reply)
        }
        counters.count(.pathMTULimitedSends)
        let sent = weft_sendto_ipv4(paths.socket, start, vector.iov_len, peer.networkOrder, port.bigEndian)
        guard sent >= 0 else { return counters.count(.sendErrors) }
        counters.count(.wireSentPackets)
        counters.count(.wireSentBytes, by: UInt64(sent))
        counters.countSent(to: peer, bytes: sent)
    }

    /// One batch peers → TUN. Returns how many datagrams were received.
    func forwardFromWire(table: RouteTable, ipv6Table: IPv6RouteTable?) throws(EngineError) -> Int {
        let received = try receive(socket, buffers.receiveMessages, nameLength: MemoryLayout<sockaddr_in>.size)
        for index in 0..<received {
            guard var packet = receivedPacket(buffers.receiveMessages[index], slot: index) else { continue }
            let length = packet.length
            let sender = IPv4Address(networkOrder: buffers.receiveNames[index].sin_addr.s_addr)
            let verdict = forwarder.fromWire(&packet, sender: sender, table: table, ipv6Table: ipv6Table)
            deliver(packet, verdict, from: sender, bytes: length)
        }
        return received
    }

    /// One batch from the IPv6 underlay's socket → TUN, on the same wire slots. Returns how many
    /// datagrams were received.
    func forwardFromIPv6Wire(table: IPv6RouteTable) throws(EngineError) -> Int {
        let received = try receive(ipv6Socket, buffers.receiveMessages6, nameLength: MemoryLayout<sockaddr_in6>.size)
        for index in 0..<received {
            guard var packet = receivedPacket(buffers.receiveMessages6[index], slot: index) else { continue }
            let length = packet.length
            var peer = IPv4Address(0)
            let sender = IPv6Names.address(buffers.receiveNames6 + index)
            let verdict = forwarder.ipv6UnderlayFromWire(&packet, sender: sender, table: table, peer: &peer)
            deliver(packet, verdict, from: peer, bytes: length)
        }
        return received
    }

    /// Writes `packet` to the TUN and counts its `bytes` (the datagram's) from `peer`, or counts the drop.
    @inline(__always)
    private func deliver(_ packet: PacketBuffer, _ verdict: ReceiveVerdict, from peer: IPv4Address, bytes: Int) {
        switch verdict {
        case .deliver:
            counters.countReceived(from: peer, bytes: bytes)
            writeToTUN(packet)
        case .drop(let reason):
            counters.countDrop(reason)
        }
    }

    /// One recvmmsg into the wire slots through `messages` (names of `nameLength` bytes): how many
    /// datagrams arrived, 0 when none or on a transient error.
    private func receive(
        _ fd: Int32,
        _ messages: UnsafeMutablePointer<weft_mmsghdr>,
        nameLength: Int
    ) throws(EngineError) -> Int {
        let received = Int(weft_recvmmsg(fd, messages, UInt32(buffers.batchSize), UInt32(nameLength)))
        guard received < 0 else { return received }
        switch Int32(-received) {
        case EAGAIN: return 0
        // Transient: memory pressure, or a queued ICMP error on the socket.
        case ENOMEM, ENOBUFS, ECONNREFUSED, EHOSTUNREACH, ENETUNREACH: return 0
        default: throw EngineError("recvmmsg", "socket fd \(fd)", code: Int32(-received))
        }
    }

    /// The datagram `message` put in wire slot `slot`, counted; nil (counted as oversize) when it
    /// was truncated.
    @inline(__always)
    private func receivedPacket(_ message: weft_mmsghdr, slot: Int) -> PacketBuffer? {
        let length = Int(message.msg_len)
        counters.count(.wireReceivedPackets)
        counters.count(.wireReceivedBytes, by: UInt64(length))
        if message.msg_hdr.msg_flags & weft_msg_trunc != 0 {
            counters.countDrop(.oversize)
            return nil
        }
        return PacketBuffer(base: buffers.wireSlot(slot), headroom: 0, length: length, capacity: buffers.slotBytes)
    }

    /// One write per packet: a TUN write is one packet and never blocks (it queues to the stack).
    @inline(__always)
    func writeToTUN(_ packet: PacketBuffer) {
        let written = SystemCall.retryingNegatedErrno { weft_write(tun, packet.start, packet.length) }
        if written < 0 {
            counters.count(.tunWriteErrors)
        } else {
            counters.count(.tunWrittenPackets)
            counters.count(.tunWrittenBytes, by: UInt64(packet.length))
        }
    }
}
