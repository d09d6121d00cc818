import Foundation
import NIOSSL

extension EtcdClient.Configuration {
    /// Whether any of flanneld's --etcd-cafile/--etcd-certfile/--etcd-keyfile was given.
    var hasTLSFiles: Bool { caFile != nil || certificateFile != nil || keyFile != nil }
}

/// The client side of TLS for https endpoints: `caFile` (or the system trust store) to check etcd's
/// certificate, `certificateFile` + `keyFile` to present to an etcd started with --client-cert-auth.
/// Every file is read and checked here, so a bad path or an expired certificate stops startup with one
/// line instead of failing each request later.
func makeTLSConfiguration(
    _ configuration: EtcdClient.Configuration,
    now: Date = Date()
) throws(EtcdError) -> TLSConfiguration {
    func problem(_ detail: String) -> EtcdError {
        EtcdError(operation: "configure", endpoint: "TLS", reason: .tls(detail))
    }
    var tls = TLSConfiguration.makeClientConfiguration()
    if let caFile = configuration.caFile {
        let authorities: [NIOSSLCertificate]
        do {
            authorities = try NIOSSLCertificate.fromPEMFile(caFile)
        } catch {
            throw problem(
                "cannot read --etcd-cafile \(caFile) as PEM certificates (\(describe(error))); give the CA bundle that signed etcd's server certificate"
            )
        }
        guard !authorities.isEmpty else {
            throw problem(
                "--etcd-cafile \(caFile) holds no PEM certificate; give the CA bundle that signed etcd's server certificate"
            )
        }
        tls.trustRoots = .certificates(authorities)
    }
    switch (configuration.certificateFile, configuration.keyFile) {
    case (nil, nil):
        break
    case (let certificateFile?, let keyFile?):
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificateFile)
        } catch {
            throw problem("cannot read --etcd-certfile \(certificateFile) as PEM certificates (\(describe(error)))")
        }
        guard let leaf = chain.first else {
            throw problem("--etcd-certfile \(certificateFile) holds no PEM certificate")
        }
        // etcd would refuse it at the handshake with a bare "bad certificate" alert; say why here.
        let expiry = Date(timeIntervalSince1970: TimeInterval(leaf.notValidAfter))
        guard expiry > now else {
            throw problem("the client certificate in --etcd-certfile \(certificateFile) expired at \(expiry); renew it")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
        } catch {
            throw problem(
                "cannot read --etcd-keyfile \(keyFile) as a PEM private key (\(describe(error))); it must be unencrypted"
            )
        }
        tls.certificateChain = chain.map { .certificate($0) }
        tls.privateKey = .privateKey(key)
    case (let certificateFile?, nil):
        throw problem("--etcd-certfile \(certificateFile) was given without --etcd-keyfile; give both")
    case (nil, let keyFile?):
        throw problem("--etcd-keyfile \(keyFile) was given without --etcd-certfile; give both")
    }
    // Building a context checks what the files alone cannot, such as a key that does not match the certificate.
    do {
        _ = try NIOSSLContext(configuration: tls)
    } catch {
        throw problem(
            "the TLS files do not fit together (\(describe(error))); check that --etcd-keyfile is the key of --etcd-certfile"
        )
    }
    return tls
}

/// A handshake or TLS-record failure as one line: what went wrong and which flag fixes it.
func describeTLSFailure(_ error: any Error, endpoint: String) -> String {
    let text = boringSSLReasons(error) ?? describe(error)
    let upper = text.uppercased()
    if upper.contains("CERTIFICATE_VERIFY_FAILED") || upper.contains("UNABLE_TO_GET_ISSUER")
        || upper.contains("SELF_SIGNED")
    {
        return
            "etcd's server certificate failed verification (\(text)): not signed by a CA in --etcd-cafile (or the system trust store when none is given), or expired"
    }
    if String(describing: error).contains("failedToValidateHostname") || upper.contains("HOSTNAME") {
        return
            "etcd's server certificate does not name \(endpoint) (\(text)); use a host or IP from its subjectAltName in --etcd-endpoints"
    }
    if upper.contains("CERTIFICATE_REQUIRED") || upper.contains("BAD_CERTIFICATE")
        || upper.contains("CERTIFICATE_EXPIRED")
        || upper.contains("UNKNOWN_CA") || upper.contains("CERTIFICATE_UNKNOWN")
        || upper.contains("UNSUPPORTED_CERTIFICATE")
    {
        return
            "etcd refused the client certificate (\(text)); give --etcd-certfile/--etcd-keyfile signed by a CA in etcd's --trusted-ca-file"
    }
    if upper.contains("WRONG_VERSION_NUMBER") || upper.contains("PACKET_LENGTH_TOO_LONG")
        || upper.contains("HTTP_REQUEST")
    {
        return "\(endpoint) does not speak TLS (\(text)); use http:// for it or start etcd with https client URLs"
    }
    return
        "the TLS session failed (\(text)); check --etcd-cafile/--etcd-certfile/--etcd-keyfile against etcd's certificates"
}

/// BoringSSL's reason codes from an error stack ("CERTIFICATE_VERIFY_FAILED"), without the
/// numbers and source paths around them; nil if the error carries none.
private func boringSSLReasons(_ error: any Error) -> String? {
    let text = String(describing: error)
    var reasons: [String] = []
    var rest = text[...]
    while let marker = rest.range(of: "OPENSSL_internal:") {
        let reason = rest[marker.upperBound...].prefix { $0.isUppercase || $0.isNumber || $0 == "_" }
        if !reason.isEmpty, !reasons.contains(String(reason)) { reasons.append(String(reason)) }
        rest = rest[marker.upperBound...]
    }
    return reasons.isEmpty ? nil : reasons.joined(separator: ", ")
}

/// NIOSSL's errors print as enum cases; one line of that when BoringSSL gave no reason code.
private func describe(_ error: any Error) -> String {
    String(describing: error).replacingOccurrences(of: "\n", with: " ")
}
