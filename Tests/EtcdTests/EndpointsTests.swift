import Etcd
import Testing

struct EndpointsTests {
    @Test func flannelsEndpointListParsesInOrderWithBothSchemes() throws {
        let parsed = try parseEtcdEndpoints(" http://127.0.0.1:2379, https://etcd.example:2379/,http://[::1]:4001,")
        #expect(parsed == ["http://127.0.0.1:2379", "https://etcd.example:2379", "http://[::1]:4001"])
    }

    @Test(arguments: [
        "127.0.0.1:2379", "ftp://h:1", "https://h", "http://h:0", "http://h:70000", "http://h:1/v3", "http://:2379",
        "HTTP://h:1",
    ])
    func anythingButSchemeHostAndPortIsRefusedByName(endpoint: String) {
        do throws(EtcdError) {
            _ = try parseEtcdEndpoints("http://127.0.0.1:2379,\(endpoint)")
            Issue.record("\(endpoint) was accepted")
        } catch {
            #expect(error.reason == .invalidEndpoint(endpoint))
            #expect(
                error.description
                    == "etcd endpoint \"\(endpoint)\" is not http://host:port or https://host:port; fix --etcd-endpoints (comma-separated)"
            )
        }
    }

    @Test func anEmptyListIsRefused() {
        #expect(throws: EtcdError.self) { try parseEtcdEndpoints(" , ") }
        #expect(throws: EtcdError.self) { try EtcdClient(endpoints: []) }
    }
}
