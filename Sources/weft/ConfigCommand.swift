import ArgumentParser
import Config
import Etcd
import Foundation
import Operator

/// `weft config get|set`: the network config at <prefix>/config.
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Show or change the network config at <etcd-prefix>/config.",
        subcommands: [ConfigGet.self, ConfigSet.self]
    )
}

struct ConfigGet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Print the network config with the defaults flannel applies (SubnetLen, SubnetMin/Max, Backend).",
        discussion:
            "Fields marked default are not in the JSON; flannel and weftd use the value shown. With --json, also the raw JSON and the key's mod_revision (for config set --if-revision)."
    )

    @OptionGroup var etcd: EtcdArguments
    @Flag(help: "JSON for scripts instead of the table.") var json = false

    struct Output: Encodable {
        var key: String
        var modRevision: Int64
        var raw: String
        var fields: [ConfigSummary.Field]
    }

    func run() async throws {
        try await reportingFailures {
            let options = try etcd.options()
            let key = EtcdPath.config(prefix: options.etcdPrefix)
            let kv = try await withEtcdClient(options) { client in try await client.get(key).kvs.first }
            guard let kv else { throw CommandFailure(ConfigKey.missing(key)) }
            let config: NetworkConfig
            do {
                config = try NetworkConfig.parse(kv.value)
            } catch {
                throw CommandFailure("\(key) holds an invalid config: \(error); correct it with weft config set")
            }
            let summary = ConfigSummary(config, raw: kv.value)
            if json {
                print(
                    try JSONOutput.render(
                        Output(key: key, modRevision: kv.modRevision, raw: kv.value, fields: summary.fields)
                    ),
                    terminator: ""
                )
                return
            }
            var table = TextTable(["FIELD", "VALUE", "SOURCE"])
            for field in summary.fields {
                table.append([field.name, field.value, field.isDefault ? "default" : "set"])
            }
            print("\(key) (mod_revision \(kv.modRevision))")
            print(table.render(), terminator: "")
        }
    }
}

struct ConfigSet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Validate a network config, show what changes, and write it to <etcd-prefix>/config.",
        discussion: """
            The config is checked by the same parser weftd uses; a config weftd would refuse is \
            never written. The write is conditional: if the key changed since it was read (or \
            since --if-revision), nothing is written and the exit status is 1.
            """
    )

    @OptionGroup var etcd: EtcdArguments
    @Argument(
        help: ArgumentHelp(
            "The config JSON, e.g. '{\"Network\":\"10.244.0.0/16\",\"Backend\":{\"Type\":\"vxlan\"}}'.",
            valueName: "json"
        )
    )
    var text: String?
    @Option(help: ArgumentHelp("Read the config JSON from this file (- for standard input).", valueName: "path"))
    var file: String?
    @Option(help: ArgumentHelp("Build the config from flags instead of JSON: flannel's Network.", valueName: "cidr"))
    var network: String?
    @Option(
        help: ArgumentHelp(
            "With --network: the lease size (default 24, or the Network's prefix + 2 when that is longer).",
            valueName: "length"
        )
    )
    var subnetLen: Int?
    @Option(help: ArgumentHelp("With --network: udp, vxlan or host-gw (flannel's default: udp).", valueName: "type"))
    var backend: String?
    @Option(help: ArgumentHelp("With --network: vxlan's VNI (default 1).", valueName: "vni"))
    var vni: Int?
    @Option(help: ArgumentHelp("With --network: the backend's UDP port (udp 8285, vxlan 8472).", valueName: "port"))
    var port: Int?
    @Option(
        help: ArgumentHelp(
            "Write only if the key's mod_revision is still this (from config get --json); 0: only if absent.",
            valueName: "revision"
        )
    )
    var ifRevision: Int64?
    @Flag(help: "Validate and show the changes, write nothing.") var dryRun = false

    func validate() throws {
        guard [text != nil, file != nil, network != nil].filter({ $0 }).count == 1 else {
            throw ValidationError(
                "give the config one way: as a JSON argument, with --file, or with --network (and --backend, ...)"
            )
        }
        if network == nil && (subnetLen != nil || backend != nil || vni != nil || port != nil) {
            throw ValidationError(
                "--subnet-len, --backend, --vni and --port build a config with --network; add --network=10.244.0.0/16"
            )
        }
    }

    func run() async throws {
        try await reportingFailures {
            let options = try etcd.options()
            let key = EtcdPath.config(prefix: options.etcdPrefix)
            let newText = try readConfig()
            // Before etcd is asked anything: a bad config is refused even with etcd down.
            do {
                _ = try ConfigUpdate(key: key, text: newText, current: nil)
            } catch let refusal as ConfigUpdate.Refusal {
                throw CommandFailure(refusal.description)
            }
            try await withEtcdClient(options) { client in
                let kv = try await client.get(key).kvs.first
                let current = kv.map { ConfigUpdate.Current(text: $0.value, modRevision: $0.modRevision) }
                let update: ConfigUpdate
                do {
                    update = try ConfigUpdate(key: key, text: newText, current: current)
                } catch let refusal as ConfigUpdate.Refusal {
                    throw CommandFailure(refusal.description)
                }
                if let ifRevision, ifRevision != (current?.modRevision ?? 0) {
                    throw CommandFailure(ConfigKey.changed(key, expected: ifRevision, found: current?.modRevision))
                }
                for line in update.description { print(line) }
                if update.isUnchanged || dryRun { return }
                let guardClause =
                    current.map { Compare.modRevision(key, equals: $0.modRevision) } ?? Compare.absent(key)
                let result = try await client.transaction(
                    compare: [guardClause],
                    success: [.put(key: key, value: newText, lease: nil)]
                )
                guard result.succeeded else {
                    throw CommandFailure(ConfigKey.changed(key, expected: current?.modRevision ?? 0, found: nil))
                }
                print("written to \(key) (revision \(result.revision)); weftd picks it up on its next read")
            }
        }
    }

    private func readConfig() throws -> String {
        if let text { return text }
        if let network {
            return ConfigDraft(network: network, subnetLength: subnetLen, backend: backend, vni: vni, port: port).json
        }
        let path = file!
        let data: Data?
        if path == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            data = FileManager.default.contents(atPath: path)
        }
        guard let data else { throw CommandFailure("cannot read --file \(path); give a readable JSON file") }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Messages about the config key shared by the config commands.
enum ConfigKey {
    static func missing(_ key: String) -> String {
        "no network config at \(key); create one with weft config set '{\"Network\":\"10.244.0.0/16\",\"Backend\":{\"Type\":\"vxlan\"}}' "
            + "(data written with the v2 API, e.g. `etcdctl set`, is invisible to weft, as to flannel ≥ 0.18)"
    }

    static func changed(_ key: String, expected: Int64, found: Int64?) -> String {
        let now =
            found.map { $0 == 0 ? "it does not exist" : "its mod_revision is \($0)" } ?? "it was written meanwhile"
        return
            "\(key) changed concurrently (expected mod_revision \(expected), but \(now)); nothing was written: run weft config get and try again"
    }
}
