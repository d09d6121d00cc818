import Etcd
import EtcdTestSupport
import Foundation
import Testing

@Suite(.enabled(if: TestEtcd.isAvailable && TestCertificates.isAvailable, "needs /usr/bin/etcd and /usr/bin/openssl"))
struct TLSTests {
    @Test func mutualTLSCarriesReadsWritesAndWatches() async throws {
        let pki = try await TestCertificates.make()
        defer { pki.remove() }
        try await TestEtcd.with(tls: pki) { etcd in
            #expect(etcd.endpoint.hasPrefix("https://"))
            let client = try etcd.client()
            defer { Task { try? await client.shutdown() } }
            let revision = try await client.put("/tls/a", "secret")
            #expect(try await etcd.etcdctl("get", "/tls/a", "--print-value-only") == "secret\n")
            let watch = try await client.watch(prefix: "/tls/", fromRevision: revision)
            _ = try await etcd.etcdctl("put", "/tls/b", "2")
            let events = try await within(seconds: 20) { try await collect(watch, events: 2).flatMap { $0 } }
            #expect(events.map(\.kv.key) == ["/tls/a", "/tls/b"])
            watch.cancel()
        }
    }

    @Test func eachWrongCredentialFailsClosedWithItsOwnLine() async throws {
        let pki = try await TestCertificates.make()
        defer { pki.remove() }
        try await TestEtcd.with(tls: pki) { etcd in
            let cases: [(String, (inout EtcdClient.Configuration) -> Void, String)] = [
                (
                    "unrelated CA", { $0.caFile = pki.unrelatedAuthority },
                    "etcd's server certificate failed verification (CERTIFICATE_VERIFY_FAILED): not signed by a CA in --etcd-cafile"
                ),
                (
                    "system trust store", { $0 = EtcdClient.Configuration() },
                    "etcd's server certificate failed verification (CERTIFICATE_VERIFY_FAILED): not signed by a CA in --etcd-cafile"
                ),
                (
                    "no client certificate",
                    {
                        $0.certificateFile = nil
                        $0.keyFile = nil
                    },
                    "etcd refused the client certificate (SSLV3_ALERT_BAD_CERTIFICATE); give --etcd-certfile/--etcd-keyfile"
                ),
                (
                    "client certificate from another CA", { $0.certificateFile = pki.foreignClientCertificate },
                    "etcd refused the client certificate (SSLV3_ALERT_BAD_CERTIFICATE); give --etcd-certfile/--etcd-keyfile"
                ),
            ]
            for (name, configure, expected) in cases {
                // Timeouts far beyond the bound below: a TLS failure mistaken for a silent peer
                // would wait them out, so the generous bound still tells the two apart.
                let client = try etcd.client {
                    configure(&$0)
                    $0.connectTimeout = .seconds(120)
                    $0.requestTimeout = .seconds(120)
                }
                defer { Task { try? await client.shutdown() } }
                let started = ContinuousClock.now
                do throws(EtcdError) {
                    _ = try await client.get("/tls/a")
                    Issue.record("\(name): the read succeeded")
                } catch {
                    guard case .tls(let detail) = error.reason else {
                        Issue.record("\(name): expected a TLS failure, got \(error)")
                        continue
                    }
                    #expect(detail.hasPrefix(expected), "\(name): \(detail)")
                    #expect(!error.description.contains("\n"))
                    #expect(error.endpoint == etcd.endpoint)
                }
                // Three handshakes and at most 300 ms of backoff; ten times the old 3 s bound for load.
                #expect(ContinuousClock.now - started < .seconds(30), "\(name)")
            }
            // etcd saw only TLS handshakes: a plaintext request would have logged this.
            #expect(!etcd.log.contains("does not look like a TLS handshake"))
            #expect(etcd.log.contains("client didn't provide a certificate"))
        }
    }

    @Test func configurationMistakesStopTheClientBeforeAnyConnection() async throws {
        let pki = try await TestCertificates.make()
        defer { pki.remove() }
        func failure(
            _ endpoints: [String] = ["https://127.0.0.1:2379"],
            _ configure: (inout EtcdClient.Configuration) -> Void
        ) -> EtcdError? {
            var configuration = EtcdClient.Configuration()
            configuration.caFile = pki.authority
            configuration.certificateFile = pki.clientCertificate
            configuration.keyFile = pki.clientKey
            configure(&configuration)
            do throws(EtcdError) {
                let client = try EtcdClient(endpoints: endpoints, configuration: configuration)
                Task { try? await client.shutdown() }
                return nil
            } catch {
                return error
            }
        }
        // The good files work: every failure below is the one mistake made.
        #expect(failure { _ in } == nil)

        let plain = failure(["https://127.0.0.1:2379", "http://127.0.0.1:2380"]) { _ in }
        #expect(plain?.endpoint == "http://127.0.0.1:2380")
        #expect(plain?.description.contains("use https:// in --etcd-endpoints") == true)
        // Any one TLS file is enough to refuse plain http.
        #expect(
            failure(["http://127.0.0.1:2379"]) {
                $0.certificateFile = nil
                $0.keyFile = nil
            }?.reason
                == .tls(
                    "the endpoint is plain http but --etcd-cafile/--etcd-certfile/--etcd-keyfile were given; use https:// in --etcd-endpoints"
                )
        )

        let expectations: [(String, (inout EtcdClient.Configuration) -> Void, String)] = [
            (
                "expired", { $0.certificateFile = pki.expiredClientCertificate },
                "the client certificate in --etcd-certfile \(pki.expiredClientCertificate) expired at"
            ),
            (
                "missing CA", { $0.caFile = pki.path("absent.crt") },
                "cannot read --etcd-cafile \(pki.path("absent.crt"))"
            ),
            (
                "CA not PEM", { $0.caFile = pki.path("client.ext") },
                "cannot read --etcd-cafile \(pki.path("client.ext")) as PEM certificates"
            ),
            (
                "missing certificate", { $0.certificateFile = pki.path("absent.crt") },
                "cannot read --etcd-certfile \(pki.path("absent.crt"))"
            ),
            (
                "missing key", { $0.keyFile = pki.path("absent.key") },
                "cannot read --etcd-keyfile \(pki.path("absent.key"))"
            ),
            (
                "certificate alone", { $0.keyFile = nil },
                "--etcd-certfile \(pki.clientCertificate) was given without --etcd-keyfile"
            ),
            (
                "key alone", { $0.certificateFile = nil },
                "--etcd-keyfile \(pki.clientKey) was given without --etcd-certfile"
            ),
            ("key of another certificate", { $0.keyFile = pki.serverKey }, "the TLS files do not fit together"),
        ]
        for (name, configure, expected) in expectations {
            let error = failure(["https://127.0.0.1:2379"], configure)
            guard case .tls(let detail)? = error?.reason else {
                Issue.record("\(name): expected a TLS configuration error, got \(String(describing: error))")
                continue
            }
            #expect(detail.hasPrefix(expected), "\(name): \(detail)")
            #expect(error?.description.contains("\n") == false)
        }
    }
}
