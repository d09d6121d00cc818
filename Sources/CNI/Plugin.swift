import Addressing
import Foundation
import Glibc

/// What one invocation prints and how it exits.
public struct PluginOutput: Equatable, Sendable {
    public var stdout: [UInt8]
    public var stderr: String
    public var status: Int32

    static func success(_ stdout: [UInt8] = []) -> PluginOutput { PluginOutput(stdout: stdout, stderr: "", status: 0) }
}

/// weft-cni: flannel's CNI meta-plugin. ADD reads subnet.env, renders the delegate config (see
/// `DelegateConfig`), saves it under dataDir and runs the delegate; DEL runs the delegate's DEL on
/// the saved config and then removes it; CHECK checks the saved config and prevResult against
/// subnet.env (see `check`); VERSION lists `CNIVersion.supported`. The name it is invoked under
/// does not matter, so it can be installed as /opt/cni/bin/flannel under flannel's conflist.
public enum Plugin {
    public static let about = "CNI Plugin weft-cni (Weft's flannel-compatible meta-plugin)"

    /// Runs one command. `input` is read only for commands that take a config (not VERSION), as a
    /// runtime may leave stdin open for VERSION.
    public static func run(environment: [String: String], input: () -> [UInt8]) async -> PluginOutput {
        var version = CNIVersion.current
        do throws(CNIError) {
            let request: CNIRequest
            do throws(CNIError) {
                request = try CNIRequest(environment: environment)
            } catch {
                // Run by hand: say what this is instead of an error JSON.
                guard (environment["CNI_COMMAND"] ?? "").isEmpty else { throw error }
                return PluginOutput(
                    stdout: [],
                    stderr:
                        "\(about)\nCNI protocol versions supported: \(CNIVersion.supported.joined(separator: ", "))\n",
                    status: 0
                )
            }
            if request.command == "VERSION" { return .success(CNIVersion.versionResult) }

            let config = try PluginConfig.parse(input())
            if !config.cniVersion.isEmpty { version = config.cniVersion }
            try request.validate()
            try CNIVersion.check(config.effectiveVersion)

            switch request.command {
            case "ADD":
                return try await add(request, config, environment: environment)
            case "DEL":
                return try await delete(request, config, environment: environment)
            case "CHECK":
                guard try CNIVersion.isAtLeast(config.effectiveVersion, "0.4.0") else {
                    throw CNIError(
                        .incompatibleVersion,
                        "config version does not allow CHECK",
                        details: "CHECK needs cniVersion 0.4.0 or later"
                    )
                }
                return try check(request, config, environment: environment)
            default:
                throw CNIError(
                    .invalidEnvironment,
                    "unknown CNI_COMMAND: \(request.command)",
                    details: "weft-cni answers ADD, DEL, CHECK and VERSION"
                )
            }
        } catch {
            return PluginOutput(stdout: error.json(cniVersion: version), stderr: "", status: 1)
        }
    }

    static func add(
        _ request: CNIRequest,
        _ config: PluginConfig,
        environment: [String: String]
    ) async throws(CNIError) -> PluginOutput {
        let lease = try SubnetLease.load(path: config.subnetFile)
        let delegate = try DelegateConfig.build(config, lease: lease)
        try refuseOwnNamespace(request.netns)
        let rendered = DelegateConfig.render(delegate)
        // Saved before the delegate runs: if ADD fails halfway, the runtime's DEL still finds it.
        let store = SavedDelegates(directory: config.dataDir)
        try store.save(rendered, containerID: request.containerID)
        let plugin = try DelegatePlugin.find(delegate["type"] as! String, in: request.path)
        let (status, output) = try await plugin.invoke(
            configPath: store.path(request.containerID),
            environment: environment
        )
        return PluginOutput(stdout: output, stderr: "", status: status)
    }

    /// A container with no saved config (never added here, or already deleted) is deleted: DEL
    /// must succeed when there is nothing left to remove. The file goes only once the delegate's
    /// DEL succeeded, so a retried DEL can still release the address.
    static func delete(
        _ request: CNIRequest,
        _ config: PluginConfig,
        environment: [String: String]
    ) async throws(CNIError) -> PluginOutput {
        if !request.netns.isEmpty { try refuseOwnNamespace(request.netns) }
        guard let (store, saved) = try findSaved(request, config) else { return .success() }
        guard case .success(let object) = CNIJSON.object(saved), let type = object["type"] as? String else {
            // flannel's answer too: the interface stays on the bridge until the node reboots.
            store.remove(containerID: request.containerID)
            return PluginOutput(
                stdout: [],
                stderr:
                    "weft-cni: the saved delegate config \(store.path(request.containerID)) is unreadable; removed it without a delegate DEL\n",
                status: 0
            )
        }
        let (status, output) = try await DelegatePlugin.find(type, in: request.path).invoke(
            configPath: store.path(request.containerID),
            environment: environment
        )
        if status == 0 { store.remove(containerID: request.containerID) }
        return PluginOutput(stdout: output, stderr: "", status: status)
    }

    /// What weft-cni itself answers for: ADD ran for this container (its saved config is there)
    /// and every IPv4 address in prevResult lies in this host's current lease, so the container is
    /// still reachable over the overlay (after weftd moved to a new subnet it is not). The
    /// delegate's own CHECK is not run: bridge 1.1.1 (Debian's) refuses every route without a
    /// gateway, which flannel's Network route is (containernetworking/plugins#886, fixed in 1.3.0).
    static func check(
        _ request: CNIRequest,
        _ config: PluginConfig,
        environment: [String: String]
    ) throws(CNIError) -> PluginOutput {
        try refuseOwnNamespace(request.netns)
        guard let (store, saved) = try findSaved(request, config) else {
            throw CNIError(
                .unknownContainer,
                "no saved delegate config for container \(request.containerID) in \(config.dataDir)",
                details: "ADD did not run for it through this plugin, or DEL already did"
            )
        }
        guard case .success = CNIJSON.object(saved) else {
            throw CNIError(
                .decodingFailure,
                "the saved delegate config \(store.path(request.containerID)) is unreadable",
                details: "DEL and ADD the container again to rewrite it"
            )
        }
        let lease = try SubnetLease.load(path: config.subnetFile)
        try refuseOutside(try prevResultAddresses(config.prevResult, IPv4Address.self), lease.subnet, config)
        try refuseOutside(try prevResultAddresses(config.prevResult, IPv6Address.self), lease.ipv6Subnet, config)
        return .success()
    }

    /// CHECK's failure for the first of `addresses` outside `subnet`. A family the lease has no
    /// subnet of is not weft-cni's (another plugin of the chain gave it) and is not checked.
    static func refuseOutside<Prefix: IPPrefix>(
        _ addresses: [Prefix.Address],
        _ subnet: Prefix?,
        _ config: PluginConfig
    ) throws(CNIError) {
        guard let subnet else { return }
        for address in addresses where !subnet.contains(address) {
            throw CNIError(
                .internal,
                "container address \(address) is outside this host's subnet \(subnet) (\(config.subnetFile))",
                details:
                    "the host's lease changed since ADD; recreate the container to give it an address in the new subnet"
            )
        }
    }

    /// The addresses of `family` in a prevResult's "ips" (1.0.0 and 0.3.x/0.4.0 alike).
    static func prevResultAddresses<Address: IPAddress>(
        _ prevResult: Any?,
        _ family: Address.Type
    ) throws(CNIError) -> [Address] {
        guard let prevResult else { return [] }
        guard let result = prevResult as? [String: Any] else {
            throw CNIError(.decodingFailure, "prevResult is \(CNIJSON.kindName(prevResult)), not an object")
        }
        var addresses: [Address] = []
        for entry in result["ips"] as? [[String: Any]] ?? [] {
            guard let text = entry["address"] as? String, let slash = text.firstIndex(of: "/") else { continue }
            if let address = Address(String(text[..<slash])) { addresses.append(address) }
        }
        return addresses
    }

    /// The saved config from the first of `savedConfigDirectories` that has one.
    static func findSaved(_ request: CNIRequest, _ config: PluginConfig) throws(CNIError) -> (SavedDelegates, [UInt8])?
    {
        for directory in config.savedConfigDirectories {
            let store = SavedDelegates(directory: directory)
            if let saved = try store.load(containerID: request.containerID) { return (store, saved) }
        }
        return nil
    }

    /// skel's guard: CNI_NETNS naming the plugin's own namespace would put the host's side into the
    /// "container". A path that cannot be inspected is left for the delegate to report.
    static func refuseOwnNamespace(_ netns: String) throws(CNIError) {
        var target = stat()
        var own = stat()
        guard stat(netns, &target) == 0, stat("/proc/self/ns/net", &own) == 0 else { return }
        if target.st_dev == own.st_dev && target.st_ino == own.st_ino {
            throw CNIError(
                .invalidNetNS,
                "plugin's netns and netns from CNI_NETNS should not be the same",
                details: "CNI_NETNS=\(netns) is the namespace weft-cni runs in; give the container's"
            )
        }
    }
}
