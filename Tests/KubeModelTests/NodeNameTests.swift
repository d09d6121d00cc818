import Testing

@testable import KubeModel

@Suite struct NodeNames {
    @Test func nodeNameWinsOverThePodVariables() throws {
        let source = try NodeNameSource.from(environment: [
            "NODE_NAME": "worker-1", "POD_NAME": "p", "POD_NAMESPACE": "n",
        ])
        #expect(source == .nodeName("worker-1"))
        #expect(source.podRequest == nil)
    }

    @Test func podVariablesGiveThePodToGet() throws {
        let source = try NodeNameSource.from(environment: [
            "POD_NAME": "kube-flannel-ds-abcde", "POD_NAMESPACE": "kube-flannel",
        ])
        #expect(source.podRequest?.path == "/api/v1/namespaces/kube-flannel/pods/kube-flannel-ds-abcde")
        #expect(source.podRequest?.rbacRule == "pods get")
        #expect(try source.nodeName(fromPod: Fixture.bytes("pod.json")) == "worker-1")
    }

    @Test(arguments: [
        [String: String](), ["POD_NAME": "p"], ["POD_NAMESPACE": "n"],
        ["NODE_NAME": "", "POD_NAME": "", "POD_NAMESPACE": "n"],
    ])
    func neitherSetGivesFlannelsText(environment: [String: String]) {
        let error = #expect(throws: KubeError.self) { try NodeNameSource.from(environment: environment) }
        #expect(error?.problem == "env variables POD_NAME and POD_NAMESPACE must be set")
        #expect(error?.fix.contains("NODE_NAME") == true)
    }

    @Test func unscheduledPodGivesFlannelsText() throws {
        let source = NodeNameSource.pod(namespace: "kube-flannel", name: "kube-flannel-ds-zzzzz")
        let error = #expect(throws: KubeError.self) { try source.nodeName(fromPod: Fixture.bytes("pod-pending.json")) }
        #expect(error?.problem == "node name not present in pod spec 'kube-flannel/kube-flannel-ds-zzzzz'")
    }

    @Test func failedLookupIsWrappedInFlannelsWords() {
        let source = NodeNameSource.pod(namespace: "kube-flannel", name: "p")
        let wrapped = source.lookupFailed(KubeError(.unauthorized, "Unauthorized", fix: "fix it"))
        #expect(wrapped.description == "error retrieving pod spec for 'kube-flannel/p': Unauthorized; fix it")
        #expect(wrapped.kind == .unauthorized)
    }
}
