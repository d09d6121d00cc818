import Yams

/// The parts of a kubeconfig (clientcmd's v1 Config) weftd reads. Unknown keys are ignored, as
/// client-go ignores them; `exec` and `auth-provider` are read only to refuse them by name.
struct Kubeconfig: Decodable {
    var clusters: [Named<Cluster>]?
    var users: [Named<User>]?
    var contexts: [Named<Context>]?
    var currentContext: String?

    enum CodingKeys: String, CodingKey {
        case clusters, users, contexts
        case currentContext = "current-context"
    }

    /// The member that holds an entry's value beside its name: "cluster", "user" or "context".
    protocol Entry: Decodable {
        static var member: String { get }
    }

    struct Cluster: Entry {
        static let member = "cluster"
        var server: String?
        var certificateAuthority: String?
        var certificateAuthorityData: String?
        var insecureSkipTLSVerify: Bool?
        var tlsServerName: String?
        var proxyURL: String?

        enum CodingKeys: String, CodingKey {
            case server
            case certificateAuthority = "certificate-authority"
            case certificateAuthorityData = "certificate-authority-data"
            case insecureSkipTLSVerify = "insecure-skip-tls-verify"
            case tlsServerName = "tls-server-name"
            case proxyURL = "proxy-url"
        }
    }

    struct User: Entry {
        static let member = "user"
        var token: String?
        var tokenFile: String?
        var clientCertificate: String?
        var clientCertificateData: String?
        var clientKey: String?
        var clientKeyData: String?
        var username: String?
        var password: String?
        var exec: Present?
        var authProvider: Present?

        enum CodingKeys: String, CodingKey {
            case token, tokenFile, username, password, exec
            case clientCertificate = "client-certificate"
            case clientCertificateData = "client-certificate-data"
            case clientKey = "client-key"
            case clientKeyData = "client-key-data"
            case authProvider = "auth-provider"
        }
    }

    struct Context: Entry {
        static let member = "context"
        var cluster: String?
        var user: String?
        var namespace: String?
    }

    /// clientcmd's NamedCluster / NamedAuthInfo / NamedContext: {name: ..., cluster|user|context: {...}}.
    struct Named<Value: Entry>: Decodable {
        var name: String
        var value: Value?

        private struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: Key.self)
            name = try container.decodeIfPresent(String.self, forKey: Key(stringValue: "name")) ?? ""
            value = try container.decodeIfPresent(Value.self, forKey: Key(stringValue: Value.member))
        }
    }

    /// A key whose content does not matter, only that it is there.
    struct Present: Decodable {
        init(from decoder: any Decoder) throws {}
    }

    static func parse(_ bytes: [UInt8], path: String) throws(KubeError) -> Kubeconfig {
        let text = String(decoding: bytes, as: UTF8.self)
        let problem = "error loading config file \"\(path)\""
        let fix = "fix the YAML in --kubeconfig-file (compare with `kubectl config view --raw`)"
        do {
            return try YAMLDecoder().decode(Kubeconfig.self, from: text)
        } catch let error as DecodingError {
            throw KubeError(.clientConfig, "\(problem): \(error.summary)", fix: fix)
        } catch {
            throw KubeError(.clientConfig, "\(problem): \(error)", fix: fix)
        }
    }
}
