/// Where weftd serves its status endpoints locally, so `weft routes|stats` need no --healthz-port.
public enum StatusSocket {
    /// weftd's default: `weftd.sock` beside --subnet-file (so /run/flannel/weftd.sock), which keeps
    /// several weftd with their own subnet files (test beds) apart without another flag.
    public static func defaultPath(subnetFile: String) -> String {
        guard let slash = subnetFile.lastIndex(of: "/") else { return "weftd.sock" }
        let directory = subnetFile[..<slash]
        return (directory.isEmpty ? "" : String(directory)) + "/weftd.sock"
    }

    /// The default with weftd's default --subnet-file.
    public static let standardPath = "/run/flannel/weftd.sock"

    /// The endpoint paths, shared by server and client.
    public static let routesPath = "/v1/routes"
    public static let statsPath = "/v1/stats"
    public static let metricsPath = "/metrics"
}
