import Foundation
import TestSupport
import TestThreads
import Testing

/// The built `weft` next to this test bundle (`swift build --build-tests` builds both), or nil.
let weftExecutable: String? = {
    guard let bundle = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return nil }
    let path = URL(fileURLWithPath: bundle).deletingLastPathComponent().appendingPathComponent("weft").path
    return FileManager.default.isExecutableFile(atPath: path) ? path : nil
}()

/// `weft arguments…` to completion: exit status and standard error.
func runWeft(_ arguments: [String]) throws -> (status: Int32, error: String) {
    let result = try runCommand([weftExecutable!] + arguments)
    return (result.status, result.error)
}

extension Trait where Self == ConditionTrait {
    /// The `weft dataplane` suites: namespaces, and the weft executable.
    static var weftDataplaneRuns: Self {
        .enabled(
            if: TestNamespace.missing == nil && weftExecutable != nil,
            "\(TestNamespace.missing ?? "no weft executable next to the test bundle: run swift build --build-tests")"
        )
    }
}
