import Foundation
import Glibc
import Status
import TestSupport
import TestThreads
import Testing

/// The weftd executable end to end: exit codes, --version/--help, and a run that serves /readyz,
/// then stops on SIGTERM with STOPPING=1 and status 0.
@Suite(.ownThread) struct WeftdProcessTests {
    /// `swift test` runs the test bundle from the products directory, where weftd is built too.
    static let weftd: String = {
        let executable =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent("weftd").path
    }()
    static let missing: String? =
        FileManager.default.isExecutableFile(atPath: weftd) ? nil : "no weftd executable at \(weftd); swift build first"

    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> (Int32, String, String) {
        let result = try runCommand([weftd] + arguments, environment: environment)
        return (result.status, result.output, result.error)
    }

    @Test(.enabled(if: missing == nil, "\(missing ?? "")"))
    func versionHelpAndBadFlags() throws {
        let (versionStatus, version, _) = try Self.run(["--version"])
        #expect(versionStatus == 0 && version.hasPrefix("weftd "))
        let (helpStatus, help, _) = try Self.run(["-help"])
        #expect(helpStatus == 0 && help.contains("--etcd-endpoints") && help.contains("--docker-opts-file"))
        let (badStatus, badOut, bad) = try Self.run(["--etcd-endpoint=http://198.18.0.1:2379"])
        #expect(badStatus == 2 && badOut.isEmpty)
        #expect(
            bad
                == "weftd: --etcd-endpoint: unknown flag (did you mean --etcd-endpoints?); run weftd --help for the list\n"
        )
        let (envStatus, _, envError) = try Self.run([], environment: ["FLANNELD_WORKERS": "many"])
        #expect(envStatus == 2 && envError.hasPrefix("weftd: FLANNELD_WORKERS (--workers): "))
        // Kubernetes mode outside a pod, with no kubeconfig: client-go's in-cluster error, one line.
        // No status socket: /run/flannel is root's, and a run that stops at its config need not touch it.
        let (kubeStatus, _, kube) = try Self.run(
            ["--kube-subnet-mgr", "--status-socket="],
            environment: ["KUBERNETES_SERVICE_HOST": ""]
        )
        #expect(kubeStatus == 1, "\(kube)")
        #expect(
            kube.contains(
                "unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined"
            ),
            "\(kube)"
        )
    }

    @Test(.enabled(if: missing == nil, "\(missing ?? "")"))
    func aMissingInterfaceIsAStartupFailure() throws {
        let (status, _, log) = try Self.run(["--iface=weftd-none0", "--iface=198.18.254.254", "--status-socket="])
        #expect(status == 1)
        let errors = log.split(separator: "\n").filter { $0.contains("error") }
        #expect(errors.count == 1, "\(log)")
        #expect(
            errors.first?.contains(
                "cannot choose the external interface: no interface matches --iface=weftd-none0 --iface=198.18.254.254"
            ) == true,
            "\(log)"
        )
    }

    @Test(.enabled(if: missing == nil, "\(missing ?? "")"), .timeLimit(.minutes(1)))
    func servesReadyzAndStopsOnSigterm() throws {
        let listener = try TestSockets.NotifyListener(abstract: true)
        // A free port: bind 0, read it, release it.
        let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(probe, $0, length) == 0 && getsockname(probe, $0, &length) == 0
            }
        }
        let port = UInt16(bigEndian: address.sin_port)
        close(probe)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.weftd)
        // The loopback interface always exists, so this runs on any host.
        // Its own status socket: the default (/run/flannel/weftd.sock) belongs to the host.
        let socketDirectory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "weftd-proc-\(getpid())-\(UUID().uuidString.prefix(8))"
        ).path
        defer { try? FileManager.default.removeItem(atPath: socketDirectory) }
        let socketPath = socketDirectory + "/weftd.sock"
        process.arguments = ["-iface=lo", "--healthz-port", String(port), "--status-socket", socketPath]
        process.environment = ["NOTIFY_SOCKET": listener.name, "FLANNELD_V": "1"]
        let err = Pipe()
        process.standardError = err
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        #expect(listener.receive() == "STATUS=waiting for the subnet lease and the dataplane")
        var readyz: TestSockets.Response?
        for _ in 0..<50 {
            if let response = try? TestSockets.get(port: port, "/readyz") {
                readyz = response
                break
            }
            usleep(100_000)
        }
        #expect(readyz?.status == 503)
        #expect(try TestSockets.get(port: port, "/healthz").status == 200)
        // No etcd, so no dataplane: the reports say so, on TCP and on the socket alike.
        #expect(try TestSockets.get(port: port, "/v1/routes").status == 503)
        #expect {
            try StatusClient(path: socketPath).stats()
        } throws: { "\($0)".contains("answered 503: weftd has no dataplane yet") }
        var info = stat()
        #expect(stat(socketPath, &info) == 0 && info.st_mode & 0o777 == 0o600)

        kill(process.processIdentifier, SIGTERM)
        #expect(listener.receive() == "STOPPING=1")
        process.waitUntilExit()
        #expect(process.terminationStatus == 0 && process.terminationReason == .exit)
        let log = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(log.contains("using interface lo (index 1, address 127.0.0.1"), "\(log)")
        #expect(log.contains("--iface=lo names it"))
        #expect(log.contains("received SIGTERM, stopping") && log.contains("stopped"))
        #expect(access(socketPath, F_OK) != 0, "weftd left its status socket behind")
    }
}
