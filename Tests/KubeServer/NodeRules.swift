#if canImport(Glibc)
import Glibc
#endif

/// What kube-apiserver's node strategy and validation do to a Node on create and update
/// (pkg/registry/core/node/strategy.go, pkg/apis/core/validation ValidateNode/ValidateNodeUpdate).
enum NodeRules {
    static let podCIDRForbidden = "node updates may not change podCIDR except from \"\" to valid"

    /// v1 keeps `podCIDR` and `podCIDRs` in step (pkg/apis/core/v1/conversion.go): a podCIDR that
    /// differs from podCIDRs[0] wins and becomes the whole list; podCIDR is then podCIDRs[0].
    static func mirrorPodCIDRs(_ node: inout JSONValue) {
        guard var spec = node["spec"]?.object else { return }
        var list = (spec["podCIDRs"]?.array ?? []).compactMap(\.string)
        if let single = spec["podCIDR"]?.string, !single.isEmpty, list.first != single { list = [single] }
        if let first = list.first {
            spec["podCIDR"] = .string(first)
            spec["podCIDRs"] = .array(list.map(JSONValue.string))
        }
        node["spec"] = .object(spec)
    }

    static func validate(_ node: JSONValue, previous: JSONValue?) -> [StatusError.Cause] {
        var causes: [StatusError.Cause] = []
        let cidrs = (node.value(at: "spec.podCIDRs")?.array ?? []).compactMap(\.string)
        var families: [Int32] = []
        for (position, cidr) in cidrs.enumerated() {
            guard let family = family(ofCIDR: cidr) else {
                causes.append(
                    .init(
                        reason: "FieldValueInvalid",
                        message:
                            "Invalid value: \"\(cidr)\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                        field: "spec.podCIDRs[\(position)]"
                    )
                )
                continue
            }
            families.append(family)
        }
        if cidrs.count > 2 || Set(families).count < families.count {
            let listed = cidrs.map { "\"\($0)\"" }.joined(separator: ",")
            causes.append(
                .init(
                    reason: "FieldValueInvalid",
                    message: "Invalid value: [\(listed)]: may specify no more than one CIDR for each IP family",
                    field: "spec.podCIDRs"
                )
            )
        }
        if let previous {
            let before = (previous.value(at: "spec.podCIDRs")?.array ?? []).compactMap(\.string)
            if !before.isEmpty, before != cidrs {
                causes.append(
                    .init(
                        reason: "FieldValueForbidden",
                        message: "Forbidden: \(podCIDRForbidden)",
                        field: "spec.podCIDRs"
                    )
                )
            }
        }
        return causes
    }

    static func family(ofCIDR text: String) -> Int32? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let bits = Int(parts[1]) else { return nil }
        var storage = [UInt8](repeating: 0, count: 16)
        if inet_pton(AF_INET, String(parts[0]), &storage) == 1, (0...32).contains(bits) { return AF_INET }
        if inet_pton(AF_INET6, String(parts[0]), &storage) == 1, (0...128).contains(bits) { return AF_INET6 }
        return nil
    }
}
