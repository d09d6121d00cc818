import ArgumentParser

@main
struct Weft: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weft",
        abstract: "Weft: flannel's overlay network with a user-space dataplane.",
        subcommands: [Replay.self, Dataplane.self, RoutesCommand.self, StatsCommand.self])
}

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run captured packets through the engine's per-packet pipeline, file to file.",
        discussion: """
            encap reads inner IPv4 packets (what the TUN would hand Weft) and writes the outer \
            IPv4/UDP datagrams Weft would send. decap reads captured underlay frames and writes the \
            inner IPv4 packets Weft would write to the TUN. Both print packet counts and every drop \
            by reason.
            """,
        subcommands: [ReplayEncap.self, ReplayDecap.self])
}
