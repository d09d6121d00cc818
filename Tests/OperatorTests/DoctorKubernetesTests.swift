import Addressing
import Config
import Operator
import Testing

/// `weft doctor` in Kubernetes mode: the API server and RBAC lines replace etcd's, the podCIDR and
/// the node's annotations replace the etcd lease.
@Suite struct DoctorKubernetesTests {
    static func healthy() throws -> DoctorFacts {
        var facts = try DoctorCheckTests.healthy()
        facts.endpoints = []
        facts.ownLease = .unknown
        facts.config = .valid(
            key: "/etc/kube-flannel/net-conf.json",
            try NetworkConfig.parse(#"{"Network":"10.244.0.0/16","Backend":{"Type":"udp"}}"#)
        )
        facts.kube = KubeFacts(
            server: "https://198.18.0.254:6443",
            node: .success("n3"),
            access: ["nodes get", "nodes list", "nodes watch", "nodes/status patch"].map {
                KubeFacts.Access(rule: $0, error: nil)
            },
            podCIDR: .success("10.244.3.0/24"),
            annotations: ["kube-subnet-manager": "true", "public-ip": "198.18.0.1", "backend-type": ""]
        )
        return facts
    }

    @Test func aHealthyNodeChecksTheAPIServerInsteadOfEtcd() throws {
        let checks = DoctorCheck.evaluate(try Self.healthy())
        #expect(checks.allSatisfy { $0.status == .ok }, "\(checks.filter { $0.status != .ok })")
        #expect(!checks.contains { $0.name.hasPrefix("etcd") || $0.name == "lease" })
        #expect(
            checks.map(\.name).starts(with: [
                "kubernetes node", "RBAC nodes get", "RBAC nodes list", "RBAC nodes watch", "RBAC nodes/status patch",
            ])
        )
        #expect(DoctorCheckTests.check(checks, "node annotations")?.detail == "public-ip 198.18.0.1, backend udp")
    }

    @Test func aMissingRuleFailsAndNamesIt() throws {
        var facts = try Self.healthy()
        facts.kube?.access[3].error = "forbidden: weftd may not patch nodes/status"
        let checks = DoctorCheck.evaluate(facts)
        #expect(DoctorCheckTests.check(checks, "RBAC nodes/status patch")?.status == .fail)
        #expect(!DoctorCheck.passed(checks))
    }

    @Test func noPodCIDRFailsWithTheFixAndAMovedOneDisagreesWithSubnetEnv() throws {
        var facts = try Self.healthy()
        facts.kube?.podCIDR = .failure(
            InterfaceProblem(#"node "n3" pod cidr not assigned; set it with kubectl patch node n3"#)
        )
        #expect(DoctorCheckTests.check(DoctorCheck.evaluate(facts), "node podCIDR")?.status == .fail)
        facts.kube?.podCIDR = .success("10.244.9.0/24")
        let moved = try #require(DoctorCheckTests.check(DoctorCheck.evaluate(facts), "node podCIDR"))
        #expect(moved.status == .fail)
        #expect(moved.detail == "10.244.9.0/24, but subnet.env says 10.244.3.0/24")
    }

    @Test func annotationsThatAreMissingOrNameAnotherAddressWarn() throws {
        var facts = try Self.healthy()
        facts.kube?.annotations = [:]
        #expect(DoctorCheckTests.check(DoctorCheck.evaluate(facts), "node annotations")?.status == .warn)
        facts.kube?.annotations = ["kube-subnet-manager": "true", "public-ip": "198.18.0.77"]
        let other = try #require(DoctorCheckTests.check(DoctorCheck.evaluate(facts), "node annotations"))
        #expect(other.status == .warn)
        #expect(other.detail.contains("this host's public IP is 198.18.0.1"))
        facts.kube?.annotations = [
            "kube-subnet-manager": "true", "public-ip": "203.0.113.5", "public-ip-overwrite": "203.0.113.5",
        ]
        #expect(
            DoctorCheckTests.check(DoctorCheck.evaluate(facts), "node annotations")?.status == .ok,
            "behind NAT the overwrite is the public-ip"
        )
    }

    @Test func noClientIsOneFailingLine() throws {
        var facts = try Self.healthy()
        facts.kube = KubeFacts(
            server: "",
            clientProblem:
                "unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined",
            node: .failure(InterfaceProblem("no client"))
        )
        let checks = DoctorCheck.evaluate(facts)
        #expect(DoctorCheckTests.check(checks, "kubernetes API")?.status == .fail)
    }
}
