import Foundation

/// The config weft-cni hands to its delegate (bridge unless `delegate.type` says otherwise), built
/// by flannel's rules: the user's `delegate` object with name, type, ipMasq, mtu, isGateway and
/// cniVersion filled in where unset, and an ipam section whose ranges are this host's lease (one
/// range set per family: IPv4, then IPv6) and whose routes add the whole Network of each family.
/// Keys weft-cni does not know are passed on untouched.
public enum DelegateConfig {
    public static func build(_ config: PluginConfig, lease: SubnetLease) throws(CNIError) -> [String: Any] {
        var delegate = config.delegate ?? [:]
        if let type = delegate["type"], !(type is String) {
            throw CNIError(
                .invalidNetworkConfig,
                "'delegate' dictionary, if present, must have (string) 'type' field",
                details: "got \(CNIJSON.kindName(type)); write e.g. \"type\": \"bridge\""
            )
        }
        if delegate["name"] != nil {
            throw CNIError(
                .invalidNetworkConfig,
                "'delegate' dictionary must not have 'name' field, it'll be set by weft-cni",
                details: "remove delegate.name; the network's name is used"
            )
        }
        if delegate["ipam"] != nil {
            throw CNIError(
                .invalidNetworkConfig,
                "'delegate' dictionary must not have 'ipam' field, it'll be set by weft-cni",
                details: "move it to the plugin's own \"ipam\"; its ranges are replaced by this host's subnet"
            )
        }
        if let runtimeConfig = config.runtimeConfig { delegate["runtimeConfig"] = runtimeConfig }

        delegate["name"] = config.name
        if delegate["type"] == nil { delegate["type"] = "bridge" }
        // The daemon's own masquerade (FLANNEL_IPMASQ=true) makes the bridge's unnecessary.
        if delegate["ipMasq"] == nil { delegate["ipMasq"] = !lease.ipMasq }
        if delegate["mtu"] == nil { delegate["mtu"] = lease.mtu }
        if delegate["type"] as? String == "bridge", delegate["isGateway"] == nil { delegate["isGateway"] = true }
        if !config.cniVersion.isEmpty { delegate["cniVersion"] = config.cniVersion }
        delegate["ipam"] = try ipam(config, lease: lease)
        return delegate
    }

    /// The rendered delegate config, as saved for DEL and written to the delegate's stdin.
    public static func render(_ delegate: [String: Any]) -> [UInt8] {
        CNIJSON.render(delegate)
    }

    static func ipam(_ config: PluginConfig, lease: SubnetLease) throws(CNIError) -> [String: Any] {
        var ipam = config.ipam ?? [:]
        if ipam["type"] == nil { ipam["type"] = "host-local" }
        // host-local takes a list of range sets, one address from each: both families for a dual-stack lease.
        let subnets: [String?] = [lease.subnet?.description, lease.ipv6Subnet?.description]
        ipam["ranges"] = subnets.compactMap { $0 }.map { [["subnet": $0]] }

        var routes: [Any] = []
        if let given = ipam["routes"], !(given is NSNull) {
            guard let list = given as? [Any] else {
                throw routesFailure("ipam.routes is \(CNIJSON.kindName(given)), not an array")
            }
            for (index, route) in list.enumerated() {
                guard let route = route as? [String: Any], route["dst"] is String else {
                    throw routesFailure("ipam.routes[\(index)] has no \"dst\" string")
                }
                routes.append(route)
            }
        }
        for network in [lease.network?.description, lease.ipv6Network?.description] {
            if let network { routes.append(["dst": network]) }
        }
        ipam["routes"] = routes
        return ipam
    }

    static func routesFailure(_ problem: String) -> CNIError {
        CNIError(
            .invalidNetworkConfig,
            "failed to assemble Delegate IPAM: failed to read IPAM routes: \(problem)",
            details: "write routes as [{\"dst\": \"0.0.0.0/0\"}, ...]"
        )
    }
}
