/// The udp backend's wire format: the inner IPv4 packet is the whole UDP payload, no header of
/// its own (flannel's proxy, port 8285). Encapsulation writes nothing; both directions only make
/// sure what crosses is one well-formed IPv4 packet and nothing more.
public enum UDPBackend {
    public static let defaultPort: UInt16 = 8285

    /// Validates the packet read from the TUN and trims it to its total length.
    @inlinable
    public static func encapsulate(_ packet: inout PacketBuffer) -> DropReason? {
        IPv4.validateAndTrim(&packet)
    }

    /// Validates a received datagram's payload as IPv4 and trims it to its total length.
    @inlinable
    public static func decapsulate(_ packet: inout PacketBuffer) -> DropReason? {
        IPv4.validateAndTrim(&packet)
    }
}
