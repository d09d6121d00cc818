import Foundation
import NIOConcurrencyHelpers

/// The test controls, reachable in-process, on the admin-only `/weft-test/` path, and on the control socket.
protocol TestControls: AnyObject, Sendable {
    func requestDown(restoreAfter seconds: Double?)
    func requestUp()
}

/// Routing, authentication, the manifest's RBAC, throttling and the request log; the store does the rest.
final class KubeAPI: @unchecked Sendable {
    let store: ObjectStore
    let tokens: TokenFile
    let roles: [String: Role]
    let anonymous: Bool
    weak var controls: (any TestControls)?
    private let lock = NIOLock()
    private var throttled = 0
    private var retryAfter = 1
    private var log: [RecordedRequest] = []

    init(store: ObjectStore, tokens: TokenFile, roles: [String: Role], anonymous: Bool) {
        self.store = store
        self.tokens = tokens
        self.roles = roles
        self.anonymous = anonymous
    }

    var requests: [RecordedRequest] { lock.withLock { log } }
    func clearRequests() { lock.withLock { log.removeAll() } }

    func throttle(next count: Int, retryAfterSeconds: Int) {
        lock.withLock {
            throttled = count
            retryAfter = retryAfterSeconds
        }
    }

    func handle(_ request: APIRequest) -> APIReply {
        if request.path == "/weft-test" || request.path.hasPrefix("/weft-test/") {
            return handleControl(request)
        }
        let user = authenticate(request)
        let reply = answer(request, user: user)
        let code: Int
        switch reply {
        case .full(let status, _, _): code = status
        case .watch: code = 200
        }
        lock.withLock {
            log.append(
                RecordedRequest(
                    sequence: log.count + 1,
                    method: request.method,
                    path: request.path,
                    query: request.rawQuery,
                    contentType: request.contentType,
                    body: String(decoding: request.body, as: UTF8.self),
                    user: user?.name,
                    code: code
                )
            )
        }
        return reply
    }

    /// nil (401) for credentials that are not a known token; no credentials at all make the request
    /// `system:anonymous` when anonymous requests are allowed, as kube-apiserver's default is.
    private func authenticate(_ request: APIRequest) -> User? {
        guard let header = request.authorization, !header.isEmpty else { return anonymous ? .anonymous : nil }
        guard header.lowercased().hasPrefix("bearer ") else { return nil }
        return tokens.user(for: String(header.dropFirst("bearer ".count)).trimmingWhitespace())
    }

    private func answer(_ request: APIRequest, user: User?) -> APIReply {
        guard let user else { return .status(.unauthorized) }
        let wait: Int? = lock.withLock {
            guard throttled > 0 else { return nil }
            throttled -= 1
            return retryAfter
        }
        if let wait { return .status(.tooManyRequests(retryAfterSeconds: wait)) }

        let segments = request.path.split(separator: "/").map(String.init)
        // system:public-info-viewer lets anyone read these; system:discovery, any authenticated user.
        let publicPath = [["version"], ["healthz"], ["livez"], ["readyz"]].contains(segments)
        let resourcePath = segments.count >= 3 && segments[0] == "api" && segments[1] == "v1"
        if user.isAnonymous, !publicPath, !resourcePath {
            return .status(.forbiddenPath(user: user.name, verb: request.method.lowercased(), path: request.path))
        }
        switch segments {
        case ["api"]:
            return .json(200, Discovery.apiVersions(serverAddress: request.host ?? "127.0.0.1:6443"))
        case ["apis"]: return .json(200, Discovery.groups)
        case ["api", "v1"]: return .json(200, Discovery.coreResources)
        case ["version"]: return .json(200, Discovery.version)
        case ["healthz"], ["livez"], ["readyz"]:
            return .full(code: 200, headers: [("Content-Type", "text/plain")], body: Array("ok".utf8))
        default: break
        }
        guard segments.count >= 3, segments[0] == "api", segments[1] == "v1" else { return .status(.pathNotFound) }
        var rest = Array(segments.dropFirst(2))
        var namespace: String?
        if rest.count >= 3, rest[0] == "namespaces" {
            namespace = rest[1]
            rest.removeFirst(2)
        }
        guard let resource = Resource.named(rest[0]), resource.namespaced || namespace == nil, rest.count <= 3,
            rest.count < 3 || rest[2] == "status"
        else { return .status(.pathNotFound) }
        let name = rest.count > 1 ? rest[1] : nil
        let subresource = rest.count > 2 ? rest[2] : nil
        let watch = ["true", "1"].contains(request.query["watch"] ?? "")

        let verb: String
        switch (request.method, name) {
        case ("GET", nil): verb = watch ? "watch" : "list"
        case ("GET", _): verb = "get"
        case ("POST", nil): verb = "create"
        case ("PATCH", _?): verb = "patch"
        case ("PUT", _?): verb = "update"
        case ("DELETE", _?) where subresource == nil: verb = "delete"
        default: return .status(.methodNotAllowed(request.method))
        }
        if !user.isAdmin, roles[user.name]?.allows(verb, resource.name, subresource: subresource) != true {
            return .status(
                .forbidden(
                    user: user.name,
                    verb: verb,
                    resource: resource.name,
                    subresource: subresource,
                    namespace: namespace,
                    name: name
                )
            )
        }
        do {
            return try perform(verb, request, resource, namespace: namespace, name: name, status: subresource != nil)
        } catch {
            return .status(error)
        }
    }

    private func perform(
        _ verb: String,
        _ request: APIRequest,
        _ resource: Resource,
        namespace: String?,
        name: String?,
        status: Bool
    ) throws(StatusError) -> APIReply {
        let key = ObjectKey(namespace: resource.namespaced ? namespace : nil, name: name ?? "")
        switch verb {
        case "list", "watch":
            let selector = try Selector(
                fieldSelector: request.query["fieldSelector"],
                labelSelector: request.query["labelSelector"]
            )
            let from = request.query["resourceVersion"]
            if verb == "watch" {
                return .watch(
                    WatchPlan(
                        resource: resource,
                        namespace: namespace,
                        selector: selector,
                        from: from,
                        bookmarks: request.query["allowWatchBookmarks"] == "true",
                        timeoutSeconds: request.query["timeoutSeconds"].flatMap { Int($0) }
                    )
                )
            }
            // An exact read of an old version goes to etcd in kube-apiserver: resourceVersionMatch=Exact,
            // or a paged list (limit) from a version other than 0.
            let exact = request.query["resourceVersionMatch"] == "Exact" || request.query["limit"] != nil
            return .json(
                200,
                try store.list(resource, namespace: namespace, selector: selector, resourceVersion: from, exact: exact)
            )
        case "get":
            return .json(200, try store.get(resource, key))
        case "create":
            return .json(201, try store.create(resource, try body(request), namespace: namespace))
        case "patch":
            let mediaType =
                (request.contentType ?? "").split(separator: ";").first.map {
                    String($0).trimmingWhitespace().lowercased()
                } ?? ""
            guard let type = PatchType(rawValue: mediaType) else { throw .unsupportedMediaType }
            return .json(200, try store.patch(resource, key, status: status, type: type, try body(request)))
        case "update":
            let replacement = try body(request)
            return .json(200, try store.update(resource, key, statusSubresource: status) { _ in replacement })
        case "delete":
            let options = request.body.isEmpty ? nil : try body(request)
            return .json(200, try store.delete(resource, key, preconditions: options?["preconditions"]))
        default:
            throw .methodNotAllowed(request.method)
        }
    }

    private func body(_ request: APIRequest) throws(StatusError) -> JSONValue {
        do {
            return try JSONValue.parse(request.body)
        } catch {
            throw .badRequest("\(error)")
        }
    }

    // MARK: Controls

    private func handleControl(_ request: APIRequest) -> APIReply {
        if !request.control {
            guard let user = authenticate(request), !user.isAnonymous else { return .status(.unauthorized) }
            guard user.isAdmin else {
                return .status(.forbiddenPath(user: user.name, verb: request.method.lowercased(), path: request.path))
            }
        }
        let done = APIReply.json(200, ["ok": true])
        switch (request.method, request.path) {
        case ("POST", "/weft-test/compact"):
            store.compact()
            return done
        case ("POST", "/weft-test/close-watches"):
            store.closeWatches()
            return done
        case ("POST", "/weft-test/throttle"):
            throttle(
                next: Int(request.query["count"] ?? "1") ?? 1,
                retryAfterSeconds: Int(request.query["retryAfter"] ?? "1") ?? 1
            )
            return done
        case ("POST", "/weft-test/down"):
            controls?.requestDown(restoreAfter: request.query["seconds"].flatMap(Double.init))
            return done
        case ("POST", "/weft-test/up"):
            controls?.requestUp()
            return done
        case ("GET", "/weft-test/requests"):
            return .json(200, .array(requests.map(\.json)))
        case ("DELETE", "/weft-test/requests"):
            clearRequests()
            return done
        case ("GET", "/weft-test/state"):
            return .json(
                200,
                [
                    "resourceVersion": .number(String(store.resourceVersion)),
                    "oldestWatchableVersion": .number(String(store.oldestWatchableVersion)),
                    "openWatches": .number(String(store.openWatches)), "nodes": .number(String(store.count(.nodes))),
                    "pods": .number(String(store.count(.pods))),
                ]
            )
        case ("POST", let path) where path.hasPrefix("/weft-test/put/"):
            guard let resource = Resource.named(String(path.dropFirst("/weft-test/put/".count))) else {
                return .status(.pathNotFound)
            }
            do {
                let value = try body(request)
                for object in value["items"]?.array ?? [value] { store.put(resource, object) }
                return done
            } catch {
                return .status(error)
            }
        default:
            return .status(.pathNotFound)
        }
    }
}
