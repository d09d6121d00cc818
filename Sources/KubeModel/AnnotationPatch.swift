import Config

/// The annotations flannel's AcquireLease writes on its own node, and the strategic merge patch
/// for `PATCH nodes/<name>/status` that carries only what changed.
public enum AnnotationPatch {
    /// The node's annotations after flannel's in-memory edit (kube.go AcquireLease), or nil when
    /// flannel's check finds nothing to do. `attributes.publicIP` is the local address; a
    /// public-ip-overwrite annotation takes its place in public-ip.
    public static func desired(
        current: [String: String],
        attributes: LeaseAttributes,
        keys: AnnotationKeys
    ) -> [String: String]? {
        let type = attributes.backendType
        let data = attributes.backendData ?? "null"
        let dataV6 = attributes.backendV6Data ?? "null"
        let publicIP = attributes.publicIP.description
        let overwrite = current[keys.publicIPOverwrite] ?? ""
        let overwriteV6 = current[keys.publicIPv6Overwrite] ?? ""
        func value(_ key: String) -> String { current[key] ?? "" }

        let v4Differs =
            value(keys.backendData) != data || value(keys.backendType) != type
            || value(keys.publicIP) != publicIP || value(keys.kubeSubnetManager) != "true"
            || (!overwrite.isEmpty && overwrite != publicIP)
        var v6Differs = false
        if let publicIPv6 = attributes.publicIPv6 {
            v6Differs =
                value(keys.backendV6Data) != dataV6 || value(keys.backendType) != type
                || value(keys.publicIPv6) != publicIPv6 || value(keys.kubeSubnetManager) != "true"
                || (!overwriteV6.isEmpty && overwriteV6 != publicIPv6)
        }
        guard v4Differs || v6Differs else { return nil }

        var result = current
        result[keys.backendType] = type
        // vxlan without data (no flannel.<VNI>: an IPv6-only network) publishes neither data nor
        // address; other types always do, host-gw on an IPv6-only network "null" and "0.0.0.0".
        if (type == "vxlan" && data != "null") || (type == "wireguard" && data != "null") || type != "vxlan" {
            result[keys.backendData] = data
            result[keys.publicIP] = overwrite.isEmpty ? publicIP : overwrite
        }
        let hasV6 = attributes.publicIPv6 != nil
        if (type == "vxlan" && dataV6 != "null") || (type == "wireguard" && dataV6 != "null" && hasV6)
            || (type == "host-gw" && hasV6)
        {
            result[keys.backendV6Data] = dataV6
            result[keys.publicIPv6] = overwriteV6.isEmpty ? (attributes.publicIPv6 ?? "") : overwriteV6
        }
        result[keys.kubeSubnetManager] = "true"
        return result
    }

    /// The body for `PATCH /api/v1/nodes/<name>/status` (strategic merge), holding only the
    /// annotations whose value changed, as strategicpatch.CreateTwoWayMergePatch makes it; nil when
    /// nothing changed, so a restart with the same attributes sends no write.
    ///
    /// Throws when public-ip-overwrite is set but is not an IPv4 address.
    public static func body(node: Node, attributes: LeaseAttributes, keys: AnnotationKeys) throws(KubeError) -> String?
    {
        _ = try OwnNodeAnnotations(node: node, keys: keys).publicIPOverwrite()
        let current = node.annotations
        guard let desired = desired(current: current, attributes: attributes, keys: keys) else { return nil }
        let changed = desired.filter { current[$0.key] != $0.value }
        guard !changed.isEmpty else { return nil }
        return "{\"metadata\":{\"annotations\":\(JSONText.object(changed))}}"
    }
}
