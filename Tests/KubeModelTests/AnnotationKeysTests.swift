import Testing

@testable import KubeModel

@Suite struct AnnotationPrefixes {
    // flannel's annotations_test.go cases.
    @Test(arguments: [
        ("flannel.alpha.coreos.com", "flannel.alpha.coreos.com/backend-type"),
        ("flannel.alpha.coreos.com/", "flannel.alpha.coreos.com/backend-type"),
        ("flannel.alpha.coreos.com/prefix", "flannel.alpha.coreos.com/prefix-backend-type"),
        ("flannel.alpha.coreos.com/prefix-", "flannel.alpha.coreos.com/prefix-backend-type"),
        ("org.com/9", "org.com/9-backend-type"),
        ("example.com/foo", "example.com/foo-backend-type"),
        ("a_b.c-d/x_y", "a_b.c-d/x_y-backend-type"),
    ])
    func accepted(prefix: String, backendType: String) throws {
        #expect(try AnnotationKeys(prefix: prefix).backendType == backendType)
    }

    @Test(arguments: [
        "org", "org/", "org.COM", "Example.org.com", ".org.com", "org..com", "org.com/-", "org.com/a.b", "org.com/A",
    ])
    func refusedAsNotFQDN(prefix: String) {
        let error = #expect(throws: KubeError.self) { try AnnotationKeys(prefix: prefix) }
        #expect(error?.problem == "subnet/kube: prefix must be in a format: fqdn/[0-9a-z-_]*")
        #expect(error?.kind == .annotationPrefix)
    }

    @Test func twoSlashesRefused() {
        let error = #expect(throws: KubeError.self) { try AnnotationKeys(prefix: "a.com/b/c") }
        #expect(error?.problem == "subnet/kube: prefix can contain at most single slash")
    }

    @Test func allKeyNames() {
        let keys = AnnotationKeys.standard
        #expect(keys.prefix == "flannel.alpha.coreos.com/")
        #expect(
            [
                keys.kubeSubnetManager, keys.backendData, keys.backendV6Data, keys.backendType, keys.publicIP,
                keys.publicIPv6,
                keys.publicIPOverwrite, keys.publicIPv6Overwrite, keys.nodePublicIP, keys.nodePublicIPv6,
            ]
                == [
                    "kube-subnet-manager", "backend-data", "backend-v6-data", "backend-type", "public-ip",
                    "public-ipv6",
                    "public-ip-overwrite", "public-ipv6-overwrite", "node-public-ip", "node-public-ipv6",
                ].map { "flannel.alpha.coreos.com/" + $0 }
        )
    }
}
