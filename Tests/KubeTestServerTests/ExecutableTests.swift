import Foundation
import KubeTestServer
import TestSupport
import Testing

/// `swift test` runs the test bundle from the products directory, where the executable is built too.
let serverExecutable: String = {
    let executable =
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent("weft-kube-test-server")
        .path
}()

/// weft-kube-test-server as namespace tests run it: flags, seed file, the controls over its Unix
/// socket, and a clean stop on SIGTERM.
@Suite(
    .enabled(
        if: Curl.isAvailable && FileManager.default.isExecutableFile(atPath: serverExecutable),
        "needs curl and \(serverExecutable) (swift build --build-tests builds it)"
    )
)
struct ExecutableTests {
    @Test func servesSeededNodesAndObeysItsControlSocket() async throws {
        try await TestAPI.with { api in
            let seed = api.directory.appendingPathComponent("seed.json")
            try JSONValue.array([
                TestAPI.node("s1", podCIDR: "10.244.11.0/24"),
                ["kind": "Pod", "metadata": ["name": "p", "namespace": "kube-flannel"], "spec": ["nodeName": "s1"]],
            ]).text.write(to: seed, atomically: true, encoding: .utf8)
            let control = api.directory.appendingPathComponent("exe-control.sock").path
            let process = try Background(
                serverExecutable,
                [
                    "--listen", "127.0.0.1:0", "--token-file", api.tokenFile, "--cert", api.certificates.certificate,
                    "--key", api.certificates.key, "--control-socket", control, "--seed", seed.path,
                    "--bookmark-interval", "0.2",
                    "--anonymous-auth", "false",
                ]
            )
            defer { process.stop() }
            let banner = try await process.waitFor("the listening line") {
                $0.contains("listening on https://127.0.0.1:")
            }
            #expect(banner.contains("seeded 2 objects"))
            let url = try #require(banner.split(separator: "\n").first { $0.hasPrefix("listening on ") }).dropFirst(
                "listening on ".count
            )
            let common = Curl.common(api, token: TestAPI.adminToken)

            let (_, anonymous) = try await run(
                Curl.path,
                Curl.common(api, token: nil) + ["-o", "/dev/null", "-w", "%{http_code}", "\(url)/api/v1/nodes"]
            )
            #expect(anonymous == "401", "--anonymous-auth false answers a request without a token 401")
            let (_, list) = try await run(Curl.path, common + ["\(url)/api/v1/nodes"])
            #expect(try JSONValue.parse(list)["items"]?.array?.compactMap(\.name) == ["s1"])
            let (_, pod) = try await run(
                Curl.path,
                Curl.common(api, token: TestAPI.flannelToken) + ["\(url)/api/v1/namespaces/kube-flannel/pods/p"]
            )
            #expect(try JSONValue.parse(pod).value(at: "spec.nodeName")?.string == "s1")

            func controlRequest(_ method: String, _ path: String) async throws -> String {
                let (status, output) = try await run(
                    Curl.path,
                    ["-sS", "--unix-socket", control, "-X", method, "http://localhost\(path)"]
                )
                guard status == 0 else {
                    throw HarnessFailure("control \(method) \(path): curl exited \(status): \(output)")
                }
                return output
            }
            let log = try JSONValue.parse(try await controlRequest("GET", "/weft-test/requests")).array ?? []
            #expect(
                log.compactMap { $0["path"]?.string } == [
                    "/api/v1/nodes", "/api/v1/nodes", "/api/v1/namespaces/kube-flannel/pods/p",
                ]
            )
            #expect(log.first?["user"] == .null && log.first?["code"] == .number("401"))
            #expect(log.last?["user"]?.string == User.flannel)

            _ = try await controlRequest("POST", "/weft-test/throttle?count=1&retryAfter=2")
            let (_, throttled) = try await run(
                Curl.path,
                common + ["-o", "/dev/null", "-w", "%{http_code}", "\(url)/api/v1/nodes"]
            )
            #expect(throttled == "429")

            let state = try JSONValue.parse(try await controlRequest("GET", "/weft-test/state"))
            #expect(state["nodes"] == .number("1"))

            // put: fixtures a real apiserver would refuse (three podCIDRs), each an ADDED event.
            let version = Int(state["resourceVersion"].map(\.text) ?? "") ?? 0
            let (_, put) = try await run(
                Curl.path,
                [
                    "-sS", "--unix-socket", control, "-X", "POST", "--data-binary",
                    TestAPI.node("s2", podCIDR: "10.244.12.0/24").text, "http://localhost/weft-test/put/nodes",
                ]
            )
            #expect(put.contains("true"))
            let watch = try Background(
                Curl.path,
                common + ["-N", "\(url)/api/v1/nodes?watch=true&resourceVersion=\(version)"]
            )
            defer { watch.stop() }
            #expect(
                try await watch.waitForEvents("s2 ADDED") { !$0.isEmpty }.map { "\($0.type ?? "") \($0.name ?? "")" }
                    == ["ADDED s2"]
            )
            _ = try await controlRequest("POST", "/weft-test/close-watches")
            #expect(try await watch.waitForExit() == 0)
            _ = try await controlRequest("POST", "/weft-test/compact")
            let (_, expired) = try await run(
                Curl.path,
                common + ["\(url)/api/v1/nodes?watch=true&resourceVersion=\(version)"]
            )
            #expect(jsonDocuments(expired).first?.value(at: "object.code") == .number("410"))
            _ = try await controlRequest("DELETE", "/weft-test/requests")
            #expect(try JSONValue.parse(try await controlRequest("GET", "/weft-test/requests")) == [])

            // Down long enough that a loaded machine's curl start-up still lands inside the window.
            _ = try await controlRequest("POST", "/weft-test/down?seconds=4")
            try await Task.sleep(for: .milliseconds(300))
            let (refused, _) = try await run(Curl.path, common + ["\(url)/api/v1/nodes"])
            #expect(refused == 7)
            var back: Int32 = -1
            for _ in 0..<40 where back != 0 {
                try await Task.sleep(for: .milliseconds(250))
                (back, _) = try await run(Curl.path, common + ["-f", "\(url)/api/v1/nodes"])
            }
            #expect(back == 0, "the server came back after its window")

            kill(process.process.processIdentifier, SIGTERM)
            #expect(try await process.waitForExit(seconds: 10) == 0)
            #expect(!FileManager.default.fileExists(atPath: control))
        }
    }
}

/// The server as the namespace end-to-end tests run it: `ip netns exec` in a namespace of its own,
/// on a 198.18.0.0/15 address named in its certificate, reached by curl and kubectl in that namespace.
@Suite(
    .enabled(
        if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip")
            && FileManager.default.isExecutableFile(atPath: serverExecutable) && Curl.isAvailable,
        "needs root, /usr/sbin/ip, curl and the weft-kube-test-server executable"
    )
)
struct KubeServerNamespaceTests {
    @Test func servesInsideANetworkNamespaceOnA198_18Address() async throws {
        let namespace = "weft-kf-\(UInt32.random(in: 0...UInt32.max) & 0xFFFFFF)"
        let address = "198.18.0.1"
        let ip = "/usr/sbin/ip"
        guard try await run(ip, ["netns", "add", namespace]).status == 0 else {
            throw HarnessFailure("ip netns add \(namespace) failed")
        }
        defer { _ = try? runCommand([ip, "netns", "del", namespace]) }
        for command in [["link", "set", "lo", "up"], ["addr", "add", "\(address)/32", "dev", "lo"]] {
            let (status, output) = try await run(ip, ["-n", namespace] + command)
            guard status == 0 else {
                throw HarnessFailure("ip -n \(namespace) \(command.joined(separator: " ")): \(output)")
            }
        }
        let pki = try ServerCertificates.make(addresses: [address])
        defer { pki.remove() }
        try await TestAPI.with { api in
            let seed = api.directory.appendingPathComponent("seed.json")
            try TestAPI.node("s1", podCIDR: "10.244.11.0/24").text.write(to: seed, atomically: true, encoding: .utf8)
            let server = try Background(
                ip,
                [
                    "netns", "exec", namespace, serverExecutable, "--listen", "\(address):6443", "--token-file",
                    api.tokenFile,
                    "--cert", pki.certificate, "--key", pki.key, "--seed", seed.path,
                ]
            )
            defer { server.stop() }
            try await server.waitFor("the listening line") { $0.contains("listening on https://\(address):6443") }
            let (status, body) = try await run(
                ip,
                [
                    "netns", "exec", namespace, Curl.path, "-sS", "--cacert", pki.authority,
                    "-H", "Authorization: Bearer \(TestAPI.flannelToken)", "https://\(address):6443/api/v1/nodes/s1",
                ]
            )
            #expect(status == 0, "\(body)")
            #expect((try? JSONValue.parse(body))?.value(at: "spec.podCIDR")?.string == "10.244.11.0/24")
            if let kubectl = Kubectl.all.last {
                let (listed, names) = try await run(
                    ip,
                    [
                        "netns", "exec", namespace, kubectl.path, "--server", "https://\(address):6443",
                        "--certificate-authority", pki.authority, "--token", TestAPI.adminToken,
                        "--cache-dir", api.directory.appendingPathComponent("ns-cache").path,
                        "get", "nodes", "-o", "name",
                    ],
                    environment: ["HOME": api.directory.path, "PATH": "/usr/bin:/bin"]
                )
                #expect(listed == 0 && names.contains("node/s1"), "\(names)")
            }
            kill(server.process.processIdentifier, SIGTERM)
            #expect(try await server.waitForExit() == 0)
        }
    }
}
