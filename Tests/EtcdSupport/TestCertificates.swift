import Foundation

/// A throwaway PKI made with the openssl command line: a CA, etcd's server certificate for 127.0.0.1,
/// a client certificate, and the wrong things tests need (an unrelated CA, an expired client certificate).
public struct TestCertificates: Sendable {
    public static let openssl = "/usr/bin/openssl"
    public static var isAvailable: Bool { FileManager.default.isExecutableFile(atPath: openssl) }

    public let directory: URL
    public var authority: String { path("ca.crt") }
    public var serverCertificate: String { path("server.crt") }
    public var serverKey: String { path("server.key") }
    public var clientCertificate: String { path("client.crt") }
    public var clientKey: String { path("client.key") }
    /// A CA that signed nothing etcd uses.
    public var unrelatedAuthority: String { path("other-ca.crt") }
    /// `client.key`'s certificate from the right CA, whose validity ended a day before it began.
    public var expiredClientCertificate: String { path("expired.crt") }
    /// A client certificate for `client.key` signed by the unrelated CA.
    public var foreignClientCertificate: String { path("foreign.crt") }

    public func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    public static func make() async throws -> TestCertificates {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("weft-pki-\(UUID().uuidString)")
        try FileManager.default.createDirectory(
            at: directory,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700]
        )
        let pki = TestCertificates(directory: directory)
        // etcd's gateway dials etcd's own gRPC port with the server certificate as its client
        // certificate, so under --client-cert-auth the server certificate needs clientAuth too.
        try "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n"
            .write(toFile: pki.path("server.ext"), atomically: true, encoding: .utf8)
        try "extendedKeyUsage=clientAuth\n".write(toFile: pki.path("client.ext"), atomically: true, encoding: .utf8)
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        for (name, subject) in [("ca", "weft-test-ca"), ("other-ca", "unrelated-ca")] {
            try await pki.run(
                ["req", "-x509"] + ec + [
                    "-keyout", "\(name).key", "-out", "\(name).crt", "-days", "2", "-subj", "/CN=\(subject)",
                ]
            )
        }
        for (name, subject) in [("server", "127.0.0.1"), ("client", "weft-client")] {
            try await pki.run(
                ["req"] + ec + ["-keyout", "\(name).key", "-out", "\(name).csr", "-subj", "/CN=\(subject)"]
            )
        }
        func sign(
            _ request: String,
            by authority: String,
            into output: String,
            days: String,
            extensions: String
        ) async throws {
            try await pki.run([
                "x509", "-req", "-in", "\(request).csr", "-CA", "\(authority).crt", "-CAkey", "\(authority).key",
                "-CAcreateserial", "-out", output, "-days", days, "-extfile", extensions,
            ])
        }
        try await sign("server", by: "ca", into: "server.crt", days: "2", extensions: "server.ext")
        try await sign("client", by: "ca", into: "client.crt", days: "2", extensions: "client.ext")
        try await sign("client", by: "ca", into: "expired.crt", days: "-1", extensions: "client.ext")
        try await sign("client", by: "other-ca", into: "foreign.crt", days: "2", extensions: "client.ext")
        return pki
    }

    public func remove() {
        try? FileManager.default.removeItem(at: directory)
    }

    private func run(_ arguments: [String]) async throws {
        let (status, output) = try await runTool(Self.openssl, arguments, directory: directory)
        guard status == 0 else { throw TestEtcdFailure("openssl \(arguments.joined(separator: " ")): \(output)") }
    }
}
