import Glibc

/// A netlink request the kernel refused, or a reply that did not parse: which request, on what,
/// and the errno (EBADMSG for a malformed reply).
public struct NetlinkError: Error, CustomStringConvertible, Equatable, Sendable {
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
    static func check(_ result: Int32, _ operation: String, _ subject: @autoclosure () -> String) throws(NetlinkError) -> Int32 {
        if result < 0 { throw NetlinkError(operation, subject(), code: -result) }
        return result
    }
}
