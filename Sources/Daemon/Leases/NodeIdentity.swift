import ControlPlane
import Foundation
import Logging

/// This node's identity beside its PublicIP (the lease's owner record): --node-id, else the
/// systemd machine ID, which survives reboots and differs between machines (a cloned VM that
/// kept its machine-id needs `systemd-machine-id-setup` or --node-id).
enum NodeIdentity {
    static let machineIDPath = "/etc/machine-id"

    /// nil (no owner records: flannel's rule alone) when there is no ID to be had, said once.
    static func resolve(nodeID: String, logger: Logger, machineIDPath: String = machineIDPath) -> NodeOwner? {
        let hostname = ProcessInfo.processInfo.hostName
        if !nodeID.isEmpty { return NodeOwner(nodeID: nodeID, hostname: hostname) }
        let machineID = ((try? String(contentsOfFile: machineIDPath, encoding: .utf8)) ?? "")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        guard !machineID.isEmpty else {
            logger.warning(
                "no \(machineIDPath) to tell this node apart from another with the same PublicIP; give --node-id (any string unique to this machine)"
            )
            return nil
        }
        return NodeOwner(nodeID: machineID, hostname: hostname)
    }
}
