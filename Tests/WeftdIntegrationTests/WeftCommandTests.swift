import Foundation
import Glibc
import TestSupport
import Testing

/// A finished `weft` run, standard output and error apart (JSON is read from standard output).
struct WeftResult {
    let status: Int32
    let output: String
    let error: String
}

extension Bed {
    /// Runs `weft` in `namespace` with `arguments`; `environment` replaces the inherited one.
    func weft(_ namespace: String, _ arguments: [String], environment: [String: String]? = nil) throws -> WeftResult {
        let result = try runCommand(
            ["/usr/sbin/ip", "netns", "exec", namespace, weftPath] + arguments,
            environment: environment
        )
        return WeftResult(status: result.status, output: result.output, error: result.error)
    }

    /// The config key's value and mod_revision as etcdctl sees them ("" and 0 when absent).
    func configInEtcd() throws -> (value: String, modRevision: Int64) {
        let text = try etcdctlMust(["get", "\(Self.prefix)/config", "-w", "json"])
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        guard let kv = (object?["kvs"] as? [[String: Any]])?.first else { return ("", 0) }
        let value = Data(base64Encoded: kv["value"] as? String ?? "").map { String(decoding: $0, as: UTF8.self) } ?? ""
        return (value, (kv["mod_revision"] as? NSNumber)?.int64Value ?? 0)
    }
}

extension WeftdBeds {
    /// The operator CLI against a real etcd and real weftd: config get/set, leases, doctor.
    @Suite(.serialized, .enabled(if: weftUnavailable == nil, "\(weftUnavailable ?? "")"))
    struct WeftCommandTests {
        static let vxlanConfig = #"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}"#

        @Test(.timeLimit(.minutes(2)))
        func configGetAndSetValidateAndWriteConditionally() throws {
            let bed = try Bed(hosts: 0)
            defer { bed.tearDown() }
            try bed.startEtcd()
            let etcd = "--etcd-endpoints=\(bed.etcdEndpoint)"
            let ns = bed.underlay

            // No config yet: get says how to create it, and that v2 data is invisible.
            let missing = try bed.weft(ns, ["config", "get", etcd])
            #expect(missing.status == 1)
            #expect(
                missing.error.hasPrefix(
                    "weft: no network config at /coreos.com/network/config; create one with weft config set"
                ),
                "\(missing.error)"
            )
            #expect(missing.error.contains("v2 API"))

            // A config weftd would refuse never reaches etcd; the one line names the field and the fix.
            let refused = try bed.weft(ns, ["config", "set", etcd, #"{"Backend":{"Type":"vxlan"}}"#])
            #expect(refused.status == 1)
            #expect(
                refused.error
                    == "weft: not written to /coreos.com/network/config: config: Network is missing; add it, e.g. \"Network\": \"10.244.0.0/16\"\n",
                "\(refused.error)"
            )
            #expect(try bed.configInEtcd().value == "")

            // Created, read from FLANNELD_ETCD_ENDPOINTS as weftd reads it.
            let environment = ["FLANNELD_ETCD_ENDPOINTS": bed.etcdEndpoint, "PATH": "/usr/sbin:/usr/bin:/bin"]
            let created = try bed.weft(ns, ["config", "set", Self.vxlanConfig], environment: environment)
            #expect(created.status == 0, "\(created.error)")
            #expect(
                created.output.contains("/coreos.com/network/config does not exist yet; creating it"),
                "\(created.output)"
            )
            #expect(created.output.contains("Backend.Type: (none) → vxlan"))
            #expect(try bed.configInEtcd().value == Self.vxlanConfig)

            // get: the defaults flannel applies, marked; --json carries the mod_revision.
            let table = try bed.weft(ns, ["config", "get"], environment: environment)
            #expect(table.status == 0, "\(table.error)")
            let lines = table.output.split(separator: "\n").map {
                $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            }
            for expected in [
                "FIELD VALUE SOURCE", "Network 10.244.0.0/16 set", "SubnetLen 24 default",
                "SubnetMin 10.244.1.0 default",
                "SubnetMax 10.244.255.0 default", "Backend.Type vxlan set", "Backend.VNI 1 default",
                "Backend.Port 8472 default",
            ] {
                #expect(lines.contains(expected), "\(expected) in \(table.output)")
            }
            let json = try bed.weft(ns, ["config", "get", "--json", etcd])
            let object = try #require(
                try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any],
                "\(json.output)"
            )
            let revision = try #require((object["modRevision"] as? NSNumber)?.int64Value)
            #expect(revision == (try bed.configInEtcd().modRevision))
            #expect(object["raw"] as? String == Self.vxlanConfig)

            // A bad config leaves the existing one untouched (value and revision).
            let bad = try bed.weft(ns, ["config", "set", etcd, #"{"Network":"10.244.0.0/16","SubnetLen":31}"#])
            #expect(bad.status == 1)
            #expect(
                bad.error.contains("SubnetLen 31 is larger than 30; use a SubnetLen between 18 and 30"),
                "\(bad.error)"
            )
            let untouched = try bed.configInEtcd()
            #expect(untouched.value == Self.vxlanConfig)
            #expect(untouched.modRevision == revision)

            // A change from a file shows what changes.
            let file = bed.directory + "/config.json"
            let wider = #"{"Network":"10.244.0.0/16","SubnetLen":25,"Backend":{"Type":"vxlan"}}"#
            try wider.write(toFile: file, atomically: true, encoding: .utf8)
            let changed = try bed.weft(ns, ["config", "set", etcd, "--file", file, "--if-revision", String(revision)])
            #expect(changed.status == 0, "\(changed.error)")
            #expect(changed.output.contains("SubnetLen: 24 → 25"), "\(changed.output)")
            let afterChange = try bed.configInEtcd()
            #expect(afterChange.value == wider)

            // Someone else writes between our read and our write: detected, nothing overwritten.
            try bed.putConfig(Bed.udpConfig)
            let stale = try bed.weft(
                ns,
                ["config", "set", etcd, Self.vxlanConfig, "--if-revision", String(afterChange.modRevision)]
            )
            #expect(stale.status == 1)
            #expect(stale.error.contains("/coreos.com/network/config changed concurrently"), "\(stale.error)")
            #expect(try bed.configInEtcd().value == Bed.udpConfig)

            // From flags: the JSON is built, validated and written like typed JSON.
            let fromFlags = try bed.weft(
                ns,
                ["config", "set", etcd, "--network", "10.244.0.0/16", "--backend", "vxlan", "--vni", "7"]
            )
            #expect(fromFlags.status == 0, "\(fromFlags.error)")
            #expect(fromFlags.output.contains("Backend.VNI: (none) → 7"), "\(fromFlags.output)")
            #expect(try bed.configInEtcd().value == #"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":7}}"#)
            let badFlags = try bed.weft(ns, ["config", "set", etcd, "--network", "10.244.0.0/16", "--backend", "ipip"])
            #expect(badFlags.status == 1)
            #expect(badFlags.error.contains("backend ipip is not supported by Weft"), "\(badFlags.error)")
        }

        /// The TLS flags reach etcd as weftd's do, from FLANNELD_* too; without them a client-certificate etcd refuses in one line.
        @Test(.timeLimit(.minutes(2)))
        func configGetOverTLSWithClientCertificates() throws {
            let bed = try Bed(hosts: 0)
            defer { bed.tearDown() }
            try bed.useTLS()
            try bed.startEtcd()
            try bed.putConfig(Self.vxlanConfig)
            let pki = bed.directory + "/pki"
            let environment = [
                "FLANNELD_ETCD_ENDPOINTS": bed.etcdEndpoint, "FLANNELD_ETCD_CAFILE": pki + "/ca.crt",
                "FLANNELD_ETCD_CERTFILE": pki + "/client.crt", "FLANNELD_ETCD_KEYFILE": pki + "/client.key",
                "PATH": "/usr/sbin:/usr/bin:/bin",
            ]
            let fromEnvironment = try bed.weft(bed.underlay, ["config", "get", "--json"], environment: environment)
            #expect(fromEnvironment.status == 0, "\(fromEnvironment.error)")
            #expect(
                fromEnvironment.output.contains(#""raw" : "{\"Network\":\"10.244.0.0/16\""#),
                "\(fromEnvironment.output)"
            )
            let fromFlags = try bed.weft(
                bed.underlay,
                ["config", "get", "--etcd-endpoints", bed.etcdEndpoint] + bed.weftdTLSFlags
            )
            #expect(fromFlags.status == 0, "\(fromFlags.error)")

            let withoutCertificate = try bed.weft(
                bed.underlay,
                ["config", "get", "--etcd-endpoints", bed.etcdEndpoint, "--etcd-cafile", pki + "/ca.crt"]
            )
            #expect(withoutCertificate.status == 1)
            #expect(
                withoutCertificate.error.hasPrefix("weft: ")
                    && withoutCertificate.error.split(separator: "\n").count == 1,
                "\(withoutCertificate.error)"
            )
        }

        @Test(.timeLimit(.minutes(3)))
        func leasesAndDoctorOnThreeLiveHosts() throws {
            let bed = try Bed(hosts: 3)
            defer { bed.tearDown() }
            try bed.startEtcd()
            try bed.putConfig(Self.vxlanConfig)
            let subnets = try bed.startReady([1, 2, 3]).subnets
            let etcd = "--etcd-endpoints=\(bed.etcdEndpoint)"

            // --json: the three hosts' subnets and public IPs, live expiry, host 1's lease marked.
            let json = try bed.weft(bed.host(1), ["leases", "--json", etcd, "--subnet-file", bed.subnetFile(1)])
            #expect(json.status == 0, "\(json.error)")
            let rows = try #require(
                try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [[String: Any]],
                "\(json.output)"
            )
            #expect(rows.count == 3, "\(json.output)")
            for index in 1...3 {
                let row = try #require(
                    rows.first { $0["subnet"] as? String == subnets[index] },
                    "host \(index)'s \(subnets[index]!) in \(json.output)"
                )
                #expect(row["publicIP"] as? String == bed.hostIP(index))
                #expect(row["backend"] as? String == "vxlan")
                #expect((row["vtepMAC"] as? String)?.count == 17)
                let expires = (row["expiresInSeconds"] as? NSNumber)?.int64Value ?? 0
                #expect(expires > 0 && expires <= 24 * 3600, "\(row)")
                #expect(row["thisHost"] as? Bool == (index == 1))
                #expect(row["problem"] == nil)
            }

            // The table: one line per lease with the same facts.
            let table = try bed.weft(bed.host(2), ["leases", etcd, "--subnet-file", bed.subnetFile(2)])
            #expect(table.status == 0, "\(table.error)")
            let lines = table.output.split(separator: "\n")
            #expect(lines.first?.hasPrefix("SUBNET") == true, "\(table.output)")
            for index in 1...3 {
                let line = lines.first { $0.hasPrefix(subnets[index]! + " ") }
                #expect(line?.contains(" \(bed.hostIP(index)) ") == true, "\(table.output)")
                #expect(line?.contains(" vxlan ") == true)
                #expect(
                    line?.contains("h") == true && line?.contains("m") == true,
                    "expiry in \(String(describing: line))"
                )
                #expect((line?.contains(" yes") == true) == (index == 2), "\(table.output)")
            }

            // doctor in host 2, with weftd's flags: everything passes.
            let doctorFlags = [
                "doctor", etcd, "--subnet-file", bed.subnetFile(2), "--iface", bed.hostIP(2), "--status-socket",
                bed.statusSocket(2),
            ]
            let healthy = try bed.weft(bed.host(2), doctorFlags)
            #expect(healthy.status == 0, "\(healthy.output)\(healthy.error)")
            #expect(!healthy.output.contains("FAIL"), "\(healthy.output)")
            // The port filter's check compares nft's set with the peers weftd's /v1/routes lists.
            for name in [
                "net.ipv4.ip_forward", "MTU", "lease /coreos.com/network/subnets/", "overlay device flannel.1",
                "config /coreos.com/network/config", "dataplane", "port filter",
            ] {
                let line = healthy.output.split(separator: "\n").first { $0.contains(name) }
                #expect(line?.hasPrefix("ok ") == true, "\(name): \(healthy.output)")
            }
            #expect(
                healthy.output.split(separator: "\n").first { $0.contains("flanneld's rules") }?.hasPrefix("ok ")
                    == true,
                "\(healthy.output)"
            )

            // What flanneld would have left (nftables mode's table, iptables mode's chain): a warning.
            try bed.exec(
                bed.host(2),
                ["/usr/sbin/nft", "add table ip flannel-ipv4; add table ip nat; add chain ip nat FLANNEL-POSTRTG"]
            )
            let leftovers = try bed.weft(bed.host(2), doctorFlags)
            #expect(leftovers.status == 0, "\(leftovers.output)")
            let leftoverLine = leftovers.output.split(separator: "\n").first { $0.contains("flanneld's rules") }
            #expect(leftoverLine?.hasPrefix("warn ") == true, "\(leftovers.output)")
            #expect(leftoverLine?.contains("table ip flannel-ipv4, chain ip nat FLANNEL-POSTRTG") == true)
            try bed.exec(bed.host(2), ["/usr/sbin/nft", "delete table ip flannel-ipv4; delete table ip nat"])

            let doctorJSON = try bed.weft(bed.host(2), doctorFlags + ["--json"])
            let checks = try #require(
                try JSONSerialization.jsonObject(with: Data(doctorJSON.output.utf8)) as? [[String: Any]],
                "\(doctorJSON.output)"
            )
            #expect(
                checks.contains { $0["name"] as? String == "MTU" && $0["status"] as? String == "ok" },
                "\(doctorJSON.output)"
            )

            // ip_forward off in host 2: that check fails with the fix, and so does doctor.
            try bed.exec(bed.host(2), ["/usr/sbin/sysctl", "-qw", "net.ipv4.ip_forward=0"])
            let broken = try bed.weft(bed.host(2), doctorFlags)
            #expect(broken.status == 1, "\(broken.output)")
            let line = broken.output.split(separator: "\n").first { $0.contains("net.ipv4.ip_forward") }
            #expect(line?.hasPrefix("FAIL ") == true, "\(broken.output)")
            #expect(line?.contains("sysctl -w net.ipv4.ip_forward=1") == true)
            #expect(broken.output.split(separator: "\n").filter { $0.hasPrefix("FAIL") }.count == 1, "\(broken.output)")

            // A malformed record is listed as such; the listing still succeeds.
            try bed.etcdctlMust(["put", "\(Bed.prefix)/subnets/not-a-subnet", "{"])
            let withBad = try bed.weft(bed.host(1), ["leases", "--json", etcd])
            #expect(withBad.status == 0, "\(withBad.error)")
            let badRows = try JSONSerialization.jsonObject(with: Data(withBad.output.utf8)) as? [[String: Any]] ?? []
            #expect(badRows.count == 4)
            #expect(badRows.last?["subnet"] as? String == "not-a-subnet")
            #expect((badRows.last?["problem"] as? String)?.contains("not a subnet key") == true)
        }
    }
}
