/// What both forwarding dataplanes watch for beside their peers: the engine's workers, the kernel
/// vxlan devices. Every `period` it asks `failure` what broke; the first answer goes to `report`
/// once (the runner then builds the dataplane again), and the check ends there or when cancelled.
enum HealthCheck {
    /// How often: a broken dataplane is reported within a second.
    static let period: Duration = .seconds(1)

    static func run(report: @Sendable (String) -> Void, _ failure: () -> String?) async {
        while true {
            do { try await Task.sleep(for: period) } catch { return }
            if let reason = failure() {
                report(reason)
                return
            }
        }
    }
}
