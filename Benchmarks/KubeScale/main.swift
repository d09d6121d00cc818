import Foundation

// KubeScaleBenchmark: weftd's Kubernetes node watcher against the API stand-in at cluster scale.
// The parent process runs the watcher and measures; it starts itself again as `serve`, a child
// holding the stand-in and applying the changes, so the watcher's memory is measured alone.
// See README.md.

let usage = """
    usage: KubeScaleBenchmark [--nodes N] [--changes N] [--rate PER_SECOND] [--output FILE]
           KubeScaleBenchmark serve DIRECTORY NODES      (the child: the API stand-in and the changes)
    """

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("KubeScaleBenchmark: \(message)\n".utf8))
    exit(2)
}

var arguments = Array(CommandLine.arguments.dropFirst())
if arguments.first == "serve" {
    guard arguments.count == 3, let nodes = Int(arguments[2]), nodes > 0 else { fail(usage) }
    do {
        try await StandIn.serve(directory: arguments[1], nodes: nodes)
    } catch {
        fail("serve: \(error)")
    }
    exit(0)
}

var plan = Plan()
while !arguments.isEmpty {
    let flag = arguments.removeFirst()
    guard !arguments.isEmpty else { fail("\(flag): expected a value\n\(usage)") }
    let value = arguments.removeFirst()
    switch flag {
    case "--nodes": plan.nodes = Int(value) ?? 0
    case "--changes": plan.changes = Int(value) ?? 0
    case "--rate": plan.rate = Double(value) ?? 0
    case "--output": plan.output = value
    default: fail("unknown flag \(flag)\n\(usage)")
    }
}
guard plan.nodes > 0, plan.nodes < ClusterShape.maxPeers, plan.changes >= 0, plan.rate > 0 else {
    fail("--nodes must be 1..<\(ClusterShape.maxPeers), --changes ≥ 0, --rate > 0\n\(usage)")
}
do {
    let result = try await WatcherRun(plan: plan).run()
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    let json = try encoder.encode(result)
    if let output = plan.output {
        try json.write(to: URL(fileURLWithPath: output))
    }
    FileHandle.standardOutput.write(json + Data("\n".utf8))
    exit(result.stalledChanges == 0 && result.unpublishedChanges == 0 ? 0 : 1)
} catch {
    fail("\(error)")
}
