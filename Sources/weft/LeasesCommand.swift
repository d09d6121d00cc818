import Addressing
import ArgumentParser
import Config
import Etcd
import Foundation
import Operator

/// `weft leases`: every subnet lease in etcd, read as weftd reads its peers.
struct LeasesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leases",
        abstract:
            "List the subnet leases under <etcd-prefix>/subnets/: subnets and public IPs of both families, backend, VtepMAC, expiry.",
        discussion:
            "The lease subnet.env names is marked as this host's. A record weftd could not read is listed as malformed."
    )

    @OptionGroup var etcd: EtcdArguments
    @Option(
        help: ArgumentHelp(
            "This host's subnet.env, to mark its lease (FLANNELD_SUBNET_FILE; default /run/flannel/subnet.env).",
            valueName: "path"
        )
    )
    var subnetFile: String?
    @Flag(help: "JSON for scripts instead of the table.") var json = false

    func run() async throws {
        try await reportingFailures {
            let options = try etcd.options(subnetFile.map { ["--subnet-file=\($0)"] } ?? [])
            let ownSubnet = (try? String(contentsOfFile: options.subnetFile, encoding: .utf8))
                .flatMap { try? SubnetEnv.parse($0, file: options.subnetFile).subnet }
            let records = try await withEtcdClient(options) { client in
                try await Self.records(client, prefix: options.etcdPrefix)
            }
            let rows = LeaseRow.rows(records, ownSubnet: ownSubnet)
            if json {
                print(try JSONOutput.render(rows), terminator: "")
                return
            }
            // The IPv6 columns only when some lease has an IPv6 half.
            let ipv6 = rows.contains { $0.ipv6Subnet != nil || $0.publicIPv6 != nil }
            var table = TextTable(LeaseRow.headers(ipv6: ipv6))
            for row in rows { table.append(row.cells(ipv6: ipv6)) }
            print(table.render(), terminator: "")
            if rows.isEmpty {
                FileHandle.standardError.write(
                    Data("weft: no leases under \(EtcdPath.subnets(prefix: options.etcdPrefix))/\n".utf8)
                )
            }
        }
    }

    /// Every key under the subnets prefix, each with its etcd lease's time left.
    static func records(_ client: EtcdClient, prefix: String) async throws -> [LeaseRecord] {
        let listing = try await client.range(prefix: EtcdPath.subnets(prefix: prefix) + "/")
        var records: [LeaseRecord] = []
        for kv in listing.kvs {
            records.append(LeaseRecord(key: kv.key, value: kv.value, expiry: await expiry(client, kv.lease)))
        }
        return records
    }

    static func expiry(_ client: EtcdClient, _ lease: LeaseID?) async -> LeaseRecord.Expiry {
        guard let lease else { return .never }
        do {
            guard let left = try await client.timeToLive(lease: lease) else { return .expired }
            return .seconds(left.ttl)
        } catch {
            return .unknown("\(error)")
        }
    }
}
