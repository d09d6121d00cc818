import CShims
import Glibc
import Packets

/// A multi-queue TUN device: owns one fd per queue (one per worker) and closes them all once.
/// Queue fds are blocking: io_uring arms poll on them itself, and a blocking fd lets a plain
/// io_uring read wait instead of completing with -EAGAIN.
public struct TUNDevice: ~Copyable {
    public let name: String
    public let queues: [Int32]
    /// Bytes of virtio-net header in front of every packet read or written; 0 without IFF_VNET_HDR.
    public let virtioHeaderSize: Int
    /// The offloads the kernel took (empty without IFF_VNET_HDR).
    public let offloads: Offloads

    /// Offloads the kernel may hand us (TUNSETOFFLOAD); each needs IFF_VNET_HDR.
    public struct Offloads: OptionSet, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let checksum = Offloads(rawValue: weft_tun_offload_csum)
        public static let tso4 = Offloads(rawValue: weft_tun_offload_tso4)
        public static let tso6 = Offloads(rawValue: weft_tun_offload_tso6)
        public static let uso4 = Offloads(rawValue: weft_tun_offload_uso4)
        public static let uso6 = Offloads(rawValue: weft_tun_offload_uso6)
        /// Everything the engine segments and coalesces itself (DESIGN.md §3).
        public static let all: Offloads = [.checksum, .tso4, .tso6, .uso4, .uso6]
    }

    /// Creates (or attaches to) the TUN `name` in the calling thread's network namespace with
    /// `queueCount` queues. With `offloads` non-nil, the queues carry a 10-byte virtio-net header.
    public init(name: String, queueCount: Int, offloads: Offloads? = nil) throws(EngineError) {
        precondition(queueCount >= 1, "a TUN device needs at least one queue")
        guard name.utf8.count < Int(IFNAMSIZ) else {
            throw EngineError("TUNSETIFF", "\(name): name longer than \(IFNAMSIZ - 1) bytes", code: EINVAL)
        }
        var opened: [Int32] = []
        do throws(EngineError) {
            for _ in 0..<queueCount {
                let fd = try EngineError.check(weft_tun_open_queue(name, offloads == nil ? 0 : 1), "TUNSETIFF", name)
                opened.append(fd)
                if let offloads {
                    try EngineError.check(
                        weft_tun_set_vnet_header_size(fd, Int32(VirtioNetHeader.size)),
                        "TUNSETVNETHDRSZ",
                        name
                    )
                    try EngineError.check(weft_tun_set_offload(fd, offloads.rawValue), "TUNSETOFFLOAD", name)
                }
            }
        } catch {
            for fd in opened { close(fd) }
            throw error
        }
        self.name = name
        self.queues = opened
        self.virtioHeaderSize = offloads == nil ? 0 : VirtioNetHeader.size
        self.offloads = offloads ?? []
    }

    /// Takes `queues` as the device's queues, to be closed with it: descriptors that behave as
    /// TUN queues do (one packet per read and per write), such as the SOCK_SEQPACKET socketpairs
    /// the rootless engine tests use. `offloads` non-nil means each packet carries a virtio-net
    /// header, as with IFF_VNET_HDR, and names the offloads the other end may use.
    package init(adopting queues: [Int32], name: String, offloads: Offloads?) {
        precondition(!queues.isEmpty, "a TUN device needs at least one queue")
        self.name = name
        self.queues = queues
        self.virtioHeaderSize = offloads == nil ? 0 : VirtioNetHeader.size
        self.offloads = offloads ?? []
    }

    deinit {
        for fd in queues { close(fd) }
    }
}
