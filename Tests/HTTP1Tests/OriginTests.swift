import HTTP1
import Testing

struct OriginTests {
    @Test func urlsParseIntoSchemeHostAndPort() {
        #expect(Origin("http://127.0.0.1:2379") == Origin(isTLS: false, host: "127.0.0.1", port: 2379))
        #expect(Origin("https://etcd.example:443") == Origin(isTLS: true, host: "etcd.example", port: 443))
        #expect(Origin("https://[::1]:6443") == Origin(isTLS: true, host: "::1", port: 6443))
        #expect(
            Origin("https://kubernetes.default.svc") == Origin(isTLS: true, host: "kubernetes.default.svc", port: 443)
        )
        #expect(Origin("https://[::1]:6443")?.description == "https://[::1]:6443")
        for bad in [
            "ftp://a:1", "http://", "http://a:1/path", "http://a:0", "http://a:99999", "http://a:x", "http://[::1",
        ] {
            #expect(Origin(bad) == nil, "\(bad)")
        }
    }
}
