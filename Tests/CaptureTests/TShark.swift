import Foundation
import TestSupport

/// tshark, the independent dissector the capture tests check Weft's and the kernel's bytes with
/// (scripts/setup installs it; tests that need it are skipped without it).
enum TShark {
    static let path = ["/usr/bin/tshark", "/usr/local/bin/tshark"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    /// One line per frame of `capture`, the `fields` separated by tabs (a field found several
    /// times in a frame, as in the outer and inner headers, gives its values comma-separated).
    /// Port 8472 is dissected as VXLAN.
    static func fields(_ capture: String, _ fields: [String]) throws -> [String] {
        let text = try runCommand(
            [path!, "-r", capture, "-d", "udp.port==8472,vxlan", "-T", "fields"] + fields.flatMap { ["-e", $0] }
        ).output
        return text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
    }
}
