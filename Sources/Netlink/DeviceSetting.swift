import Glibc
import SystemCalls

/// A per-device sysctl (`/proc/sys/net/ipv{4,6}/conf/<device>/<setting>`): it goes with the
/// device, and rtnetlink has no attribute for most of them (disable_ipv6, accept_ra, accept_local).
public enum DeviceSetting {
    public enum Family: String, Sendable {
        case ipv4
        case ipv6
    }

    /// Writes `value`; what went wrong, or nil. ENOENT means the device or the family is not there.
    public static func write(_ value: String, _ family: Family, _ device: String, _ setting: String) -> NetlinkError? {
        let path = "/proc/sys/net/\(family.rawValue)/conf/\(device)/\(setting)"
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        if fd < 0 { return NetlinkError("open", path, code: errno) }
        defer { close(fd) }
        do {
            try SystemCall.writeAll(fd, Array(value.utf8), path)
        } catch {
            return error
        }
        return nil
    }
}
