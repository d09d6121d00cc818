import Foundation
import KubeTestServer
import Testing

/// The server's fidelity, judged by a real client: every kubectl found (Debian's 1.20 and the newest
/// google-cloud-sdk one) runs the commands an operator and flannel's tests use, and the results are
/// checked both in kubectl's output and in the server's store and request log.
@Suite(.enabled(if: !Kubectl.all.isEmpty, Kubectl.missingMessage))
struct KubectlFidelityTests {
    @Test(arguments: Kubectl.all)
    func getNodesAsJSONListsEveryNodeAtItsResourceVersion(kubectl: Kubectl) async throws {
        try await TestAPI.with { api in
            let listed = try JSONValue.parse(try await kubectl.ok(api, "get", "nodes", "-o", "json"))
            let items = listed["items"]?.array ?? []
            #expect(items.compactMap(\.name) == ["n1", "n2", "n3"])
            for item in items {
                #expect(item.resourceVersion == (try api.node(item.name ?? "")).resourceVersion)
            }
            #expect(items.first?.value(at: "spec.podCIDR")?.string == "10.244.1.0/24")
            // Default (table) output falls back to NAME and AGE from a plain NodeList.
            let table = try await kubectl.ok(api, "get", "nodes")
            #expect(table.hasPrefix("NAME"))
            #expect(["n1", "n2", "n3"].allSatisfy { table.contains("\n\($0) ") })
        }
    }

    @Test(arguments: Kubectl.all)
    func getNodeAsYAMLAndNotFound(kubectl: Kubectl) async throws {
        try await TestAPI.with { api in
            let yaml = try await kubectl.ok(api, "get", "node", "n1", "-o", "yaml")
            #expect(yaml.contains("kind: Node"))
            #expect(yaml.contains("  name: n1\n"))
            #expect(yaml.contains("podCIDR: 10.244.1.0/24"))
            #expect(yaml.contains("resourceVersion: \"\(try api.node("n1").resourceVersion ?? 0)\""))
            let (status, output) = try await kubectl(api, "get", "node", "nosuch")
            #expect(status != 0)
            #expect(output.contains(#"Error from server (NotFound): nodes "nosuch" not found"#))
        }
    }

    @Test(arguments: Kubectl.all)
    func watchShowsAddedModifiedAndDeleted(kubectl: Kubectl) async throws {
        try await TestAPI.with { api in
            let watch = try kubectl.background(api, "get", "nodes", "--watch", "-o", "json", "--output-watch-events")
            defer { watch.stop() }
            _ = try await watch.waitForEvents("the listed nodes as ADDED") { events in
                Set(events.filter { $0.type == "ADDED" }.compactMap(\.name)) == ["n1", "n2", "n3"]
            }
            _ = try await kubectl.ok(api, "annotate", "node", "n2", "example.com/watched=yes")
            let manifest = api.directory.appendingPathComponent("n4.json")
            var node = TestAPI.node("n4", podCIDR: "10.244.4.0/24")
            node["kind"] = "Node"
            node["apiVersion"] = "v1"
            try node.text.write(to: manifest, atomically: true, encoding: .utf8)
            _ = try await kubectl.ok(api, "create", "--validate=false", "-f", manifest.path)
            _ = try await kubectl.ok(api, "delete", "node", "n4")
            let events = try await watch.waitForEvents("MODIFIED n2, ADDED n4, DELETED n4") { events in
                events.contains { $0.type == "DELETED" && $0.name == "n4" }
            }
            let changes = events.dropFirst(3).map { "\($0.type ?? "?") \($0.name ?? "?")" }
            #expect(changes == ["MODIFIED n2", "ADDED n4", "DELETED n4"])
            #expect(
                events.dropFirst(3).first?.value(at: "object.metadata.annotations")?["example.com/watched"]?.string
                    == "yes"
            )
            // The watch resumed from the list's version; no bookmarks or timeout were asked for.
            let watchRequest = api.server.requests.first { $0.query.contains("watch=true") }
            #expect(watchRequest?.query.contains("resourceVersion=") == true)
        }
    }

    @Test(arguments: Kubectl.all)
    func rawWatchOfAnExpiredVersionPrintsTheInStream410(kubectl: Kubectl) async throws {
        try await TestAPI.with { api in
            let old = api.server.store.resourceVersion
            _ = try await kubectl.ok(api, "annotate", "node", "n1", "example.com/a=1")
            api.server.compactHistory()
            let (status, output) = try await kubectl(
                api,
                "get",
                "--raw",
                "/api/v1/nodes?watch=true&resourceVersion=\(old - 1)"
            )
            #expect(status == 0, "kubectl exited \(status): \(output)")
            let event = jsonDocuments(output).first
            #expect(event?.type == "ERROR")
            #expect(event?.value(at: "object.code") == .number("410"))
            #expect(event?.value(at: "object.reason")?.string == "Expired")
            #expect(
                event?.value(at: "object.message")?.string
                    == "too old resource version: \(old - 1) (\(api.server.store.oldestWatchableVersion))"
            )
        }
    }

    @Test(arguments: Kubectl.all)
    func annotateAndRemoveAndLabel(kubectl: Kubectl) async throws {
        try await TestAPI.with { api in
            _ = try await kubectl.ok(
                api,
                "annotate",
                "node",
                "n1",
                "flannel.alpha.coreos.com/public-ip-overwrite=172.18.0.2"
            )
            #expect(
                try api.node("n1").value(at: "metadata.annotations")?["flannel.alpha.coreos.com/public-ip-overwrite"]?
                    .string == "172.18.0.2"
            )
            let patch = api.server.requests.last { $0.method == "PATCH" }
            #expect(patch?.path == "/api/v1/nodes/n1")
            #expect(patch?.contentType == PatchType.merge.rawValue)
            #expect(patch?.query.contains("fieldManager=kubectl-annotate") == true)
            #expect(patch?.user == "kubernetes-admin")

            _ = try await kubectl.ok(api, "annotate", "node", "n1", "flannel.alpha.coreos.com/public-ip-overwrite-")
            #expect(
                try api.node("n1").value(at: "metadata.annotations")?["flannel.alpha.coreos.com/public-ip-overwrite"]
                    == nil
            )
            #expect(
                try api.node("n1").value(at: "metadata.annotations")?["node.alpha.kubernetes.io/ttl"]?.string == "0"
            )
            #expect(api.server.requests.last { $0.method == "PATCH" }?.body.contains("null") == true)

            _ = try await kubectl.ok(api, "label", "node", "n2", "node-role.kubernetes.io/edge=")
            #expect(try api.node("n2").value(at: "metadata.labels")?["node-role.kubernetes.io/edge"]?.string == "")
            #expect(try api.node("n2").value(at: "metadata.labels")?["kubernetes.io/os"]?.string == "linux")
        }
    }

    @Test(arguments: Kubectl.all)
    func patchOfEachTypeAndPodCIDRRules(kubectl: Kubectl) async throws {
        try await TestAPI.with { api in
            // Strategic merge (kubectl's default): the node-IPAM controller's podCIDR assignment.
            _ = try await kubectl.ok(api, "patch", "node", "n3", "-p", #"{"spec":{"podCIDR":"10.244.3.0/24"}}"#)
            #expect(try api.node("n3").value(at: "spec.podCIDRs") == ["10.244.3.0/24"])
            #expect(api.server.requests.last { $0.method == "PATCH" }?.contentType == PatchType.strategicMerge.rawValue)

            let (status, output) = try await kubectl(
                api,
                "patch",
                "node",
                "n3",
                "-p",
                #"{"spec":{"podCIDR":"10.244.9.0/24"}}"#
            )
            #expect(status != 0)
            #expect(
                output.contains(
                    #"The Node "n3" is invalid: spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid"#
                )
            )
            #expect(try api.node("n3").value(at: "spec.podCIDR")?.string == "10.244.3.0/24")

            _ = try await kubectl.ok(
                api,
                "patch",
                "node",
                "n1",
                "--type",
                "merge",
                "-p",
                #"{"metadata":{"labels":{"merged":"yes"}}}"#
            )
            #expect(api.server.requests.last { $0.method == "PATCH" }?.contentType == PatchType.merge.rawValue)
            _ = try await kubectl.ok(
                api,
                "patch",
                "node",
                "n1",
                "--type",
                "json",
                "-p",
                #"[{"op":"add","path":"/metadata/labels/json","value":"yes"}]"#
            )
            #expect(api.server.requests.last { $0.method == "PATCH" }?.contentType == PatchType.json.rawValue)
            let labels = try api.node("n1").value(at: "metadata.labels")
            #expect(labels?["merged"]?.string == "yes" && labels?["json"]?.string == "yes")
            #expect(labels?["kubernetes.io/hostname"]?.string == "n1")
        }
    }

    /// flannel's NetworkUnavailable patch, sent as kubectl sends it to the status subresource (1.24+;
    /// kubectl 1.20 has no --subresource, the raw HTTP tests cover it there).
    @Test(arguments: Kubectl.all.filter(\.hasSubresourceFlag))
    func statusSubresourcePatchMergesConditionsByType(kubectl: Kubectl) async throws {
        try await TestAPI.with { api in
            _ = try await kubectl.ok(
                api,
                "patch",
                "node",
                "n1",
                "--subresource=status",
                "-p",
                #"{"status":{"conditions":[{"type":"NetworkUnavailable","status":"False","reason":"FlannelIsUp"}]}}"#
            )
            let conditions = try api.node("n1").value(at: "status.conditions")?.array ?? []
            #expect(conditions.compactMap { $0["type"]?.string } == ["Ready", "NetworkUnavailable"])
            #expect(conditions.first?["status"]?.string == "True")
            #expect(api.server.requests.last { $0.method == "PATCH" }?.path == "/api/v1/nodes/n1/status")

            // A spec change through /status is dropped; the annotation beside it is kept.
            _ = try await kubectl.ok(
                api,
                "patch",
                "node",
                "n3",
                "--subresource=status",
                "--type",
                "merge",
                "-p",
                #"{"metadata":{"annotations":{"via":"status"}},"spec":{"podCIDR":"10.244.3.0/24"}}"#
            )
            #expect(try api.node("n3").value(at: "spec.podCIDR") == nil)
            #expect(try api.node("n3").value(at: "metadata.annotations")?["via"]?.string == "status")

            // flannel's role may patch nodes/status but not get it, and kubectl gets first.
            let (status, output) = try await kubectl(
                api,
                token: TestAPI.flannelToken,
                "patch",
                "node",
                "n1",
                "--subresource=status",
                "-p",
                #"{"status":{"conditions":[]}}"#
            )
            #expect(status != 0)
            #expect(
                output.contains(
                    #"cannot get resource "nodes" subresource "status" in API group "" at the cluster scope"#
                )
            )
        }
    }

    @Test(arguments: Kubectl.all)
    func createWithoutValidationAndDeleteWithItsWait(kubectl: Kubectl) async throws {
        try await TestAPI.with { api in
            let manifest = api.directory.appendingPathComponent("n5.yaml")
            try """
            apiVersion: v1
            kind: Node
            metadata:
              name: n5
              annotations:
                dummy: value
            spec:
              podCIDR: 10.244.5.0/24
            """.write(to: manifest, atomically: true, encoding: .utf8)
            #expect(
                try await kubectl.ok(api, "create", "--validate=false", "-f", manifest.path).contains("node/n5 created")
            )
            let created = try api.node("n5")
            #expect(created.value(at: "spec.podCIDRs") == ["10.244.5.0/24"])
            #expect(created.value(at: "metadata.uid")?.string?.isEmpty == false)
            #expect(api.server.requests.last { $0.method == "POST" }?.code == 201)

            let (status, output) = try await kubectl(api, "create", "--validate=false", "-f", manifest.path)
            #expect(status != 0)
            #expect(
                output.contains(#"Error from server (AlreadyExists)"#) && output.contains(#"nodes "n5" already exists"#)
            )

            #expect(try await kubectl.ok(api, "delete", "node", "n5").contains(#"node "n5" deleted"#))
            #expect(api.server.store.object(.nodes, ObjectKey(name: "n5")) == nil)
            // kubectl then waits for the node to go: 1.20 lists with a name selector (an empty list
            // ends the wait), newer ones GET the node (404 ends it).
            let requests = api.server.requests
            let delete = try #require(requests.firstIndex { $0.method == "DELETE" && $0.path == "/api/v1/nodes/n5" })
            let wait = try #require(requests.dropFirst(delete + 1).first { $0.method == "GET" }, "no wait after DELETE")
            let listed =
                wait.path == "/api/v1/nodes" && wait.query.contains("fieldSelector=metadata.name%3Dn5")
                && wait.code == 200
            let got = wait.path == "/api/v1/nodes/n5" && wait.code == 404
            #expect(listed || got, "kubectl's wait after delete: \(wait)")
        }
    }

    /// Client-side apply: GET (404), POST with the last-applied annotation, then a strategic merge
    /// computed from it that removes the label no longer in the file.
    @Test(arguments: Kubectl.all)
    func applyCreatesThenPatches(kubectl: Kubectl) async throws {
        try await TestAPI.with { api in
            let manifest = api.directory.appendingPathComponent("n6.yaml")
            let text = { (labels: String) in
                "apiVersion: v1\nkind: Node\nmetadata:\n  name: n6\n  labels: {\(labels)}\nspec:\n  podCIDR: 10.244.6.0/24\n"
            }
            try text(#"a: "1", b: "2""#).write(to: manifest, atomically: true, encoding: .utf8)
            #expect(
                try await kubectl.ok(api, "apply", "--validate=false", "-f", manifest.path).contains("node/n6 created")
            )
            try text(#"a: "1", c: "3""#).write(to: manifest, atomically: true, encoding: .utf8)
            #expect(
                try await kubectl.ok(api, "apply", "--validate=false", "-f", manifest.path).contains(
                    "node/n6 configured"
                )
            )
            let node = try api.node("n6")
            #expect(node.value(at: "metadata.labels") == ["a": "1", "c": "3"])
            #expect(
                node.value(at: "metadata.annotations")?["kubectl.kubernetes.io/last-applied-configuration"]?.string?
                    .contains(#""c":"3""#) == true
            )
            let patch = try #require(api.server.requests.last { $0.method == "PATCH" })
            #expect(patch.contentType == PatchType.strategicMerge.rawValue)
            #expect(patch.query.contains("fieldManager=kubectl-client-side-apply"))
        }
    }

    @Test(arguments: Kubectl.all)
    func wrongTokenAndFlannelsRole(kubectl: Kubectl) async throws {
        try await TestAPI.with { api in
            let (status, output) = try await kubectl(api, token: "not-a-token", "get", "nodes")
            #expect(status != 0)
            #expect(kubectl.unauthorizedMessage.contains { output.contains($0) }, "\(output)")
            #expect(api.server.requests.first?.code == 401)
            #expect(api.server.requests.first?.user == nil)

            let (denied, message) = try await kubectl(api, token: TestAPI.flannelToken, "annotate", "node", "n1", "k=v")
            #expect(denied != 0)
            #expect(
                message.contains(
                    #"Error from server (Forbidden): nodes "n1" is forbidden: User "system:serviceaccount:kube-flannel:flannel" cannot patch resource "nodes" in API group "" at the cluster scope"#
                )
            )
            #expect(try api.node("n1").value(at: "metadata.annotations")?["k"] == nil)

            let names = try await kubectl.ok(api, token: TestAPI.flannelToken, "get", "nodes", "-o", "name")
            #expect(names.split(separator: "\n") == ["node/n1", "node/n2", "node/n3"])
            let nodeName = try await kubectl.ok(
                api,
                token: TestAPI.flannelToken,
                "get",
                "pod",
                "-n",
                "kube-flannel",
                TestAPI.podName,
                "-o",
                "jsonpath={.spec.nodeName}"
            )
            #expect(nodeName == "n1")

            let (refused, listing) = try await kubectl(api, token: TestAPI.nobodyToken, "get", "nodes")
            #expect(refused != 0)
            #expect(
                listing.contains(#"User "nobody" cannot list resource "nodes" in API group "" at the cluster scope"#)
            )
        }
    }
}

/// Which kubectl binaries the fidelity tests ran with, so a missing one is a failure, not a quieter run.
struct KubectlDiscoveryTests {
    @Test func debiansKubectlAndAnyChosenOneAreFound() {
        if let chosen = Kubectl.chosen {
            #expect(
                Kubectl.all.contains { $0.path == chosen },
                "WEFT_KUBECTL=\(chosen) does not run `kubectl version --client -o json`"
            )
        } else {
            #expect(
                Kubectl.all.contains { $0.path == Kubectl.extractedPath && $0.minor == 20 },
                "Debian's kubectl 1.20 is not at \(Kubectl.extractedPath): run scripts/setup"
            )
        }
    }
}
