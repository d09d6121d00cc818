/// Thrown for what weftd cannot do yet, or cannot start; the daemon prints it as one line.
struct WeftdError: Error, CustomStringConvertible {
    let description: String
}
