import Addressing

/// The part of DaemonOptions that picks the interface.
public struct InterfaceRequest: Equatable, Sendable {
    public var interfaces: [String]
    public var regexes: [String]
    public var canReach: IPv4Address?
    public var canReachIPv6: IPv6Address?
    public var publicIP: IPv4Address?
    public var publicIPv6: IPv6Address?

    public init(
        interfaces: [String] = [],
        regexes: [String] = [],
        canReach: IPv4Address? = nil,
        canReachIPv6: IPv6Address? = nil,
        publicIP: IPv4Address? = nil,
        publicIPv6: IPv6Address? = nil
    ) {
        self.interfaces = interfaces
        self.regexes = regexes
        self.canReach = canReach
        self.canReachIPv6 = canReachIPv6
        self.publicIP = publicIP
        self.publicIPv6 = publicIPv6
    }

    public init(_ options: DaemonOptions) {
        self.init(
            interfaces: options.interfaces,
            regexes: options.interfaceRegexes,
            canReach: options.interfaceCanReach,
            canReachIPv6: options.interfaceCanReachIPv6,
            publicIP: options.publicIP,
            publicIPv6: options.publicIPv6
        )
    }
}
