import Foundation
import KubeTestServer

// weft-kube-test-server: the test API server as a process, for tests that run it inside a network
// namespace (`ip netns exec`). Prints one line `listening on <url>` when ready; stops on SIGTERM/SIGINT.
// Controls: POST/GET /weft-test/... with an admin token, or without one on --control-socket.

let usage = """
    usage: weft-kube-test-server --token-file FILE [--listen HOST:PORT] [--cert FILE --key FILE]
                                 [--control-socket PATH] [--seed FILE] [--bookmark-interval SECONDS]
                                 [--history-limit EVENTS] [--anonymous-auth true|false]
    """

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("weft-kube-test-server: \(message)\n".utf8))
    exit(2)
}

var options: [String: String] = [:]
var arguments = CommandLine.arguments.dropFirst()
while let flag = arguments.popFirst() {
    guard flag.hasPrefix("--"), let value = arguments.popFirst() else {
        fail("\(flag): expected --flag VALUE\n\(usage)")
    }
    options[String(flag.dropFirst(2))] = value
}
let known: Set = [
    "token-file", "listen", "cert", "key", "control-socket", "seed", "bookmark-interval", "history-limit",
    "anonymous-auth",
]
if let unknown = options.keys.first(where: { !known.contains($0) }) { fail("unknown flag --\(unknown)\n\(usage)") }
guard let tokenFile = options["token-file"] else { fail("--token-file is required\n\(usage)") }

var configuration = KubeTestServer.Configuration(
    tokenFile: tokenFile,
    certificateFile: options["cert"],
    keyFile: options["key"]
)
if (options["cert"] == nil) != (options["key"] == nil) { fail("--cert and --key go together") }
if let listen = options["listen"] {
    guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]) else {
        fail("--listen \(listen): expected HOST:PORT")
    }
    configuration.host = String(listen[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
    configuration.port = port
}
configuration.controlSocket = options["control-socket"]
if let text = options["bookmark-interval"] {
    guard let seconds = Double(text), seconds > 0 else { fail("--bookmark-interval \(text): expected seconds > 0") }
    configuration.bookmarkInterval = .milliseconds(Int(seconds * 1000))
}
if let text = options["history-limit"] {
    guard let limit = Int(text), limit > 0 else { fail("--history-limit \(text): expected a positive count") }
    configuration.historyLimit = limit
}

if let text = options["anonymous-auth"] {
    guard let allowed = Bool(text) else { fail("--anonymous-auth \(text): expected true or false") }
    configuration.anonymousAuth = allowed
}

let server: KubeTestServer
do {
    server = try await KubeTestServer.start(configuration)
} catch {
    fail("cannot listen on \(configuration.host):\(configuration.port): \(error)")
}
if let seed = options["seed"] {
    do {
        let count = try server.seed(fromFile: seed)
        FileHandle.standardOutput.write(Data("seeded \(count) objects from \(seed)\n".utf8))
    } catch {
        try? await server.shutdown()
        fail("--seed \(seed): \(error)")
    }
}
FileHandle.standardOutput.write(Data("listening on \(server.url)\n".utf8))

// Dispatch takes the signals once their default action is ignored; the sources live until exit.
nonisolated(unsafe) var signalSources: [any DispatchSourceSignal] = []
let stop = AsyncStream<Int32> { continuation in
    for signal in [SIGTERM, SIGINT] {
        Foundation.signal(signal, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: signal)
        source.setEventHandler { continuation.yield(signal) }
        source.resume()
        signalSources.append(source)
    }
}
for await _ in stop { break }
try? await server.shutdown()
