import Foundation

/// Decodes API server bodies into the models, with one-line errors that say what was expected.
public enum APIDecoding {
    public static func decode<T: Decodable>(
        _ type: T.Type,
        from bytes: some Collection<UInt8>,
        what: String
    ) throws(KubeError) -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(bytes))
        } catch let error as DecodingError {
            throw KubeError(
                .decoding,
                "\(what) is not what the Kubernetes API returns: \(error.summary)",
                fix:
                    "check that the server is a Kubernetes API server (the kubeconfig's server or --kube-api-url) and nothing in between rewrites its answers"
            )
        } catch {
            throw KubeError(.decoding, "\(what) could not be decoded: \(error)", fix: "check the server address")
        }
    }

    public static func node(_ bytes: some Collection<UInt8>) throws(KubeError) -> Node {
        try decode(Node.self, from: bytes, what: "the node")
    }

    public static func nodeList(_ bytes: some Collection<UInt8>) throws(KubeError) -> NodeList {
        try decode(NodeList.self, from: bytes, what: "the node list")
    }

    public static func pod(_ bytes: some Collection<UInt8>) throws(KubeError) -> Pod {
        try decode(Pod.self, from: bytes, what: "the pod")
    }

    /// An error body, or nil when it is not a Status (a proxy's HTML page, an empty body).
    public static func status(_ bytes: some Collection<UInt8>) -> Status? {
        guard let status = try? JSONDecoder().decode(Status.self, from: Data(bytes)), status.kind == "Status" else {
            return nil
        }
        return status
    }
}
