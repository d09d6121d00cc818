import Addressing
import ArgumentParser
import Foundation
import Routes

extension IPv4Address: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

extension IPv4Prefix: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

extension IPv6Address: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

extension IPv6Prefix: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

extension MACAddress: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

/// As an argument, only the backends whose packets pass through Weft: host-gw's go through kernel
/// routes, so `--backend host-gw` is refused with the two that are taken.
extension Backend: ExpressibleByArgument {
    public init?(argument: String) {
        guard let backend = Backend(rawValue: argument), backend != .hostGateway else { return nil }
        self = backend
    }

    public static var allValueStrings: [String] { [Backend.udp.rawValue, Backend.vxlan.rawValue] }
}

/// A failure the user can act on: printed as one line, `weft: <message>`, exit status 1.
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension ParsableCommand {
    /// Runs `body`, turning any failure into one line on standard error and exit status 1.
    func reportingFailures(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch {
            throw Self.reported(error)
        }
    }

    /// An ExitCode passes through; anything else is printed as `weft: <message>` and becomes exit status 1.
    static func reported(_ error: any Error) -> any Error {
        if error is ExitCode { return error }
        FileHandle.standardError.write(Data("weft: \(error)\n".utf8))
        return ExitCode.failure
    }
}
