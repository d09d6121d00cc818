import Addressing
import ConfigTestSupport
import Testing

@testable import Config

@Suite struct LeaseValues {
    // A value read from a real flannel etcd (vxlan backend).
    let flannelVXLAN =
        #"{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}"#

    @Test func vxlanLeaseEncodesByteForByte() {
        let data = VXLANLeaseData(vni: 1, vtepMAC: MACAddress("C6:D2:32:6F:8F:44")!)
        let lease = LeaseAttributes.vxlan(publicIP: IPv4Address(192, 168, 64, 3), data: data)
        #expect(lease.json == flannelVXLAN)
        #expect(Array(lease.json.utf8) == Array(flannelVXLAN.utf8))
    }

    @Test func vxlanLeaseRoundTrips() throws {
        let lease = try LeaseAttributes.parse(flannelVXLAN)
        #expect(lease.publicIP == IPv4Address(192, 168, 64, 3))
        #expect(lease.publicIPv6 == nil)
        #expect(lease.backendType == "vxlan")
        #expect(lease.backendData == #"{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}"#)
        #expect(lease.json == flannelVXLAN)
        let data = try lease.vxlanData()
        #expect(data.vni == 1)
        #expect(data.vtepMAC == MACAddress(0xC6D2_326F_8F44))
    }

    @Test func otherBackendsOmitEmptyFields() {
        #expect(
            LeaseAttributes.udp(publicIP: IPv4Address(198, 18, 0, 1)).json
                == #"{"PublicIP":"198.18.0.1","PublicIPv6":null}"#
        )
        #expect(
            LeaseAttributes.hostGateway(publicIP: IPv4Address(198, 18, 0, 2)).json
                == #"{"PublicIP":"198.18.0.2","PublicIPv6":null,"BackendType":"host-gw"}"#
        )
        #expect(LeaseAttributes(publicIP: .any).json == #"{"PublicIP":"0.0.0.0","PublicIPv6":null}"#)
    }

    @Test func udpLeaseWithoutBackendTypeDecodes() throws {
        let lease = try LeaseAttributes.parse(#"{"PublicIP":"198.18.0.1","PublicIPv6":null}"#)
        #expect(lease == LeaseAttributes.udp(publicIP: IPv4Address(198, 18, 0, 1)))
        #expect(lease.backendType.isEmpty)
        #expect(lease.backendData == nil)
    }

    @Test func decodingIsCaseInsensitiveAndBackendDataIsCompacted() throws {
        let lease = try LeaseAttributes.parse(
            """
            {
              "publicip": "10.0.0.7",
              "backendtype": "vxlan",
              "backenddata": { "VNI" : 7 , "VtepMAC" : "0a-00-00-00-00-07", "Note": "a<b & c>d \\u0041" }
            }
            """
        )
        // Go re-emits a json.RawMessage compacted, with <, >, & escaped and other escapes as written.
        #expect(
            lease.json
                == #"{"PublicIP":"10.0.0.7","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":7,"VtepMAC":"0a-00-00-00-00-07","Note":"a\u003cb \u0026 c\u003ed \u0041"}}"#
        )
        #expect(try lease.vxlanData() == VXLANLeaseData(vni: 7, vtepMAC: MACAddress(0x0A00_0000_0007)))
    }

    @Test func dualStackFieldsAreKeptForTheRoundTrip() throws {
        let text =
            #"{"PublicIP":"10.0.0.1","PublicIPv6":"fc00::1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"},"BackendV6Data":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:00"}}"#
        let lease = try LeaseAttributes.parse(text)
        #expect(lease.publicIPv6 == "fc00::1")
        #expect(lease.json == text)
    }

    @Test func missingPublicIPIsZeroAsInGo() throws {
        #expect(try LeaseAttributes.parse(#"{"BackendType":"host-gw"}"#).publicIP == .any)
    }

    @Test func nullBackendDataIsAbsent() throws {
        let lease = try LeaseAttributes.parse(
            #"{"PublicIP":"10.0.0.1","PublicIPv6":null,"BackendType":"host-gw","BackendData":null}"#
        )
        #expect(lease.backendData == nil)
        #expect(lease.json == #"{"PublicIP":"10.0.0.1","PublicIPv6":null,"BackendType":"host-gw"}"#)
    }

    @Test func stringsAreEscapedAsGoDoes() {
        let lease = LeaseAttributes(publicIP: .any, backendType: "a\"b\\c<d>&\n\t\u{1}\u{2028}é")
        #expect(
            lease.json
                == #"{"PublicIP":"0.0.0.0","PublicIPv6":null,"BackendType":"a\"b\\c\u003cd\u003e\u0026\n\t\u0001\u2028é"}"#
        )
    }

    @Test(arguments: [
        ("", "JSON"),
        ("[]", "JSON"),
        ("null", "JSON"),
        (#"{"PublicIP":5}"#, "PublicIP"),
        (#"{"PublicIP":"10.0.0.256"}"#, "PublicIP"),
        (#"{"PublicIP":"10.0.0.1","BackendType":7}"#, "BackendType"),
        (#"{"PublicIP":"10.0.0.1","PublicIPv6":false}"#, "PublicIPv6"),
    ])
    func badLeaseValuesNameTheField(text: String, field: String) {
        do {
            let lease = try LeaseAttributes.parse(text)
            Issue.record("expected an error, got \(lease)")
        } catch {
            expectOneLine(error, field: field)
            #expect(error.description.hasPrefix("lease: "))
        }
    }

    @Test(arguments: [
        (#"{"PublicIP":"10.0.0.1","BackendType":"vxlan"}"#, "BackendData"),
        (#"{"PublicIP":"10.0.0.1","BackendType":"vxlan","BackendData":"x"}"#, "BackendData"),
        (#"{"PublicIP":"10.0.0.1","BackendType":"vxlan","BackendData":{"VNI":1}}"#, "BackendData.VtepMAC"),
        (
            #"{"PublicIP":"10.0.0.1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":null}}"#,
            "BackendData.VtepMAC"
        ),
        (
            #"{"PublicIP":"10.0.0.1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc"}}"#,
            "BackendData.VtepMAC"
        ),
        (
            #"{"PublicIP":"10.0.0.1","BackendType":"vxlan","BackendData":{"VNI":65536,"VtepMAC":"aa:bb:cc:dd:ee:ff"}}"#,
            "BackendData.VNI"
        ),
        (
            #"{"PublicIP":"10.0.0.1","BackendType":"vxlan","BackendData":{"VNI":"1","VtepMAC":"aa:bb:cc:dd:ee:ff"}}"#,
            "BackendData.VNI"
        ),
    ])
    func badVXLANDataNamesTheField(text: String, field: String) throws {
        let lease = try LeaseAttributes.parse(text)
        do {
            let data = try lease.vxlanData()
            Issue.record("expected an error, got \(data)")
        } catch {
            expectOneLine(error, field: field)
        }
    }

    @Test func vtepMACFormsGoAccepts() {
        let expected = MACAddress(0xAABB_CCDD_EEFF)
        #expect(VXLANLeaseData.parseMAC("aa:bb:cc:dd:ee:ff") == expected)
        #expect(VXLANLeaseData.parseMAC("AA-BB-CC-DD-EE-FF") == expected)
        #expect(VXLANLeaseData.parseMAC("aabb.ccdd.eeff") == expected)
        #expect(VXLANLeaseData.parseMAC("aabb.ccdd.eef") == nil)
        #expect(VXLANLeaseData.parseMAC("+abb.ccdd.eeff") == nil)
    }

    @Test func configuredVNIIsTruncatedAsFlannelPublishesIt() {
        // flannel: vxlanLeaseAttrs.VNI is uint16, filled with uint16(cfg.VNI).
        let mac = MACAddress(0x0200_0000_0001)
        #expect(VXLANLeaseData(configuredVNI: 70000, vtepMAC: mac).vni == 4464)
        #expect(VXLANLeaseData(configuredVNI: 1, vtepMAC: mac).json == #"{"VNI":1,"VtepMAC":"02:00:00:00:00:01"}"#)
    }
}

@Suite struct LeaseKeys {
    @Test func parsesAFullKey() {
        let key = LeaseKey(parsing: "/coreos.com/network/subnets/10.244.34.0-24")
        #expect(key?.subnet == IPv4Prefix("10.244.34.0/24"))
        #expect(key?.ipv6Subnet == nil)
        #expect(key?.name == "10.244.34.0-24")
    }

    @Test func printsAKey() {
        let key = LeaseKey(subnet: IPv4Prefix("10.244.34.0/24")!)
        #expect(key.path(prefix: "/coreos.com/network") == "/coreos.com/network/subnets/10.244.34.0-24")
        #expect(key.path(prefix: "/coreos.com/network/") == "/coreos.com/network/subnets/10.244.34.0-24")
        #expect(key.path(prefix: "/weft//net2") == "/weft/net2/subnets/10.244.34.0-24")
        #expect(LeaseKey(parsing: key.path(prefix: "/x"))?.subnet == key.subnet)
    }

    @Test func dualStackKeyKeepsItsIPv4Part() {
        let key = LeaseKey(parsing: "/coreos.com/network/subnets/10.5.52.0-24&fc00:0:0:5::-64")
        #expect(key?.subnet == IPv4Prefix("10.5.52.0/24"))
        #expect(key?.ipv6Subnet == IPv6Prefix("fc00:0:0:5::/64"))
    }

    @Test func prefixLengthIsFiveBits() {
        #expect(LeaseKey(parsing: "10.0.0.0-31")?.subnet?.length == 31)
        #expect(LeaseKey(parsing: "0.0.0.0-0")?.subnet?.length == 0)
        #expect(LeaseKey(parsing: "10.0.0.0-32") == nil)
    }

    @Test(arguments: [
        "/coreos.com/network/config",
        "/coreos.com/network/subnets/",
        "10.244.34-24",
        "10.244.34.0/24",
        "10.244.34.0-",
        "10.244.34.0-x4",
        "10.244.034.0-24",
        "10.244.34.0-24&FC00::-64",
        "10.244.34.0-24&fc00::",
        "10.244.34.0-24&-64",
        "10.244.34.0-24&fc00::-6x",
    ])
    func garbageIsNotASubnet(key: String) {
        #expect(LeaseKey(parsing: key) == nil)
    }

    @Test func etcdPathsAreJoinedLikeGo() {
        #expect(EtcdPath.config(prefix: EtcdPath.defaultPrefix) == "/coreos.com/network/config")
        #expect(EtcdPath.subnets(prefix: "/coreos.com/network/") == "/coreos.com/network/subnets")
        #expect(EtcdPath.join("a/./b/../c", "d") == "a/c/d")
        #expect(EtcdPath.join("/../a", "") == "/a")
        #expect(EtcdPath.join("../a", "..", "..") == "../..")
        #expect(EtcdPath.join("", "x") == "x")
    }
}
