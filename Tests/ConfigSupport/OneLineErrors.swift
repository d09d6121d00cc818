import Config
import Testing

/// An error must be one line, start with its source, and name the field it is about.
public func expectOneLine(
    _ error: ConfigError?,
    field: String,
    mentions: [String] = [],
    sourceLocation: SourceLocation = #_sourceLocation
) {
    guard let error else { return }
    let text = error.description
    #expect(!text.contains("\n") && !text.contains("\r"), "not one line: \(text)", sourceLocation: sourceLocation)
    #expect(error.field == field, "field \(error.field) != \(field): \(text)", sourceLocation: sourceLocation)
    #expect(text.contains(field), "field \(field) not named: \(text)", sourceLocation: sourceLocation)
    for word in mentions {
        #expect(text.contains(word), "\(word) not mentioned: \(text)", sourceLocation: sourceLocation)
    }
}
