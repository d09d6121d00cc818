import Addressing
import Config
import ControlPlane
import Foundation
import Logging

/// The VTEP MAC this host publishes in its vxlan lease. Peers (kernel flannel.1 devices
/// included) hold it in permanent neighbour and FDB entries, so it must survive restarts: the
/// one in our existing lease wins, then the one kept in the file beside subnet.env, else a new
/// random locally administered MAC, which is then kept in that file.
enum VTEPIdentity {
    /// The flannel-v6 device's MAC (BackendV6Data's VtepMAC): the IPv4 device's with one bit of
    /// its second byte flipped, so it is as stable as that one without a file of its own, and
    /// stays locally administered and unicast (the first byte is kept).
    static func ipv6MAC(from mac: MACAddress) -> MACAddress {
        MACAddress(mac.value ^ (1 << 32))
    }

    /// `/run/flannel/subnet.env` → `/run/flannel/subnet.vtep-mac`.
    static func path(subnetFile: String) -> String {
        (subnetFile.hasSuffix(".env") ? String(subnetFile.dropLast(4)) : subnetFile) + ".vtep-mac"
    }

    static func choose(
        subnets: any SubnetManager,
        publicIP: IPv4Address,
        subnetFile: String,
        logger: Logger
    ) async throws(LeaseError) -> MACAddress {
        let file = path(subnetFile: subnetFile)
        let fromLease = try await subnets.storedVTEPMAC(publicIP: publicIP)
        let fromFile = (try? String(contentsOfFile: file, encoding: .utf8))
            .flatMap { MACAddress($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        let mac: MACAddress
        if let fromLease {
            mac = fromLease
            logger.info("VTEP MAC \(mac), from our existing lease")
        } else if let fromFile {
            mac = fromFile
            logger.info("VTEP MAC \(mac), from \(file)")
        } else {
            var generator = SystemRandomNumberGenerator()
            mac = .randomLocallyAdministered(using: &generator)
            logger.info("VTEP MAC \(mac), new")
        }
        if fromFile != mac {
            do {
                try AtomicFile.write("\(mac)\n", to: file)
            } catch {
                logger.warning(
                    "cannot keep the VTEP MAC: \(error); a restart will publish a new one and kernel peers must relearn it"
                )
            }
        }
        return mac
    }
}
