/// The CNI spec versions weft-cni accepts. The delegates (Debian's containernetworking-plugins
/// 1.1.1) speak up to 1.0.0, and the delegate's config carries our config's version, so
/// accepting a newer one would only move the refusal into the delegate.
public enum CNIVersion {
    public static let supported = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"]
    public static let current = "1.0.0"
    /// A config without cniVersion is 0.1.0, as libcni's decoder has it.
    public static let implicit = "0.1.0"

    /// VERSION's answer: `{"cniVersion":"1.0.0","supportedVersions":[...]}`.
    public static var versionResult: [UInt8] {
        CNIJSON.render(["cniVersion": current, "supportedVersions": supported]) + [0x0A]
    }

    /// Refuses a version this plugin does not speak (libcni's reconciler: an exact match).
    static func check(_ version: String) throws(CNIError) {
        guard supported.contains(version) else {
            let list = supported.map { "\"\($0)\"" }.joined(separator: " ")
            throw CNIError(
                .incompatibleVersion,
                "incompatible CNI versions",
                details: "config is \"\(version)\", plugin supports [\(list)]"
            )
        }
    }

    /// major.minor.patch as numbers, or nil when `version` is not of that form.
    static func components(_ version: String) -> [Int]? {
        let parts = version.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return nil }
        let numbers = parts.compactMap { Int($0) }
        return numbers.count == 3 && numbers.allSatisfy { $0 >= 0 } ? numbers : nil
    }

    /// Whether `version` is `minimum` or later; a malformed version is a decoding failure.
    static func isAtLeast(_ version: String, _ minimum: String) throws(CNIError) -> Bool {
        guard let have = components(version) else {
            throw CNIError(
                .decodingFailure,
                "unable to parse version \"\(version)\"",
                details: "write cniVersion as major.minor.patch, e.g. \"1.0.0\""
            )
        }
        return have.lexicographicallyPrecedes(components(minimum)!) == false
    }
}
