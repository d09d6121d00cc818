import ArgumentParser
import Config

/// The DaemonSet's init containers (dist/kubernetes/weft.yml): they put the CNI plugin and the
/// conflist onto the node from weft's own image, which has no shell or cp.
struct InstallCNI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install-cni",
        abstract:
            "Install the CNI plugin binary atomically (mode 0755): a temporary file beside the target, renamed over it.",
        discussion:
            "In weft's image: weft install-cni /opt/bin/weft-cni /opt/cni/bin/flannel. A runtime running the old plugin meanwhile keeps it; the next run gets the whole new one."
    )

    @Argument(help: "The plugin to copy, e.g. /opt/bin/weft-cni.") var source: String
    @Argument(help: "Where it goes, e.g. /opt/cni/bin/flannel.") var destination: String

    func run() throws {
        try reportingFailures { try AtomicFile.install(source, to: destination, mode: 0o755) }
    }
}

/// flannel's /opt/bin/install-conf, with its two arguments.
struct InstallConf: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install-conf",
        abstract: "Install a CNI network config atomically (mode 0644), as flannel's install-conf does.",
        discussion:
            "In weft's image: weft install-conf /etc/kube-flannel/cni-conf.json /etc/cni/net.d/10-flannel.conflist. The runtime never reads half a conflist."
    )

    @Argument(help: "The config to copy, e.g. /etc/kube-flannel/cni-conf.json.") var source: String
    @Argument(help: "Where it goes, e.g. /etc/cni/net.d/10-flannel.conflist.") var destination: String

    func run() throws {
        try reportingFailures { try AtomicFile.install(source, to: destination, mode: 0o644) }
    }
}
