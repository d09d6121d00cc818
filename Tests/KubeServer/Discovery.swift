/// The discovery documents kubectl 1.20 and 1.33 need (legacy discovery: /api, /apis, /api/v1) and /version.
enum Discovery {
    static func apiVersions(serverAddress: String) -> JSONValue {
        [
            "kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [["clientCIDR": "0.0.0.0/0", "serverAddress": .string(serverAddress)]],
        ]
    }

    static let groups: JSONValue = ["kind": "APIGroupList", "apiVersion": "v1", "groups": []]

    static let coreResources: JSONValue = [
        "kind": "APIResourceList", "groupVersion": "v1",
        "resources": .array(
            Resource.all.flatMap { resource -> [JSONValue] in
                let singular = String(resource.name.dropLast())
                var main: JSONValue = [
                    "name": .string(resource.name), "singularName": .string(singular),
                    "namespaced": .bool(resource.namespaced),
                    "kind": .string(resource.kind),
                    "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
                    "shortNames": .array(resource.shortNames.map(JSONValue.string)),
                ]
                if resource.namespaced { main["categories"] = ["all"] }
                let status: JSONValue = [
                    "name": .string("\(resource.name)/status"), "singularName": "",
                    "namespaced": .bool(resource.namespaced),
                    "kind": .string(resource.kind), "verbs": ["get", "patch", "update"],
                ]
                return [main, status]
            }
        ),
    ]

    static let version: JSONValue = [
        "major": "1", "minor": "33", "gitVersion": "v1.33.0-weft-test",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24.0", "compiler": "gc",
        "platform": "linux/amd64",
    ]
}
