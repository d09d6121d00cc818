import Foundation
import KubeTestServer

/// Raw HTTP against the server with curl, for what kubectl cannot show (exact bodies, headers,
/// stream framing). curl checks the TLS certificate against the test CA and the chunked framing.
struct HTTPReply {
    let code: Int
    let headers: [String: String]
    let body: String
    var json: JSONValue { (try? JSONValue.parse(body)) ?? .null }
}

enum Curl {
    static let path = "/usr/bin/curl"
    static var isAvailable: Bool { FileManager.default.isExecutableFile(atPath: path) }

    static func common(_ api: TestAPI, token: String?) -> [String] {
        ["-sS", "--cacert", api.certificates.authority] + (token.map { ["-H", "Authorization: Bearer \($0)"] } ?? [])
    }

    static func request(
        _ api: TestAPI,
        _ method: String,
        _ target: String,
        token: String? = TestAPI.adminToken,
        contentType: String? = nil,
        body: String? = nil,
        compressed: Bool = false
    ) async throws -> HTTPReply {
        let stem = api.directory.appendingPathComponent("curl-\(UUID().uuidString)").path
        defer {
            try? FileManager.default.removeItem(atPath: stem + ".body")
            try? FileManager.default.removeItem(atPath: stem + ".headers")
        }
        var arguments =
            common(api, token: token) + [
                "-X", method, "-o", stem + ".body", "-D", stem + ".headers", "-w", "%{http_code}",
            ]
        if let contentType { arguments += ["-H", "Content-Type: \(contentType)"] }
        if let body { arguments += ["--data-binary", body] }
        // Asks for gzip (among others) and decodes it; `headers` still shows the Content-Encoding.
        if compressed { arguments.append("--compressed") }
        arguments.append(api.url + target)
        let (status, output) = try await run(path, arguments)
        guard status == 0, let code = Int(output.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw HarnessFailure("curl \(method) \(target) exited \(status): \(output)")
        }
        var headers: [String: String] = [:]
        for line in ((try? String(contentsOfFile: stem + ".headers", encoding: .utf8)) ?? "").split(separator: "\r\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespaces
            )
        }
        return HTTPReply(
            code: code,
            headers: headers,
            body: (try? String(contentsOfFile: stem + ".body", encoding: .utf8)) ?? ""
        )
    }

    static func get(_ api: TestAPI, _ target: String, token: String? = TestAPI.adminToken) async throws -> HTTPReply {
        try await request(api, "GET", target, token: token)
    }

    static func patch(
        _ api: TestAPI,
        _ target: String,
        _ type: PatchType,
        _ body: String,
        token: String = TestAPI.adminToken
    ) async throws -> HTTPReply {
        try await request(api, "PATCH", target, token: token, contentType: type.rawValue, body: body)
    }

    /// A watch held open by curl; its output is the stream's lines. curl exits 0 only when the
    /// server ended the chunked body properly.
    static func watch(_ api: TestAPI, _ target: String, token: String = TestAPI.adminToken) throws -> Background {
        try Background(path, common(api, token: token) + ["-N", api.url + target])
    }
}

extension Background {
    /// The watch events seen so far.
    var events: [JSONValue] { jsonDocuments(output) }

    func waitForEvents(
        _ what: String,
        seconds: Double = 20,
        _ condition: @escaping ([JSONValue]) -> Bool
    ) async throws -> [JSONValue] {
        let text = try await waitFor(what, seconds: seconds) { condition(jsonDocuments($0)) }
        return jsonDocuments(text)
    }
}

extension JSONValue {
    var type: String? { self["type"]?.string }
    var name: String? { value(at: "object.metadata.name")?.string ?? value(at: "metadata.name")?.string }
    var resourceVersion: Int? {
        (value(at: "object.metadata.resourceVersion") ?? value(at: "metadata.resourceVersion"))?.string.flatMap {
            Int($0)
        }
    }
}
