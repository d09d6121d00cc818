import Addressing
import Config
import Logging
import Synchronization

/// weftd's subnet.env (--subnet-file), which the CNI plugin and Docker read to address containers:
/// read back at start for the previous run's subnet, written for each lease, and kept. A file
/// truncated, deleted or edited while weftd runs would fail or misaddress every container started
/// meanwhile, so each resync puts back what weftd wrote.
final class SubnetFile: Sendable {
    let path: String
    private let logger: Logger
    /// The text last written; nil before the first lease. Held across the file operations, so a
    /// resync never puts an older lease's text back over a newer one.
    private let written = Mutex<String?>(nil)
    /// Failures to put the file back, each said once.
    private let problems: ProblemLog

    init(path: String, logger: Logger) {
        self.path = path
        self.logger = logger
        problems = ProblemLog(logger: logger)
    }

    /// FLANNEL_SUBNET of the file a previous run wrote, asked for first (flanneld does too); nil
    /// when there is none, or when it cannot be a lease under `config`, which is said in one line.
    func previousSubnet(fitting config: NetworkConfig) -> IPv4Prefix? {
        let subnet: IPv4Prefix?
        do {
            subnet = try SubnetEnv.read(path: path)?.subnet
        } catch {
            logger.warning("ignoring the previous subnet: \(error)")
            return nil
        }
        guard let subnet else { return nil }
        if let misfit = config.misfit(subnet) {
            logger.warning(
                "ignoring FLANNEL_SUBNET \(subnet) in \(path) from a previous run: \(misfit); not asking for it"
            )
            return nil
        }
        logger.info("\(path) names \(subnet) from a previous run; asking for it first")
        return subnet
    }

    /// FLANNEL_IPV6_SUBNET of the previous run, asked for together with FLANNEL_SUBNET; nil
    /// unless the network has IPv6 and it could be a lease under `config`.
    func previousIPv6Subnet(fitting config: NetworkConfig) -> IPv6Prefix? {
        guard let ipv6 = config.ipv6, let subnet = (try? SubnetEnv.read(path: path))?.ipv6Subnet, ipv6.fits(subnet)
        else { return nil }
        return subnet
    }

    /// Writes `env` atomically; its text is what the file must hold from now on.
    func write(_ env: SubnetEnv) throws(ConfigError) {
        try written.withLock { (written: inout String?) throws(ConfigError) in
            try env.write(to: path)
            written = env.text
        }
    }

    /// What a resync found.
    enum Check: Equatable {
        /// No lease yet: nothing to keep.
        case nothingWritten
        case intact
        /// The file was `missing`, `empty` or `changed` (or unreadable: the error) and is back.
        case restored(String)
        /// It differs and could not be put back: the error, said once until it changes.
        case failed(String)
    }

    /// Compares the file with what was last written and, when it differs, writes it again, saying
    /// so in one line.
    @discardableResult
    func keep() -> Check {
        let check = written.withLock { written -> Check in
            guard let written else { return .nothingWritten }
            let found: String
            do {
                guard let bytes = try AtomicFile.read(path) else { return restore(written, was: "missing") }
                if bytes.elementsEqual(written.utf8) { return .intact }
                found = bytes.isEmpty ? "empty" : "changed"
            } catch {
                found = "unreadable (\(error))"
            }
            return restore(written, was: found)
        }
        switch check {
        case .nothingWritten, .intact:
            break
        case .restored(let was):
            problems.clear()
            logger.warning("\(path) was \(was); wrote it again as weftd keeps it")
        case .failed(let error):
            problems.report(
                kind: error,
                "\(path) differs from what weftd wrote and cannot be put back: \(error); retrying every resync"
            )
        }
        return check
    }

    private func restore(_ text: String, was: String) -> Check {
        do {
            try AtomicFile.write(text, to: path)
            return .restored(was)
        } catch {
            return .failed("\(error)")
        }
    }
}
