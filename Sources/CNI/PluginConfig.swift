import Config
import Foundation

/// weft-cni's own entry of a conflist, as the runtime hands it over on stdin: flannel's net-conf
/// keys (name, subnetFile, dataDir, delegate, ipam, runtimeConfig) plus the spec's cniVersion and
/// prevResult. Other keys (type, capabilities, args) are not passed on, as in flannel.
public struct PluginConfig {
    public static let defaultDataDir = "/var/lib/cni/weft"
    /// Where flannel's plugin keeps its saved delegate configs: DEL and CHECK look there too when
    /// dataDir is not set, so containers added before flannel's binary was swapped for this one
    /// are still released.
    public static let flannelDataDir = "/var/lib/cni/flannel"

    public var name: String
    /// As written; "" when absent (the version then is `CNIVersion.implicit`).
    public var cniVersion: String
    public var subnetFile: String
    public var dataDir: String
    /// Whether dataDir came from the default rather than the config.
    public var dataDirIsDefault: Bool
    public var delegate: [String: Any]?
    public var ipam: [String: Any]?
    public var runtimeConfig: [String: Any]?
    public var prevResult: Any?

    /// Where DEL and CHECK look for the config ADD saved, in order.
    public var savedConfigDirectories: [String] {
        dataDirIsDefault ? [dataDir, Self.flannelDataDir] : [dataDir]
    }

    /// The version commands are checked against.
    public var effectiveVersion: String { cniVersion.isEmpty ? CNIVersion.implicit : cniVersion }

    /// Parses and checks the shape in libcni's order: JSON (code 6), the network name (code 7),
    /// then the plugin's own keys (code 7).
    public static func parse(_ bytes: [UInt8]) throws(CNIError) -> PluginConfig {
        let object = try CNIJSON.object(bytes).get()

        let version: String
        switch object["cniVersion"] {
        case nil, is NSNull: version = ""
        case let text as String: version = text
        case let other?:
            throw CNIError(
                .decodingFailure,
                "error unmarshall network config: cniVersion is \(CNIJSON.kindName(other)), not a string",
                details: "write e.g. \"cniVersion\": \"1.0.0\""
            )
        }

        guard let name = object["name"] as? String, !name.isEmpty else {
            throw CNIError(
                .invalidNetworkConfig,
                "missing network name",
                details: "the conflist's \"name\" is passed to each plugin; set it"
            )
        }
        guard isIdentifier(name) else {
            throw CNIError(
                .invalidNetworkConfig,
                "invalid characters found in network name",
                details: "\"\(name)\": use letters, digits, '_', '.' and '-', starting with a letter or digit"
            )
        }

        func string(_ key: String, default fallback: String) throws(CNIError) -> (String, Bool) {
            switch object[key] {
            case nil, is NSNull: return (fallback, true)
            case let text as String: return text.isEmpty ? (fallback, true) : (text, false)
            case let other?: throw loadFailure("\(key) is \(CNIJSON.kindName(other)), not a string", fix: "give a path")
            }
        }
        func dictionary(_ key: String) throws(CNIError) -> [String: Any]? {
            switch object[key] {
            case nil, is NSNull: return nil
            case let value as [String: Any]: return value
            case let other?:
                throw loadFailure(
                    "\(key) is \(CNIJSON.kindName(other)), not an object",
                    fix: "write \"\(key)\": {...} or leave it out"
                )
            }
        }

        let (subnetFile, _) = try string("subnetFile", default: SubnetEnv.defaultPath)
        let (dataDir, dataDirIsDefault) = try string("dataDir", default: defaultDataDir)
        return PluginConfig(
            name: name,
            cniVersion: version,
            subnetFile: subnetFile,
            dataDir: dataDir,
            dataDirIsDefault: dataDirIsDefault,
            delegate: try dictionary("delegate"),
            ipam: try dictionary("ipam"),
            runtimeConfig: try dictionary("runtimeConfig"),
            prevResult: object["prevResult"].flatMap { $0 is NSNull ? nil : $0 }
        )
    }

    /// libcni's rule for network names and container IDs: `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`.
    /// Container IDs become file names in dataDir, so this also keeps '/' and ".." out.
    static func isIdentifier(_ text: String) -> Bool {
        func allowed(_ byte: UInt8, first: Bool) -> Bool {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"):
                true
            case UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "-"): !first
            default: false
            }
        }
        let bytes = Array(text.utf8)
        guard let head = bytes.first, allowed(head, first: true) else { return false }
        return bytes.dropFirst().allSatisfy { allowed($0, first: false) }
    }

    static func loadFailure(_ problem: String, fix: String) -> CNIError {
        CNIError(.invalidNetworkConfig, "failed to load netconf: \(problem)", details: fix)
    }
}
