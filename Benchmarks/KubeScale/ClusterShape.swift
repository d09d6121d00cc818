import Foundation

/// The cluster the stand-in holds: our node `self` (index 0) and peers `node-<i>`, each with the
/// /24 at index i of Network 10.224.0.0/11 (8,192 of them: a /12 holds only 4,096), a public-ip
/// in 198.18.0.0/15 and vxlan backend-data, annotated as flannel annotates them. Nodes added
/// during the churn take indices above the peers'.
enum ClusterShape {
    static let netConf =
        #"{"Network":"10.224.0.0/11","SubnetLen":24,"EnableNFTables":false,"Backend":{"Type":"vxlan"}}"#
    static let ownName = "self"
    static let maxPeers = 6_000
    static let subnetCount = 8_192

    static func podCIDR(_ index: Int) -> String {
        let base = (10 << 24) | (224 << 16)
        let network = base + (index << 8)
        return "\(network >> 24).\((network >> 16) & 255).\((network >> 8) & 255).0/24"
    }

    /// 198.18.0.0/15 offset by `value` + 1 (198.18.0.1 is ours).
    static func publicIP(_ value: Int) -> String {
        let address = (198 << 24) | (18 << 16) + (value + 1) % (1 << 17)
        return "\(address >> 24).\((address >> 16) & 255).\((address >> 8) & 255).\(address & 255)"
    }

    static func mac(_ index: Int) -> String {
        String(
            format: "0a:00:%02x:%02x:%02x:%02x",
            (index >> 24) & 255,
            (index >> 16) & 255,
            (index >> 8) & 255,
            index & 255
        )
    }

    static func peerName(_ index: Int) -> String { String(format: "node-%05d", index) }

    static func annotations(publicIP: String, mac: String) -> [String: String] {
        [
            "flannel.alpha.coreos.com/kube-subnet-manager": "true",
            "flannel.alpha.coreos.com/backend-type": "vxlan",
            "flannel.alpha.coreos.com/backend-data": #"{"VNI":1,"VtepMAC":"\#(mac)"}"#,
            "flannel.alpha.coreos.com/public-ip": publicIP,
        ]
    }

    static let adminToken = "admin-token-kube-scale"
    static let flannelToken = "flannel-token-kube-scale"
}

/// CLOCK_MONOTONIC in nanoseconds: one clock for both processes.
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

let processStart = monotonicNanoseconds()
