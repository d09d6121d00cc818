import Config
import ControlPlane
import Foundation
import KubeModel
import Timing

/// Our lease in Kubernetes mode, as flannel's AcquireLease takes it: the subnet is our Node's
/// podCIDR (assigned by kube-controller-manager, never chosen here), and our attributes go on the
/// Node as annotations in one strategic-merge PATCH of nodes/<name>/status holding only the keys
/// that changed. flannel never renews; weftd checks again when our node's annotations change
/// (someone edited them), when asked, and every few minutes, and puts them back if needed.
actor KubeLeaseKeeper: LeaseKeeper {
    /// How often our node is checked without a reason.
    static let checkInterval: Duration = .seconds(300)

    nonisolated let changes: AsyncStream<LeaseChange>
    private let sink: AsyncStream<LeaseChange>.Continuation
    private let manager: KubeSubnetManager
    private let request: LeaseRequest
    private let log: LogHandler
    private var current: AcquiredLease?
    /// The NetworkUnavailable=False condition went out (flannel sends it once per start).
    private var conditionReported = false
    private var noted: Set<String> = []
    private var checkPending = false
    private var wakeup: CheckedContinuation<Void, Never>?
    private var isRunning = false

    init(manager: KubeSubnetManager, request: LeaseRequest, log: @escaping LogHandler) {
        self.manager = manager
        self.request = request
        self.log = log
        (changes, sink) = AsyncStream.makeStream(of: LeaseChange.self)
    }

    func acquire() async throws(LeaseError) -> AcquiredLease {
        if let current { return current }
        let lease = try await take()
        current = lease
        log(
            .info,
            "acquired \(lease.subnets) (\(lease.location)), \(Self.addresses(lease.attributes, ipv6Only: lease.subnet == nil))"
        )
        sink.yield(.acquired(lease))
        return lease
    }

    /// Reads our node, checks its podCIDR against the Network, and patches what differs.
    private func take() async throws(LeaseError) -> AcquiredLease {
        let config = try await manager.networkConfig()
        do throws(KubeError) {
            let name = try await manager.nodeNames.name()
            let node = try APIDecoding.node(try await manager.api.call(.getNode(name)))
            let own = try OwnLease.acquire(
                node: node,
                network: config.network,
                ipv6Network: config.ipv6?.network,
                attributes: request.attributes,
                keys: manager.keys
            )
            if let note = own.subnet.note(node: name), noted.insert(note).inserted { log(.info, note) }
            var attributes = request.attributes
            attributes.publicIP = own.advertisedPublicIP
            if config.ipv6 != nil { attributes.publicIPv6Address = own.advertisedPublicIPv6 }
            if let patch = own.annotationPatch {
                _ = try await manager.api.call(.patchNodeStatus(name), body: patch)
                let type = request.attributes.backendType
                log(
                    .info,
                    "annotated node \(name) with this host's lease attributes (\(Self.addresses(attributes, ipv6Only: config.isIPv6Only)), backend-type \(type.isEmpty ? "empty, as flannel's udp backend writes it" : type))"
                )
            }
            if manager.setNodeNetworkUnavailable, !conditionReported {
                // flannel's CompleteLease: one try, a failure only logged.
                do {
                    _ = try await manager.api.call(
                        .patchNodeStatus(name),
                        body: NetworkUnavailablePatch.body(at: Date())
                    )
                    conditionReported = true
                } catch {
                    log(.warning, "cannot set node \(name)'s NetworkUnavailable condition to False: \(error)")
                    conditionReported = true
                }
            }
            return AcquiredLease(
                subnet: own.subnet.subnet,
                ttl: nil,
                origin: .assigned,
                config: config,
                attributes: attributes,
                location: "node \(name)'s podCIDR",
                ipv6Subnet: own.subnet.ipv6Subnet
            )
        } catch {
            throw LeaseError(kube: error)
        }
    }

    /// Until cancelled: acquires first if needed, then checks our node when told to or every
    /// `checkInterval`. A podCIDR that changed (the node was deleted and re-created) is a loss
    /// followed by an acquisition; an API server that is away changes nothing.
    func run() async {
        guard !isRunning else { return }
        isRunning = true
        defer { isRunning = false }
        var failures = 0
        while !Task.isCancelled {
            if current == nil {
                do {
                    _ = try await acquire()
                    failures = 0
                } catch {
                    log(failures == 0 ? .warning : .debug, "cannot acquire a subnet lease: \(error); retrying")
                    failures += 1
                    await sleep(for: Backoff(initial: .seconds(1), maximum: .seconds(30)).delay(attempt: failures))
                }
                continue
            }
            await sleep(for: Self.checkInterval)
            if Task.isCancelled { break }
            checkPending = false
            await check()
        }
    }

    private func check() async {
        guard let held = current else { return }
        do throws(LeaseError) {
            let lease = try await take()
            if lease.leaseKey != held.leaseKey {
                log(.warning, "LOST lease \(held.label): \(lease.location) is now \(lease.label)")
                sink.yield(.lost(held, reason: "the node's podCIDR changed to \(lease.label)"))
                current = lease
                sink.yield(.acquired(lease))
            } else if lease != held {
                current = lease
                sink.yield(.renewed(lease))
            }
        } catch {
            log(
                .warning,
                "cannot check this node's lease (\(held.location)): \(error); the dataplane keeps \(held.label)"
            )
        }
    }

    /// "public-ip 198.18.0.1, public-ipv6 2001:db8::1", or the IPv6 address alone on an IPv6-only network.
    private static func addresses(_ attributes: LeaseAttributes, ipv6Only: Bool) -> String {
        let publicIPv6 = attributes.publicIPv6.map { "public-ipv6 \($0)" }
        if ipv6Only { return publicIPv6 ?? "no public-ipv6" }
        return (["public-ip \(attributes.publicIP)"] + [publicIPv6].compactMap { $0 }).joined(separator: ", ")
    }

    func recheck() {
        checkPending = true
        wake()
    }

    func noticeOwnRecordChange(version _: Int64) {
        checkPending = true
        wake()
    }

    private func sleep(for duration: Duration) async {
        guard !checkPending else { return }
        let timer = Task {
            try? await Task.sleep(for: duration)
            self.wake()
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { wakeup = $0 }
        } onCancel: {
            Task { await self.wake() }
        }
        timer.cancel()
    }

    private func wake() {
        wakeup?.resume()
        wakeup = nil
    }
}
