import Foundation
import Synchronization
import TestSupport

/// A throwaway CA and a server certificate for the API server, made with the openssl command line.
/// The subject alternative names are parameters: 127.0.0.1 in-process, a 198.18.x address when the
/// server runs in a network namespace. (EtcdTestSupport's `TestCertificates` fixes 127.0.0.1 and
/// links the etcd client, so it is not reused here.)
public struct ServerCertificates: Sendable {
    public static let openssl = "/usr/bin/openssl"
    public static var isAvailable: Bool { FileManager.default.isExecutableFile(atPath: openssl) }

    public let directory: URL
    public var authority: String { path("ca.crt") }
    public var certificate: String { path("server.crt") }
    public var key: String { path("server.key") }
    /// A CA that signed nothing here: a client trusting it must refuse the server.
    public var unrelatedAuthority: String { path("other-ca.crt") }

    public func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    public static func make(
        addresses: [String] = ["127.0.0.1"],
        names: [String] = ["localhost", "kubernetes.default.svc"]
    ) throws -> ServerCertificates {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "weft-kube-pki-\(UUID().uuidString)"
        )
        try FileManager.default.createDirectory(
            at: directory,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700]
        )
        let pki = ServerCertificates(directory: directory)
        let alternatives = (addresses.map { "IP:\($0)" } + names.map { "DNS:\($0)" }).joined(separator: ",")
        try "subjectAltName=\(alternatives)\nextendedKeyUsage=serverAuth\n".write(
            toFile: pki.path("server.ext"),
            atomically: true,
            encoding: .utf8
        )
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        for (name, subject) in [("ca", "weft-kube-test-ca"), ("other-ca", "unrelated-ca")] {
            try pki.run(
                ["req", "-x509"] + ec + [
                    "-keyout", "\(name).key", "-out", "\(name).crt", "-days", "2", "-subj", "/CN=\(subject)",
                ]
            )
        }
        try pki.run(["req"] + ec + ["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=kube-apiserver"])
        try pki.run([
            "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.crt", "-days", "2", "-extfile", "server.ext",
        ])
        return pki
    }

    public func remove() {
        try? FileManager.default.removeItem(at: directory)
    }

    private func run(_ arguments: [String]) throws {
        let result = try runCommand([Self.openssl] + arguments, directory: directory.path, errors: .merged)
        guard result.status == 0 else {
            throw CertificateFailure(
                description: "openssl \(arguments.joined(separator: " ")) exited \(result.status): \(result.output)"
            )
        }
    }
}

public struct CertificateFailure: Error, CustomStringConvertible {
    public let description: String
}

extension ServerCertificates {
    /// One CA and server certificate (SAN 127.0.0.1) for the whole test process, removed when it
    /// exits. openssl runs synchronously: a run per test held the concurrency pool's threads long
    /// enough to time out other suites' clients in the full run.
    public static let shared: Result<ServerCertificates, any Error> = Result {
        let pki = try ServerCertificates.make()
        sharedDirectory.withLock { $0 = pki.directory.path }
        atexit {
            if let path = sharedDirectory.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: path) }
        }
        return pki
    }

    private static let sharedDirectory = Mutex<String?>(nil)
}
