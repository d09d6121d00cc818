/// What IPv4 (`IPv4`) and IPv6 (`IPv6`) each check on a packet before anything reads its fields,
/// so that what follows the checks (trimming, unwrapping a frame of either family) is written once.
/// Every requirement is static: callers name the family, and the compiler specializes each use to
/// the direct calls it made before the family was a parameter.
public protocol IPVersion {
    /// The EtherType of an Ethernet frame that carries this family.
    static var etherType: UInt16 { get }
    /// Why the packet cannot be read as this family, or nil when its header is sound.
    static func validate(_ packet: PacketBuffer) -> DropReason?
    /// Drops bytes past the length the header states (Ethernet pads short frames to 60 bytes).
    /// The packet must have passed `validate`.
    static func trim(_ packet: inout PacketBuffer)
}

extension IPVersion {
    /// `validate`, then `trim` when the packet is sound.
    @inlinable
    public static func validateAndTrim(_ packet: inout PacketBuffer) -> DropReason? {
        if let reason = validate(packet) { return reason }
        trim(&packet)
        return nil
    }
}
