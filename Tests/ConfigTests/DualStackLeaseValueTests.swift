import Addressing
import ConfigTestSupport
import Testing

@testable import Config

@Suite struct DualStackLeaseValues {
    // What flanneld writes for a dual-stack vxlan node: LeaseAttrs' field order, PublicIPv6 a
    // string, BackendV6Data the flannel-v6 device's VNI and VtepMAC.
    let flanneldDualStackVXLAN =
        #"{"PublicIP":"192.168.64.3","PublicIPv6":"2001:db8::3","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"},"BackendV6Data":{"VNI":1,"VtepMAC":"d2:11:22:33:44:55"}}"#

    @Test func vxlanDualStackLeaseEncodesByteForByte() {
        let lease = LeaseAttributes.vxlan(
            publicIP: IPv4Address(192, 168, 64, 3),
            data: VXLANLeaseData(vni: 1, vtepMAC: MACAddress(0xC6D2_326F_8F44)),
            publicIPv6: IPv6Address("2001:db8:0:0:0:0:0:3"),
            dataV6: VXLANLeaseData(vni: 1, vtepMAC: MACAddress(0xD211_2233_4455))
        )
        #expect(Array(lease.json.utf8) == Array(flanneldDualStackVXLAN.utf8), "\(lease.json)")
    }

    @Test func aFlanneldDualStackPeerParses() throws {
        let lease = try LeaseAttributes.parse(flanneldDualStackVXLAN)
        // The IPv4 view is what it was for an IPv4 lease.
        #expect(lease.publicIP == IPv4Address(192, 168, 64, 3))
        #expect(try lease.vxlanData() == VXLANLeaseData(vni: 1, vtepMAC: MACAddress(0xC6D2_326F_8F44)))
        #expect(lease.publicIPv6 == "2001:db8::3")
        #expect(lease.publicIPv6Address == IPv6Address("2001:db8::3"))
        #expect(try lease.vxlanV6Data() == VXLANLeaseData(vni: 1, vtepMAC: MACAddress(0xD211_2233_4455)))
        #expect(lease.json == flanneldDualStackVXLAN)
    }

    @Test func hostGatewayDualStackHasNoBackendData() {
        let lease = LeaseAttributes.hostGateway(
            publicIP: IPv4Address(198, 18, 0, 2),
            publicIPv6: IPv6Address("2001:db8::2")
        )
        #expect(lease.json == #"{"PublicIP":"198.18.0.2","PublicIPv6":"2001:db8::2","BackendType":"host-gw"}"#)
    }

    @Test func ipv4LeasesStayAsTheyWere() {
        let lease = LeaseAttributes.vxlan(
            publicIP: IPv4Address(10, 0, 0, 1),
            data: VXLANLeaseData(vni: 1, vtepMAC: MACAddress(0x0200_0000_0001))
        )
        #expect(
            lease.json
                == #"{"PublicIP":"10.0.0.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:01"}}"#
        )
        #expect(lease.publicIPv6Address == nil)
    }

    @Test func publicIPv6IsReEmittedAsFlanneldPrintsIt() throws {
        // flannel decodes it into an ip.IP6 and marshals that back: canonical text.
        let lease = try LeaseAttributes.parse(#"{"PublicIP":"10.0.0.1","PublicIPv6":"2001:DB8:0000::0:3"}"#)
        #expect(lease.json == #"{"PublicIP":"10.0.0.1","PublicIPv6":"2001:db8::3"}"#)
        // Go's ParseIP takes a dotted quad as IPv4-mapped and prints it back dotted.
        let mapped = try LeaseAttributes.parse(#"{"PublicIP":"10.0.0.1","PublicIPv6":"10.0.0.2"}"#)
        #expect(mapped.publicIPv6Address == IPv6Address("::ffff:10.0.0.2"))
        #expect(mapped.json == #"{"PublicIP":"10.0.0.1","PublicIPv6":"10.0.0.2"}"#)
    }

    @Test func settingPublicIPv6WritesFlanneldsText() {
        var lease = LeaseAttributes.udp(publicIP: IPv4Address(10, 0, 0, 1))
        lease.publicIPv6Address = IPv6Address("fc00:0:0:0:0:0:0:1")
        #expect(lease.publicIPv6 == "fc00::1")
        lease.publicIPv6Address = nil
        #expect(lease.json == #"{"PublicIP":"10.0.0.1","PublicIPv6":null}"#)
    }

    @Test func nullOrAbsentBackendV6DataIsOmitted() throws {
        let lease = try LeaseAttributes.parse(
            #"{"PublicIP":"10.0.0.1","PublicIPv6":"fc00::1","BackendType":"host-gw","BackendV6Data":null}"#
        )
        #expect(lease.backendV6Data == nil)
        #expect(lease.json == #"{"PublicIP":"10.0.0.1","PublicIPv6":"fc00::1","BackendType":"host-gw"}"#)
    }

    @Test(arguments: [
        (#"{"PublicIP":"10.0.0.1","PublicIPv6":"fc00::g"}"#, "PublicIPv6"),
        (#"{"PublicIP":"10.0.0.1","PublicIPv6":""}"#, "PublicIPv6"),
        (#"{"PublicIP":"10.0.0.1","PublicIPv6":"fc00::/64"}"#, "PublicIPv6"),
        (#"{"PublicIP":"10.0.0.1","PublicIPv6":6}"#, "PublicIPv6"),
    ])
    func badPublicIPv6NamesTheField(text: String, field: String) {
        do {
            let lease = try LeaseAttributes.parse(text)
            Issue.record("expected an error, got \(lease)")
        } catch {
            expectOneLine(error, field: field, mentions: ["2001:db8::1"])
            #expect(error.description.hasPrefix("lease: "))
        }
    }

    @Test(arguments: [
        (
            #"{"PublicIP":"10.0.0.1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:01"}}"#,
            "BackendV6Data"
        ),
        (#"{"PublicIP":"10.0.0.1","BackendType":"vxlan","BackendV6Data":"x"}"#, "BackendV6Data"),
        (#"{"PublicIP":"10.0.0.1","BackendType":"vxlan","BackendV6Data":{"VNI":1}}"#, "BackendV6Data.VtepMAC"),
        (
            #"{"PublicIP":"10.0.0.1","BackendType":"vxlan","BackendV6Data":{"VNI":1,"VtepMAC":"zz"}}"#,
            "BackendV6Data.VtepMAC"
        ),
        (
            #"{"PublicIP":"10.0.0.1","BackendType":"vxlan","BackendV6Data":{"VNI":70000,"VtepMAC":"02:00:00:00:00:01"}}"#,
            "BackendV6Data.VNI"
        ),
    ])
    func badBackendV6DataNamesItsOwnField(text: String, field: String) throws {
        let lease = try LeaseAttributes.parse(text)
        do {
            let data = try lease.vxlanV6Data()
            Issue.record("expected an error, got \(data)")
        } catch {
            expectOneLine(error, field: field, mentions: field.hasSuffix("VNI") ? ["65535"] : ["aa:bb:cc:dd:ee:ff"])
        }
    }
}
