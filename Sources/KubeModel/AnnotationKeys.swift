/// flannel's node annotation names under `--kube-annotation-prefix` (annotations.go newAnnotations).
public struct AnnotationKeys: Equatable, Sendable {
    public static let defaultPrefix = "flannel.alpha.coreos.com"

    /// The prefix as used, ending in "/" or "-": "flannel.alpha.coreos.com/", "example.com/foo-".
    public let prefix: String

    /// "true" on every node whose flannel (or weftd) wrote its lease: only those are peers.
    public var kubeSubnetManager: String { prefix + "kube-subnet-manager" }
    /// The backend's JSON as a string, e.g. {"VNI":1,"VtepMAC":"96:59:b2:3f:04:ee"}; "null" for host-gw.
    public var backendData: String { prefix + "backend-data" }
    public var backendV6Data: String { prefix + "backend-v6-data" }
    public var backendType: String { prefix + "backend-type" }
    /// The address peers send to.
    public var publicIP: String { prefix + "public-ip" }
    public var publicIPv6: String { prefix + "public-ipv6" }
    /// Set by the user (NAT): advertised as public-ip instead of the local address.
    public var publicIPOverwrite: String { prefix + "public-ip-overwrite" }
    public var publicIPv6Overwrite: String { prefix + "public-ipv6-overwrite" }
    /// Set by the user: a local address that chooses the interface, like --public-ip.
    public var nodePublicIP: String { prefix + "node-public-ip" }
    public var nodePublicIPv6: String { prefix + "node-public-ipv6" }

    public static let standard = try! AnnotationKeys(prefix: defaultPrefix)

    /// flannel's rules: at most one "/"; none means "/" is appended; otherwise "-" unless the
    /// prefix already ends in "/" or "-"; then it must read fqdn/[0-9a-z-_]*.
    ///
    /// flannel's regexp is anchored only at the end, so it lets e.g. "Example.org.com" through
    /// and the API server then refuses every PATCH (annotation keys are lowercase). Weft anchors
    /// both ends and refuses such a prefix at startup, with flannel's message.
    public init(prefix given: String) throws(KubeError) {
        let slashes = given.filter { $0 == "/" }.count
        guard slashes <= 1 else {
            throw KubeError(
                .annotationPrefix,
                "subnet/kube: prefix can contain at most single slash",
                fix:
                    "give --kube-annotation-prefix as a domain with at most one path part, e.g. flannel.alpha.coreos.com or example.com/weft"
            )
        }
        var prefix = given
        if slashes == 0 { prefix += "/" }
        if !prefix.hasSuffix("/") && !prefix.hasSuffix("-") { prefix += "-" }
        guard AnnotationKeys.isValid(prefix) else {
            throw KubeError(
                .annotationPrefix,
                "subnet/kube: prefix must be in a format: fqdn/[0-9a-z-_]*",
                fix:
                    "--kube-annotation-prefix \(KubeError.quoted(given)) must be a lowercase domain with at least one dot, optionally followed by /name, e.g. flannel.alpha.coreos.com"
            )
        }
        self.prefix = prefix
    }

    /// `^(?:[a-z0-9_-]+\.)+[a-z0-9_-]+/(?:[a-z0-9_-]+-)?$`
    static func isValid(_ prefix: String) -> Bool {
        let parts = prefix.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return false }
        let labels = parts[0].split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2, labels.allSatisfy({ !$0.isEmpty && $0.allSatisfy(isNameCharacter) }) else {
            return false
        }
        let name = parts[1]
        if name.isEmpty { return true }
        return name.count >= 2 && name.hasSuffix("-") && name.allSatisfy(isNameCharacter)
    }

    private static func isNameCharacter(_ c: Character) -> Bool {
        ("a"..."z").contains(c) || ("0"..."9").contains(c) || c == "_" || c == "-"
    }
}
