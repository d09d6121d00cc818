/// The CNI_ environment variables a runtime sets for one plugin call, checked as libcni's skel
/// checks them, so weft-cni refuses exactly what flannel's plugin refuses.
public struct CNIRequest: Equatable, Sendable {
    public var command: String
    public var containerID: String
    /// Empty for DEL when the namespace is already gone.
    public var netns: String
    public var ifName: String
    public var args: String
    /// CNI_PATH: colon-separated directories the delegate is looked up in.
    public var path: String

    /// Required per command, in skel's order (which is the order the missing ones are listed in).
    static let variables: [(name: String, requiredFor: Set<String>)] = [
        ("CNI_COMMAND", ["ADD", "CHECK", "DEL"]),
        ("CNI_CONTAINERID", ["ADD", "CHECK", "DEL"]),
        ("CNI_NETNS", ["ADD", "CHECK"]),
        ("CNI_IFNAME", ["ADD", "CHECK", "DEL"]),
        ("CNI_ARGS", []),
        ("CNI_PATH", ["ADD", "CHECK", "DEL"]),
    ]

    public init(environment: [String: String]) throws(CNIError) {
        let command = environment["CNI_COMMAND"] ?? ""
        let missing = Self.variables.filter { variable in
            (environment[variable.name] ?? "").isEmpty
                && (variable.name == "CNI_COMMAND" || variable.requiredFor.contains(command))
        }
        guard missing.isEmpty else {
            throw CNIError(
                .invalidEnvironment,
                "required env variables [\(missing.map(\.name).joined(separator: ","))] missing",
                details: "weft-cni is run by a container runtime, which sets these; see the CNI spec"
            )
        }
        self.command = command
        containerID = environment["CNI_CONTAINERID"] ?? ""
        netns = environment["CNI_NETNS"] ?? ""
        ifName = environment["CNI_IFNAME"] ?? ""
        args = environment["CNI_ARGS"] ?? ""
        path = environment["CNI_PATH"] ?? ""
    }

    /// The container ID and interface name, as skel validates them for every command but VERSION.
    func validate() throws(CNIError) {
        if containerID.isEmpty { throw CNIError(.unknownContainer, "missing containerID") }
        guard PluginConfig.isIdentifier(containerID) else {
            throw CNIError(
                .invalidEnvironment,
                "invalid characters in containerID",
                details: "\"\(containerID)\": use letters, digits, '_', '.' and '-', starting with a letter or digit"
            )
        }
        if ifName.isEmpty { throw CNIError(.invalidEnvironment, "interface name is empty") }
        if ifName.utf8.count > 15 {
            throw CNIError(
                .invalidEnvironment,
                "interface name is too long",
                details: "\"\(ifName)\": at most 15 bytes"
            )
        }
        if ifName == "." || ifName == ".." { throw CNIError(.invalidEnvironment, "interface name is . or ..") }
        if ifName.unicodeScalars.contains(where: { $0 == "/" || $0 == ":" || $0.properties.isWhitespace }) {
            throw CNIError(
                .invalidEnvironment,
                "interface name contains / or : or whitespace characters",
                details: "\"\(ifName)\""
            )
        }
    }
}
