import Foundation
import KubeTestServer
import Testing

/// What kubectl cannot show, over raw HTTP with curl: exact Status bodies, the status subresource,
/// no-op patches, podCIDR rules, resourceVersions, and the auth answers flannel meets.
@Suite(.enabled(if: Curl.isAvailable, "needs /usr/bin/curl (Debian package curl)"))
struct HTTPSemanticsTests {
    @Test func discoveryDocumentsAndVersion() async throws {
        try await TestAPI.with { api in
            let versions = try await Curl.get(api, "/api").json
            #expect(versions["kind"]?.string == "APIVersions")
            #expect(versions["versions"] == ["v1"])
            #expect(
                try await Curl.get(api, "/apis").json == ["kind": "APIGroupList", "apiVersion": "v1", "groups": []]
            )
            let resources = try await Curl.get(api, "/api/v1").json["resources"]?.array ?? []
            #expect(resources.compactMap { $0["name"]?.string } == ["nodes", "nodes/status", "pods", "pods/status"])
            #expect(resources.first?["verbs"]?.array?.contains("watch") == true)
            #expect(try await Curl.get(api, "/version").json["major"]?.string == "1")
            let missing = try await Curl.get(api, "/apis/apps/v1")
            #expect(missing.code == 404)
        }
    }

    @Test func unauthorizedAndForbiddenBodiesAreKubeApiserversOwn() async throws {
        try await TestAPI.with { api in
            let wrong = try await Curl.get(api, "/api/v1/nodes", token: "wrong")
            #expect(wrong.code == 401)
            #expect(
                wrong.body
                    == #"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#
            )
            // No credentials at all: system:anonymous (kube-apiserver's default), which may read only
            // the public paths.
            let anonymous = try await Curl.get(api, "/api/v1/nodes", token: nil)
            #expect(anonymous.code == 403)
            #expect(
                anonymous.json["message"]?.string
                    == #"nodes is forbidden: User "system:anonymous" cannot list resource "nodes" in API group "" at the cluster scope"#
            )
            let discovery = try await Curl.get(api, "/api", token: nil)
            #expect(
                discovery.body
                    == #"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"forbidden: User \"system:anonymous\" cannot get path \"/api\"","reason":"Forbidden","details":{},"code":403}"#
            )
            #expect(try await Curl.get(api, "/version", token: nil).code == 200)
            #expect(try await Curl.get(api, "/healthz", token: nil).code == 200)
            let patch = try await Curl.patch(
                api,
                "/api/v1/nodes/n1",
                .strategicMerge,
                #"{"metadata":{"labels":{"a":"b"}}}"#,
                token: TestAPI.flannelToken
            )
            #expect(patch.code == 403)
            #expect(
                patch.body
                    == #"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"nodes \"n1\" is forbidden: User \"system:serviceaccount:kube-flannel:flannel\" cannot patch resource \"nodes\" in API group \"\" at the cluster scope","reason":"Forbidden","details":{"name":"n1","kind":"nodes"},"code":403}"#
            )
            let status = try await Curl.get(api, "/api/v1/nodes/n1/status", token: TestAPI.flannelToken)
            #expect(status.code == 403)
            #expect(
                status.json["message"]?.string
                    == #"nodes "n1" is forbidden: User "system:serviceaccount:kube-flannel:flannel" cannot get resource "nodes" subresource "status" in API group "" at the cluster scope"#
            )
            let pods = try await Curl.get(api, "/api/v1/namespaces/kube-flannel/pods", token: TestAPI.flannelToken)
            #expect(
                pods.json["message"]?.string
                    == #"pods is forbidden: User "system:serviceaccount:kube-flannel:flannel" cannot list resource "pods" in API group "" in the namespace "kube-flannel""#
            )

            // Everything the ClusterRole grants works.
            #expect(
                try await Curl.get(api, "/api/v1/nodes?limit=500&resourceVersion=0", token: TestAPI.flannelToken).code
                    == 200
            )
            #expect(try await Curl.get(api, "/api/v1/nodes/n2", token: TestAPI.flannelToken).code == 200)
            let pod = try await Curl.get(
                api,
                "/api/v1/namespaces/kube-flannel/pods/\(TestAPI.podName)",
                token: TestAPI.flannelToken
            )
            #expect(pod.json.value(at: "spec.nodeName")?.string == "n1")
            let own = try await Curl.patch(
                api,
                "/api/v1/nodes/n1/status",
                .strategicMerge,
                #"{"metadata":{"annotations":{"x":"y"}}}"#,
                token: TestAPI.flannelToken
            )
            #expect(own.code == 200)
            // The request log names the user each request authenticated as, nil when none.
            #expect(api.server.requests.map(\.user).prefix(2) == [nil, "system:anonymous"])
            #expect(api.server.requests.last?.user == User.flannel)
        }
    }

    /// flannel's AcquireLease patch: annotations through /status as a strategic merge. A spec change
    /// in the same body is dropped (status strategy); the version moves by exactly one.
    @Test func statusSubresourceKeepsMetadataAndDropsSpec() async throws {
        try await TestAPI.with { api in
            let before = try api.node("n3")
            let version = api.server.store.resourceVersion
            let watch = try Curl.watch(api, "/api/v1/nodes?watch=true&resourceVersion=\(version)")
            defer { watch.stop() }
            try await waitForWatchers(api, 1)
            let reply = try await Curl.patch(
                api,
                "/api/v1/nodes/n3/status",
                .strategicMerge,
                #"""
                {"metadata":{"annotations":{"flannel.alpha.coreos.com/backend-data":"{\"VNI\":1,\"VtepMAC\":\"96:59:b2:3f:04:ee\"}","flannel.alpha.coreos.com/backend-type":"vxlan","flannel.alpha.coreos.com/public-ip":"10.0.0.5"}},"spec":{"podCIDR":"10.244.3.0/24"}}
                """#
            )
            #expect(reply.code == 200)
            let after = try api.node("n3")
            #expect(
                after.value(at: "metadata.annotations")?["flannel.alpha.coreos.com/public-ip"]?.string == "10.0.0.5"
            )
            #expect(after.value(at: "metadata.annotations")?["node.alpha.kubernetes.io/ttl"]?.string == "0")
            #expect(after["spec"] == before["spec"])
            // One global version, as etcd's revision: the node's new version is the store's next one.
            #expect(after.resourceVersion == version + 1)
            #expect(api.server.store.resourceVersion == version + 1)
            #expect(reply.json.resourceVersion == after.resourceVersion)
            let events = try await watch.waitForEvents("the MODIFIED event") { !$0.isEmpty }
            #expect(events.map(\.type) == ["MODIFIED"])
            #expect(events.first?.resourceVersion == after.resourceVersion)

            // The main resource never writes status.
            let main = try await Curl.patch(
                api,
                "/api/v1/nodes/n3",
                .merge,
                #"{"status":{"conditions":[]},"metadata":{"labels":{"l":"1"}}}"#
            )
            #expect(main.code == 200)
            #expect(try api.node("n3")["status"] == after["status"])
            #expect(try api.node("n3").value(at: "metadata.labels")?["l"]?.string == "1")
        }
    }

    /// flannel's NetworkUnavailable patch over HTTP, for kubectl versions without --subresource.
    @Test func strategicMergeOfConditionsAndAddressesByType() async throws {
        try await TestAPI.with { api in
            let reply = try await Curl.patch(
                api,
                "/api/v1/nodes/n1/status",
                .strategicMerge,
                """
                {"status":{"conditions":[{"type":"NetworkUnavailable","status":"False","reason":"FlannelIsUp","message":"Flannel is running on this node","lastHeartbeatTime":"2026-12-06T08:00:00Z","lastTransitionTime":"2026-12-06T08:00:00Z"}],"addresses":[{"type":"InternalIP","address":"192.168.0.9"}]}}
                """
            )
            #expect(reply.code == 200)
            let status = try api.node("n1")["status"]
            #expect(status?["conditions"]?.array?.compactMap { $0["type"]?.string } == ["Ready", "NetworkUnavailable"])
            #expect(
                status?["addresses"] == [
                    ["type": "InternalIP", "address": "192.168.0.9"], ["type": "Hostname", "address": "n1"],
                ]
            )
            // A merge patch replaces the list: the other conditions go (why flannel uses a strategic merge).
            _ = try await Curl.patch(
                api,
                "/api/v1/nodes/n2/status",
                .merge,
                #"{"status":{"conditions":[{"type":"NetworkUnavailable","status":"False"}]}}"#
            )
            #expect(try api.node("n2").value(at: "status.conditions")?.array?.count == 1)
        }
    }

    @Test func noOpPatchKeepsTheVersionAndEmitsNothing() async throws {
        try await TestAPI.with { api in
            let body = #"{"metadata":{"annotations":{"flannel.alpha.coreos.com/kube-subnet-manager":"true"}}}"#
            let version = api.server.store.resourceVersion
            let watch = try Curl.watch(api, "/api/v1/nodes?watch=true&resourceVersion=\(version)")
            defer { watch.stop() }
            try await waitForWatchers(api, 1)
            for type in PatchType.allCases {
                let patch =
                    type == .json
                    ? #"[{"op":"replace","path":"/metadata/annotations/node.alpha.kubernetes.io~1ttl","value":"0"}]"#
                    : body
                let reply = try await Curl.patch(api, "/api/v1/nodes/n1/status", type, patch)
                #expect(reply.code == 200, "\(type): \(reply.body)")
                #expect(try reply.json.resourceVersion == api.node("n1").resourceVersion)
            }
            #expect(api.server.store.resourceVersion == version)
            // The next event on the stream is the next real change, not the no-ops.
            _ = try await Curl.patch(api, "/api/v1/nodes/n2", .merge, #"{"metadata":{"labels":{"changed":"yes"}}}"#)
            let events = try await watch.waitForEvents("the real change") { !$0.isEmpty }
            try await Task.sleep(for: .milliseconds(200))
            #expect(watch.events.map { "\($0.type ?? "") \($0.name ?? "")" } == ["MODIFIED n2"])
            #expect(events.first?.resourceVersion == version + 1)
        }
    }

    @Test func podCIDRMayOnlyGoFromEmptyToValid() async throws {
        try await TestAPI.with { api in
            let change = try await Curl.patch(
                api,
                "/api/v1/nodes/n1",
                .strategicMerge,
                #"{"spec":{"podCIDR":"10.244.7.0/24"}}"#
            )
            #expect(change.code == 422)
            #expect(
                change.body
                    == #"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Node \"n1\" is invalid: spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" to valid","reason":"Invalid","details":{"name":"n1","kind":"Node","causes":[{"reason":"FieldValueForbidden","message":"Forbidden: node updates may not change podCIDR except from \"\" to valid","field":"spec.podCIDRs"}]},"code":422}"#
            )
            let removal = try await Curl.patch(
                api,
                "/api/v1/nodes/n1",
                .json,
                #"[{"op":"remove","path":"/spec/podCIDRs"},{"op":"remove","path":"/spec/podCIDR"}]"#
            )
            #expect(removal.code == 422)
            #expect(try api.node("n1").value(at: "spec.podCIDRs") == ["10.244.1.0/24"])

            let invalid = try await Curl.patch(
                api,
                "/api/v1/nodes/n3",
                .merge,
                #"{"spec":{"podCIDR":"10.244.3.0/33"}}"#
            )
            #expect(invalid.code == 422)
            #expect(invalid.json["message"]?.string?.contains("must be a valid CIDR value") == true)
            let twoOfAFamily = try await Curl.patch(
                api,
                "/api/v1/nodes/n3",
                .merge,
                #"{"spec":{"podCIDRs":["10.244.3.0/24","10.244.4.0/24"]}}"#
            )
            #expect(twoOfAFamily.code == 422)
            #expect(
                twoOfAFamily.json["message"]?.string?.contains("may specify no more than one CIDR for each IP family")
                    == true
            )

            let assign = try await Curl.patch(
                api,
                "/api/v1/nodes/n3",
                .strategicMerge,
                #"{"spec":{"podCIDRs":["10.244.3.0/24","fd00:10:244:3::/64"]}}"#
            )
            #expect(assign.code == 200, "\(assign.body)")
            #expect(try api.node("n3").value(at: "spec.podCIDR")?.string == "10.244.3.0/24")
            #expect(try api.node("n3").value(at: "spec.podCIDRs")?.array?.count == 2)
        }
    }

    @Test func staleResourceVersionConflictsAndCreateAlreadyExists() async throws {
        try await TestAPI.with { api in
            let stale = (try api.node("n1").resourceVersion ?? 0)
            _ = try await Curl.patch(api, "/api/v1/nodes/n1", .merge, #"{"metadata":{"labels":{"v":"1"}}}"#)
            let conflict = try await Curl.patch(
                api,
                "/api/v1/nodes/n1",
                .merge,
                #"{"metadata":{"resourceVersion":"\#(stale)","labels":{"v":"2"}}}"#
            )
            #expect(conflict.code == 409)
            #expect(
                conflict.json["message"]?.string
                    == #"Operation cannot be fulfilled on nodes "n1": the object has been modified; please apply your changes to the latest version and try again"#
            )
            #expect(conflict.json["reason"]?.string == "Conflict")
            let current = try api.node("n1").resourceVersion ?? 0
            let fresh = try await Curl.patch(
                api,
                "/api/v1/nodes/n1",
                .merge,
                #"{"metadata":{"resourceVersion":"\#(current)","labels":{"v":"3"}}}"#
            )
            #expect(fresh.code == 200)

            let create = try await Curl.request(
                api,
                "POST",
                "/api/v1/nodes",
                contentType: "application/json",
                body: #"{"apiVersion":"v1","kind":"Node","metadata":{"name":"n9"},"spec":{"podCIDR":"10.244.9.0/24"}}"#
            )
            #expect(create.code == 201)
            #expect(create.json.value(at: "spec.podCIDRs") == ["10.244.9.0/24"])
            let again = try await Curl.request(
                api,
                "POST",
                "/api/v1/nodes",
                contentType: "application/json",
                body: #"{"metadata":{"name":"n9"}}"#
            )
            #expect(again.code == 409)
            #expect(
                again.body
                    == #"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"nodes \"n9\" already exists","reason":"AlreadyExists","details":{"name":"n9","kind":"nodes"},"code":409}"#
            )
            let gone = try await Curl.request(api, "DELETE", "/api/v1/nodes/n9")
            #expect(gone.code == 200)
            let missing = try await Curl.get(api, "/api/v1/nodes/n9")
            #expect(
                missing.body
                    == #"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"nodes \"n9\" not found","reason":"NotFound","details":{"name":"n9","kind":"nodes"},"code":404}"#
            )
        }
    }

    /// PUT replaces the object under the same strategy rules as PATCH; DELETE honours preconditions;
    /// pods are namespaced.
    @Test func updateDeletePreconditionsAndNamespacedPods() async throws {
        try await TestAPI.with { api in
            var node = try api.node("n2")
            node["metadata"]?["labels"] = ["only": "this"]
            node["status"] = ["conditions": []]
            let put = try await Curl.request(
                api,
                "PUT",
                "/api/v1/nodes/n2",
                contentType: "application/json",
                body: node.text
            )
            #expect(put.code == 200)
            #expect(try api.node("n2").value(at: "metadata.labels") == ["only": "this"])
            #expect(try api.node("n2").value(at: "status.conditions")?.array?.count == 1)
            let stale = try await Curl.request(
                api,
                "PUT",
                "/api/v1/nodes/n2/status",
                contentType: "application/json",
                body: node.text
            )
            #expect(stale.code == 409)
            var current = try api.node("n2")
            current["status"] = ["conditions": []]
            current["spec"] = ["podCIDR": "10.244.99.0/24"]
            let status = try await Curl.request(
                api,
                "PUT",
                "/api/v1/nodes/n2/status",
                contentType: "application/json",
                body: current.text
            )
            #expect(status.code == 200)
            #expect(try api.node("n2").value(at: "status.conditions") == [])
            #expect(try api.node("n2").value(at: "spec.podCIDR")?.string == "10.244.2.0/24")

            let wrongUID = try await Curl.request(
                api,
                "DELETE",
                "/api/v1/nodes/n2",
                contentType: "application/json",
                body: #"{"preconditions":{"uid":"not-the-uid"}}"#
            )
            #expect(wrongUID.code == 409)
            #expect(api.server.store.object(.nodes, ObjectKey(name: "n2")) != nil)

            let pod = #"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"other"},"spec":{"nodeName":"n2"}}"#
            let created = try await Curl.request(
                api,
                "POST",
                "/api/v1/namespaces/default/pods",
                contentType: "application/json",
                body: pod
            )
            #expect(created.code == 201)
            #expect(created.json.value(at: "metadata.namespace")?.string == "default")
            #expect(
                try await Curl.get(api, "/api/v1/namespaces/default/pods").json["items"]?.array?.compactMap(\.name) == [
                    "other"
                ]
            )
            #expect(
                try await Curl.get(api, "/api/v1/pods").json["items"]?.array?.compactMap(\.name) == [
                    "other", TestAPI.podName,
                ]
            )
            #expect(try await Curl.get(api, "/api/v1/namespaces/default/pods/\(TestAPI.podName)").code == 404)
            let elsewhere = #"{"metadata":{"name":"x","namespace":"kube-system"}}"#
            let mismatch = try await Curl.request(
                api,
                "POST",
                "/api/v1/namespaces/default/pods",
                contentType: "application/json",
                body: elsewhere
            )
            #expect(mismatch.code == 400)
            #expect(
                mismatch.json["message"]?.string
                    == "the namespace of the provided object does not match the namespace sent on the request"
            )
        }
    }

    /// curl sends `Expect: 100-continue` before a body over 1 KiB; without the interim 100 it would
    /// wait out --expect100-timeout (20 s here) before sending.
    @Test func largeBodiesGetOneHundredContinue() async throws {
        try await TestAPI.with { api in
            let body = #"{"metadata":{"name":"big","annotations":{"a":"\#(String(repeating: "x", count: 4000))"}}}"#
            let started = ContinuousClock.now
            let (status, code) = try await run(
                Curl.path,
                Curl.common(api, token: TestAPI.adminToken) + [
                    "--expect100-timeout", "20", "-H", "Content-Type: application/json", "--data-binary", body,
                    "-o", "/dev/null", "-w", "%{http_code}", api.url + "/api/v1/nodes",
                ]
            )
            #expect(status == 0 && code == "201", "\(code)")
            #expect(ContinuousClock.now - started < .seconds(10))
            #expect(try api.node("big").value(at: "metadata.annotations")?["a"]?.string?.count == 4000)
        }
    }

    @Test func unsupportedPatchTypeAndBadPatches() async throws {
        try await TestAPI.with { api in
            let plain = try await Curl.request(
                api,
                "PATCH",
                "/api/v1/nodes/n1",
                contentType: "application/json",
                body: "{}"
            )
            #expect(plain.code == 415)
            #expect(plain.json["reason"]?.string == "UnsupportedMediaType")
            let test = try await Curl.patch(
                api,
                "/api/v1/nodes/n1",
                .json,
                #"[{"op":"test","path":"/spec/podCIDR","value":"10.0.0.0/8"}]"#
            )
            #expect(test.code == 422)
            let garbage = try await Curl.patch(api, "/api/v1/nodes/n1", .merge, "{not json")
            #expect(garbage.code == 400)
            let version = api.server.store.resourceVersion
            #expect(try await Curl.patch(api, "/api/v1/nodes/nosuch", .merge, "{}").code == 404)
            #expect(api.server.store.resourceVersion == version)
        }
    }

    @Test func listWithFieldSelectorAndExpiredVersion() async throws {
        try await TestAPI.with { api in
            let one = try await Curl.get(api, "/api/v1/nodes?fieldSelector=metadata.name%3Dn2")
            #expect(one.json["items"]?.array?.compactMap(\.name) == ["n2"])
            #expect(one.json["kind"]?.string == "NodeList")
            #expect(one.json.value(at: "metadata.resourceVersion")?.string == String(api.server.store.resourceVersion))
            #expect(one.json["items"]?.array?.first?["kind"] == nil)
            let none = try await Curl.get(api, "/api/v1/nodes?fieldSelector=metadata.name%3Dn7")
            #expect(none.json["items"] == [])
            let labelled = try await Curl.get(api, "/api/v1/nodes?labelSelector=kubernetes.io%2Fhostname%3Dn3")
            #expect(labelled.json["items"]?.array?.compactMap(\.name) == ["n3"])

            let old = api.server.store.resourceVersion
            _ = try await Curl.patch(api, "/api/v1/nodes/n1", .merge, #"{"metadata":{"labels":{"x":"1"}}}"#)
            api.server.compactHistory()
            // client-go's relist from the last version (paged): 410, then it lists from "".
            let expired = try await Curl.get(api, "/api/v1/nodes?limit=500&resourceVersion=\(old)")
            #expect(expired.code == 410)
            #expect(expired.json["reason"]?.string == "Expired")
            #expect(try await Curl.get(api, "/api/v1/nodes?limit=500&resourceVersion=").code == 200)
            #expect(try await Curl.get(api, "/api/v1/nodes?limit=500&resourceVersion=0").code == 200)
            // Without limit the watch cache answers "not older than": the current list.
            #expect(try await Curl.get(api, "/api/v1/nodes?resourceVersion=\(old)").code == 200)
            let future = try await Curl.get(api, "/api/v1/nodes?resourceVersion=\(old + 1000)")
            #expect(future.code == 504)
            #expect(
                future.json["message"]?.string
                    == "Too large resource version: \(old + 1000), current: \(api.server.store.resourceVersion)"
            )
        }
    }
}

/// Waits until the server has `count` open watches (a curl watch has connected).
func waitForWatchers(_ api: TestAPI, _ count: Int, seconds: Double = 10) async throws {
    guard try await api.server.waitForWatches(count, seconds: seconds) else {
        throw HarnessFailure("\(count) watches not open within \(seconds) s")
    }
}
