import NIOCore

#if canImport(Glibc)
import Glibc
import Timing
#endif

/// TCP keepalive, set on every connection, so the kernel notices a peer that vanished without a
/// reset (host powered off, packets dropped on the way): an idle pooled connection or a quiet
/// stream to it would otherwise wait forever, and an unanswered write would retransmit for ~15 min.
///
/// After `idle` (10 s) without traffic the kernel sends a probe every `interval` (5 s); `count` (3)
/// unanswered probes end the connection. `userTimeout` (30 s, TCP_USER_TIMEOUT) bounds the time
/// since the peer last acknowledged anything, with data in flight or not, and on Linux it also
/// replaces `count` as the keepalive limit. So a dead peer costs about 30 s and at most
/// `userTimeout` + `interval` (35 s); reads then fail with ETIMEDOUT and the connection closes.
public struct TCPKeepalive: Sendable, Equatable {
    public var idle: Duration = .seconds(10)
    public var interval: Duration = .seconds(5)
    public var count: Int = 3
    public var userTimeout: Duration = .seconds(30)

    public init() {}

    /// The longest a dead peer can go unnoticed.
    public var bound: Duration { userTimeout + interval }

    /// The socket options as (level, name, value), in the units the kernel takes.
    var socketOptions: [(option: ChannelOptions.Types.SocketOption, value: SocketOptionValue)] {
        let tcp = SocketOptionLevel(IPPROTO_TCP)
        return [
            (ChannelOptions.Types.SocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SO_KEEPALIVE), 1),
            (
                ChannelOptions.Types.SocketOption(level: tcp, name: TCP_KEEPIDLE),
                SocketOptionValue(idle.components.seconds)
            ),
            (
                ChannelOptions.Types.SocketOption(level: tcp, name: TCP_KEEPINTVL),
                SocketOptionValue(interval.components.seconds)
            ),
            (ChannelOptions.Types.SocketOption(level: tcp, name: TCP_KEEPCNT), SocketOptionValue(count)),
            (
                ChannelOptions.Types.SocketOption(level: tcp, name: TCP_USER_TIMEOUT),
                SocketOptionValue(userTimeout.milliseconds)
            ),
            (ChannelOptions.Types.SocketOption(level: tcp, name: TCP_NODELAY), 1),
        ]
    }
}
