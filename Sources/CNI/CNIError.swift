import Foundation

/// A failed CNI command as the spec has the plugin report it: this JSON on standard output and a
/// non-zero exit. The runtime shows `msg` (and `details`) to the user, so `msg` names what failed
/// and `details`, when set, says what to do about it.
public struct CNIError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The spec's well-known codes; 999 is what libcni's skel reports for any other failure, and
    /// flannel's plugin reports all of its own failures that way.
    public struct Code: RawRepresentable, Equatable, Hashable, Sendable {
        public let rawValue: UInt
        public init(rawValue: UInt) { self.rawValue = rawValue }

        public static let incompatibleVersion = Code(rawValue: 1)
        public static let unsupportedField = Code(rawValue: 2)
        public static let unknownContainer = Code(rawValue: 3)
        public static let invalidEnvironment = Code(rawValue: 4)
        public static let ioFailure = Code(rawValue: 5)
        public static let decodingFailure = Code(rawValue: 6)
        public static let invalidNetworkConfig = Code(rawValue: 7)
        public static let invalidNetNS = Code(rawValue: 8)
        public static let tryAgainLater = Code(rawValue: 11)
        public static let `internal` = Code(rawValue: 999)
    }

    public var code: Code
    public var message: String
    public var details: String

    public init(_ code: Code, _ message: String, details: String = "") {
        self.code = code
        self.message = message
        self.details = details
    }

    public var description: String { details.isEmpty ? message : "\(message) (\(details))" }

    /// `{"cniVersion","code","msg","details"}`; `details` is left out when empty, as libcni does.
    public func json(cniVersion: String) -> [UInt8] {
        var object: [String: Any] = ["cniVersion": cniVersion, "code": code.rawValue, "msg": message]
        if !details.isEmpty { object["details"] = details }
        return CNIJSON.render(object) + [0x0A]
    }
}

/// Foundation's JSON, set up the way the plugin needs it everywhere: the delegate's config is
/// arbitrary JSON whose unknown keys must survive, and keys are written sorted (Foundation's
/// order, case-insensitive), so one config always renders to the same bytes.
enum CNIJSON {
    static func render(_ object: Any) -> [UInt8] {
        // Only values that came from JSONSerialization or are strings, numbers, booleans, arrays
        // and dictionaries are ever passed here, so serialization cannot fail.
        let data =
            (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
            ?? Data("{}".utf8)
        return [UInt8](data)
    }

    /// The top-level object of `bytes`, or the parser's complaint.
    static func object(_ bytes: [UInt8]) -> Result<[String: Any], CNIError> {
        do {
            let value = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
            guard let object = value as? [String: Any] else {
                return .failure(
                    CNIError(
                        .decodingFailure,
                        "error unmarshall network config: the configuration is not a JSON object"
                    )
                )
            }
            return .success(object)
        } catch {
            let reason = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
            return .failure(CNIError(.decodingFailure, "error unmarshall network config: \(reason)"))
        }
    }

    /// "a string", "an object", ...: for "got a number" in messages.
    static func kindName(_ value: Any) -> String {
        switch value {
        case is NSNull: "null"
        case is String: "a string"
        case is Bool: "a boolean"
        case is NSNumber: "a number"
        case is [Any]: "an array"
        case is [String: Any]: "an object"
        default: "\(type(of: value))"
        }
    }
}
