import Testing

@testable import KubeModel

@Suite struct Requests {
    @Test func reflectorPathsAsClientGoSendsThem() {
        #expect(APIRequest.listNodes(resourceVersion: "0").path == "/api/v1/nodes?limit=500&resourceVersion=0")
        #expect(APIRequest.listNodes(resourceVersion: "").path == "/api/v1/nodes?limit=500")
        #expect(
            APIRequest.watchNodes(resourceVersion: "51020", timeoutSeconds: 412).path
                == "/api/v1/nodes?allowWatchBookmarks=true&resourceVersion=51020&timeoutSeconds=412&watch=true"
        )
        #expect(APIRequest.getNode("worker-1").path == "/api/v1/nodes/worker-1")
        #expect(APIRequest.getNode("worker-1", resourceVersion: "0").path == "/api/v1/nodes/worker-1?resourceVersion=0")
        let patch = APIRequest.patchNodeStatus("worker-1")
        #expect(patch.path == "/api/v1/nodes/worker-1/status")
        #expect(patch.method == "PATCH")
        #expect(patch.contentType == "application/strategic-merge-patch+json")
        #expect(patch.rbacRule == "nodes/status patch")
        #expect(APIRequest.watchNodes(resourceVersion: "1", timeoutSeconds: 300).rbacRule == "nodes watch")
        #expect(APIRequest.getNode("a/b").path == "/api/v1/nodes/a%2Fb")
    }

    @Test func watchTimeoutIsInClientGosRange() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<1000 {
            #expect((300..<600).contains(APIRequest.watchTimeoutSeconds(using: &generator)))
        }
    }
}
