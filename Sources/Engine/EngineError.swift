import Glibc
import Netlink

/// A kernel call that failed: which call, on what, and the errno it returned.
public struct EngineError: Error, CustomStringConvertible, Equatable, Sendable {
    public let operation: String
    public let subject: String
    public let code: Int32

    public init(_ operation: String, _ subject: String, code: Int32) {
        self.operation = operation
        self.subject = subject
        self.code = code
    }

    public var description: String {
        "\(operation) \(subject): \(String(cString: strerror(code))) (errno \(code))"
    }

    /// Turns a `-errno` return into a thrown error; passes non-negative results through.
    @discardableResult
    static func check(_ result: Int32, _ operation: String, _ subject: @autoclosure () -> String) throws(EngineError) -> Int32 {
        if result < 0 { throw EngineError(operation, subject(), code: -result) }
        return result
    }
}

extension EngineError {
    /// A netlink failure while the engine set up its TUN, kept as the kernel reported it.
    public init(_ netlink: NetlinkError) {
        self.init(netlink.operation, netlink.subject, code: netlink.code)
    }
}
