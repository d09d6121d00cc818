// A small JSON reader and writer shaped by what flannel compatibility needs and Foundation's
// JSONSerialization cannot give: object members in document order (Go's encoding/json lets a
// later duplicate key win), the exact source bytes of any value (json.RawMessage keeps
// BackendData verbatim), and integers kept as their literal text (Go refuses 24.0 for a uint).

/// One parsed JSON value and the byte range it occupies in the source.
struct JSONValue {
    enum Kind {
        case null
        case bool(Bool)
        case number(String)
        case string(String)
        case array([JSONValue])
        case object([JSONMember])
    }

    var kind: Kind
    var range: Range<Int>

    /// "a string", "an object", ...: for "got a string" in error messages.
    var kindName: String {
        switch kind {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    var isNull: Bool {
        if case .null = kind { true } else { false }
    }
}

struct JSONMember {
    var key: String
    var value: JSONValue
}

struct JSONSyntaxError: Error {
    var line: Int
    var column: Int
    var problem: String

    var summary: String { "invalid JSON at line \(line), column \(column): \(problem)" }
}

/// A whole JSON text with its parsed root; values refer back into `bytes` for their raw form.
struct JSONDocument {
    let bytes: [UInt8]
    let root: JSONValue

    init(_ bytes: [UInt8]) throws(JSONSyntaxError) {
        self.bytes = bytes
        var parser = JSONParser(bytes: bytes)
        root = try parser.parseDocument()
    }

    /// The value's source text with insignificant whitespace removed and <, >, & and U+2028/9
    /// escaped: exactly what Go's json.Marshal emits for a json.RawMessage field.
    func compactText(of value: JSONValue) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(value.range.count)
        var inString = false
        var escaped = false
        var index = value.range.lowerBound
        while index < value.range.upperBound {
            let byte = bytes[index]
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
            } else if byte == UInt8(ascii: "\"") {
                inString = true
            } else if JSONParser.isWhitespace(byte) {
                index += 1
                continue
            }
            if byte == UInt8(ascii: "<") || byte == UInt8(ascii: ">") || byte == UInt8(ascii: "&") {
                out.append(contentsOf: Array("\\u00".utf8))
                out.append(JSONWriter.hexDigits[Int(byte >> 4)])
                out.append(JSONWriter.hexDigits[Int(byte & 0x0F)])
            } else if byte == 0xE2, index + 2 < value.range.upperBound, bytes[index + 1] == 0x80,
                bytes[index + 2] & ~1 == 0xA8
            {
                out.append(contentsOf: Array("\\u202".utf8))
                out.append(JSONWriter.hexDigits[Int(bytes[index + 2] & 0x0F)])
                index += 3
                continue
            } else {
                out.append(byte)
            }
            index += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The value's source text as written, for error messages.
    func sourceText(of value: JSONValue) -> String {
        String(decoding: bytes[value.range], as: UTF8.self)
    }
}

struct JSONParser {
    private let bytes: [UInt8]
    private var position = 0

    /// Deep enough for any config, shallow enough that hostile nesting cannot exhaust the stack.
    static let maximumDepth = 128

    init(bytes: [UInt8]) { self.bytes = bytes }

    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }

    mutating func parseDocument() throws(JSONSyntaxError) -> JSONValue {
        skipWhitespace()
        let value = try parseValue(depth: 0)
        skipWhitespace()
        guard position == bytes.count else {
            throw failure("unexpected \(describeCurrent()) after the end of the top-level value")
        }
        return value
    }

    private mutating func parseValue(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        guard position < bytes.count else { throw failure("unexpected end of input, expected a value") }
        guard depth < JSONParser.maximumDepth else {
            throw failure("nesting deeper than \(JSONParser.maximumDepth) levels")
        }
        let start = position
        let kind: JSONValue.Kind
        switch bytes[position] {
        case UInt8(ascii: "{"): kind = .object(try parseObject(depth: depth))
        case UInt8(ascii: "["): kind = .array(try parseArray(depth: depth))
        case UInt8(ascii: "\""): kind = .string(try parseString())
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            kind = .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            kind = .bool(false)
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            kind = .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): kind = .number(try parseNumber())
        default: throw failure("unexpected \(describeCurrent()), expected a value")
        }
        return JSONValue(kind: kind, range: start..<position)
    }

    private mutating func parseObject(depth: Int) throws(JSONSyntaxError) -> [JSONMember] {
        position += 1
        var members: [JSONMember] = []
        skipWhitespace()
        if peek(UInt8(ascii: "}")) {
            position += 1
            return members
        }
        while true {
            skipWhitespace()
            guard peek(UInt8(ascii: "\"")) else {
                throw failure("unexpected \(describeCurrent()), expected a quoted member name")
            }
            let key = try parseString()
            skipWhitespace()
            guard peek(UInt8(ascii: ":")) else {
                throw failure("unexpected \(describeCurrent()) after member name \"\(key)\", expected ':'")
            }
            position += 1
            skipWhitespace()
            let value = try parseValue(depth: depth + 1)
            members.append(JSONMember(key: key, value: value))
            skipWhitespace()
            if peek(UInt8(ascii: ",")) {
                position += 1
                continue
            }
            if peek(UInt8(ascii: "}")) {
                position += 1
                return members
            }
            throw failure("unexpected \(describeCurrent()) after member \"\(key)\", expected ',' or '}'")
        }
    }

    private mutating func parseArray(depth: Int) throws(JSONSyntaxError) -> [JSONValue] {
        position += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if peek(UInt8(ascii: "]")) {
            position += 1
            return elements
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth + 1))
            skipWhitespace()
            if peek(UInt8(ascii: ",")) {
                position += 1
                continue
            }
            if peek(UInt8(ascii: "]")) {
                position += 1
                return elements
            }
            throw failure("unexpected \(describeCurrent()) in an array, expected ',' or ']'")
        }
    }

    private mutating func parseString() throws(JSONSyntaxError) -> String {
        position += 1
        var utf8: [UInt8] = []
        while true {
            guard position < bytes.count else { throw failure("unterminated string") }
            let byte = bytes[position]
            switch byte {
            case UInt8(ascii: "\""):
                position += 1
                // Invalid UTF-8 becomes U+FFFD, as Go's decoder does.
                return String(decoding: utf8, as: UTF8.self)
            case UInt8(ascii: "\\"):
                position += 1
                guard position < bytes.count else { throw failure("unterminated string") }
                let escape = bytes[position]
                position += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(escape)
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0C)
                case UInt8(ascii: "n"): utf8.append(0x0A)
                case UInt8(ascii: "r"): utf8.append(0x0D)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"): appendUTF8(try parseUnicodeEscape(), to: &utf8)
                default:
                    position -= 1
                    throw failure("invalid escape \\\(describeCurrent()) in string")
                }
            case 0x00..<0x20:
                throw failure("control character 0x\(String(byte, radix: 16)) inside a string (escape it)")
            default:
                utf8.append(byte)
                position += 1
            }
        }
    }

    /// Reads the hex digits after "\u", joining a surrogate pair; a lone surrogate becomes U+FFFD.
    private mutating func parseUnicodeEscape() throws(JSONSyntaxError) -> Unicode.Scalar {
        let first = try parseHex4()
        if (0xD800..<0xDC00).contains(first), position + 1 < bytes.count,
            bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u")
        {
            let save = position
            position += 2
            let second = try parseHex4()
            if (0xDC00..<0xE000).contains(second) {
                let value = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                return Unicode.Scalar(value) ?? "\u{FFFD}"
            }
            position = save
        }
        return Unicode.Scalar(first) ?? "\u{FFFD}"
    }

    private mutating func parseHex4() throws(JSONSyntaxError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard position < bytes.count, let digit = JSONParser.hexValue(bytes[position]) else {
                throw failure("\\u escape needs four hex digits")
            }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private func appendUTF8(_ scalar: Unicode.Scalar, to utf8: inout [UInt8]) {
        utf8.append(contentsOf: String(Character(scalar)).utf8)
    }

    /// JSON's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    private mutating func parseNumber() throws(JSONSyntaxError) -> String {
        let start = position
        if peek(UInt8(ascii: "-")) { position += 1 }
        if peek(UInt8(ascii: "0")) {
            position += 1
        } else if try skipDigits() == 0 {
            throw failure("a number needs digits after '-'")
        }
        if peek(UInt8(ascii: ".")) {
            position += 1
            guard try skipDigits() > 0 else { throw failure("a number needs digits after '.'") }
        }
        if peek(UInt8(ascii: "e")) || peek(UInt8(ascii: "E")) {
            position += 1
            if peek(UInt8(ascii: "+")) || peek(UInt8(ascii: "-")) { position += 1 }
            guard try skipDigits() > 0 else { throw failure("a number needs digits in its exponent") }
        }
        return String(decoding: bytes[start..<position], as: UTF8.self)
    }

    private mutating func skipDigits() throws(JSONSyntaxError) -> Int {
        let start = position
        while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) {
            position += 1
        }
        return position - start
    }

    private mutating func expectLiteral(_ word: StaticString) throws(JSONSyntaxError) {
        let count = word.utf8CodeUnitCount
        let expected = UnsafeBufferPointer(start: word.utf8Start, count: count)
        guard position + count <= bytes.count, bytes[position..<position + count].elementsEqual(expected) else {
            throw failure("unexpected \(describeCurrent()), expected a value")
        }
        position += count
    }

    private mutating func skipWhitespace() {
        while position < bytes.count, JSONParser.isWhitespace(bytes[position]) { position += 1 }
    }

    private func peek(_ byte: UInt8) -> Bool {
        position < bytes.count && bytes[position] == byte
    }

    private func describeCurrent() -> String {
        guard position < bytes.count else { return "end of input" }
        let byte = bytes[position]
        if byte >= 0x21 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        return "byte 0x\(String(byte, radix: 16))"
    }

    private func failure(_ problem: String) -> JSONSyntaxError {
        var line = 1
        var lineStart = 0
        for index in 0..<min(position, bytes.count) where bytes[index] == 0x0A {
            line += 1
            lineStart = index + 1
        }
        return JSONSyntaxError(line: line, column: position - lineStart + 1, problem: problem)
    }
}

/// The pieces of Go's json.Marshal output that flannel's lease values need.
enum JSONWriter {
    static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// A string as Go's encoder writes it with HTML escaping on (json.Marshal's default):
    /// <, >, & and U+2028/9 as \u escapes, \b \f \n \r \t short forms, other controls as \u00xx.
    static func quoted(_ text: String) -> String {
        var out: [UInt8] = [UInt8(ascii: "\"")]
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x22: out += Array("\\\"".utf8)
            case 0x5C: out += Array("\\\\".utf8)
            case 0x08: out += Array("\\b".utf8)
            case 0x0C: out += Array("\\f".utf8)
            case 0x0A: out += Array("\\n".utf8)
            case 0x0D: out += Array("\\r".utf8)
            case 0x09: out += Array("\\t".utf8)
            case 0x00..<0x20, 0x3C, 0x3E, 0x26:
                out += Array("\\u00".utf8)
                out.append(hexDigits[Int(scalar.value >> 4)])
                out.append(hexDigits[Int(scalar.value & 0x0F)])
            case 0x2028, 0x2029:
                out += Array("\\u202".utf8)
                out.append(hexDigits[Int(scalar.value & 0x0F)])
            default:
                out += Array(String(Character(scalar)).utf8)
            }
        }
        out.append(UInt8(ascii: "\""))
        return String(decoding: out, as: UTF8.self)
    }
}

extension Array where Element == JSONMember {
    /// Go's encoding/json matches member names to struct fields case-insensitively, applies the
    /// members in document order (so the last one wins) and leaves a field alone on null.
    /// Every matching member is handed to `decode` so a bad early duplicate still fails, as in Go.
    func decodeField<T>(
        _ field: String,
        _ decode: (JSONValue) throws(ConfigError) -> T
    ) throws(ConfigError) -> T? {
        var result: T?
        for member in self where member.key.lowercasedASCII == field.lowercasedASCII && !member.value.isNull {
            result = try decode(member.value)
        }
        return result
    }

    /// Members whose names match none of `fields`, in document order.
    func unmatched(by fields: [String]) -> [JSONMember] {
        let known = Set(fields.map(\.lowercasedASCII))
        return filter { !known.contains($0.key.lowercasedASCII) }
    }
}

extension String {
    var lowercasedASCII: String {
        String(decoding: utf8.map { (0x41...0x5A).contains($0) ? $0 | 0x20 : $0 }, as: UTF8.self)
    }
}
