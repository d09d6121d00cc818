/// What flannel's dist/mk-docker-opts.sh writes (default /run/docker_opts.env) from a subnet.env,
/// so a Docker daemon's bridge takes the lease: --bip, --ip-masq and --mtu.
public struct DockerOptions: Equatable, Sendable {
    public static let defaultPath = "/run/docker_opts.env"
    public static let defaultCombinedKey = "DOCKER_OPTS"

    /// The script's -i (individual DOCKER_OPT_* lines) and -c (one combined line); passing
    /// neither gives both.
    public enum Form: Equatable, Sendable {
        case individual, combined, both
    }

    public var form: Form
    /// -k: the combined variable's name.
    public var combinedKey: String
    /// false for -m, which leaves out --ip-masq for old Docker versions.
    public var includeIPMasq: Bool

    public init(form: Form = .both, combinedKey: String = defaultCombinedKey, includeIPMasq: Bool = true) {
        self.form = form
        self.combinedKey = combinedKey
        self.includeIPMasq = includeIPMasq
    }

    /// The file's text for the variables a sourced subnet.env defines. `inherited` is the value
    /// the combined variable already had in the script's environment: the script puts it first.
    public func render(entries: [String: String], inherited: String = "") throws(ConfigError) -> String {
        let refuse = ConfigError.Maker(source: "docker options", field: "FLANNEL_IPMASQ")
        guard DockerOptions.isShellName(combinedKey) else {
            throw ConfigError(
                source: "docker options",
                field: "combined key",
                problem:
                    "combined key \(ConfigError.show(combinedKey)) is not a shell variable name; use letters, digits and '_', e.g. DOCKER_OPTS"
            )
        }
        // The script collects every DOCKER_OPT_* variable with `set | grep`, so they come out
        // sorted by name (BIP, IPMASQ, MTU), and any DOCKER_OPT_* the env file defined joins in.
        var options: [String: String] = entries.filter { $0.key.hasPrefix("DOCKER_OPT_") }
        if let subnet = entries["FLANNEL_SUBNET"], !subnet.isEmpty { options["DOCKER_OPT_BIP"] = "--bip=\(subnet)" }
        if let mtu = entries["FLANNEL_MTU"], !mtu.isEmpty { options["DOCKER_OPT_MTU"] = "--mtu=\(mtu)" }
        if includeIPMasq, let masq = entries["FLANNEL_IPMASQ"], !masq.isEmpty {
            // Docker must masquerade exactly when flannel does not.
            switch masq {
            case "true": options["DOCKER_OPT_IPMASQ"] = "--ip-masq=false"
            case "false": options["DOCKER_OPT_IPMASQ"] = "--ip-masq=true"
            default:
                throw refuse("Invalid value of FLANNEL_IPMASQ: \(ConfigError.show(masq)); it must be true or false")
            }
        }

        var text = ""
        var combined = entries[combinedKey] ?? inherited
        if !combined.isEmpty { combined += " " }
        for name in options.keys.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }) {
            let value = options[name]!
            if form != .combined { text += "\(name)=\"\(value)\"\n" }
            combined += " \(value)"
        }
        if form != .individual { text += "\(combinedKey)=\"\(combined)\"\n" }
        return text
    }

    /// From a subnet.env value, as the script would see it after sourcing the file Weft wrote.
    public func render(_ env: SubnetEnv, inherited: String = "") throws(ConfigError) -> String {
        var entries: [String: String] = [:]
        for entry in env.entries { entries[entry.key] = entry.value }
        return try render(entries: entries, inherited: inherited)
    }

    static func isShellName(_ name: String) -> Bool {
        guard let first = name.utf8.first, !(0x30...0x39).contains(first) else { return false }
        return name.utf8.allSatisfy {
            (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) || $0 == 0x5F
        }
    }
}
