// swift-tools-version: 6.1
import PackageDescription

// Dependencies point one way: executables → engine / control plane → pure modules → CShims.
// Pure modules (Addressing, Packets, Routes, Config) make no syscalls and test without root.
let package = Package(
    name: "Weft",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "weft", targets: ["weft"]),
        .executable(name: "weftd", targets: ["weftd"]),
        .executable(name: "weft-cni", targets: ["weft-cni"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.30.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.26.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // The only place C is called.
        .target(
            name: "CShims",
            path: "CShims",
            linkerSettings: [.linkedLibrary("uring"), .linkedLibrary("pcap")]
        ),

        // Pure modules.
        .target(name: "Addressing", path: "Sources/Addressing"),
        .target(name: "Packets", dependencies: ["Addressing"], path: "Sources/Packets"),
        .target(name: "Routes", dependencies: ["Addressing"], path: "Sources/Routes"),
        .target(name: "Config", dependencies: ["Addressing"], path: "Sources/Config"),
        // The per-packet pipeline (validate, look up, TTL, encap/decap, anti-spoofing) shared by the
        // engine and by `weft replay`, so a replayed capture exercises exactly what the engine runs.
        .target(name: "Forwarding", dependencies: ["Addressing", "Packets", "Routes"], path: "Sources/Forwarding"),

        // The io_uring dataplane: TUN queues, UDP sockets, rings and provided buffers.
        .target(name: "Engine", dependencies: ["CShims", "Packets", "Routes", "Forwarding", "Addressing"], path: "Sources/Engine"),

        // Control plane: an etcd v3 client over etcd's JSON gateway.
        .target(
            name: "Etcd",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"), "Addressing",
            ],
            path: "Sources/Etcd"
        ),

        // flannel's lease manager and peer watcher: etcd leases in, route-table snapshots out.
        .target(name: "ControlPlane", dependencies: ["Etcd", "Config", "Routes", "Addressing",
                                                    .product(name: "CoreMetrics", package: "swift-metrics")],
                path: "Sources/ControlPlane"),

        // flannel's host-gw backend: one kernel route per peer, kept in step over rtnetlink; no userspace dataplane.
        .target(name: "HostGateway", dependencies: ["Engine", "Routes", "Addressing", "CShims"], path: "Sources/HostGateway"),

        // flanneld's masquerade and forward rules as one nftables table (`table ip weft`): the ruleset
        // and the listing comparison are pure; the keeper runs the nft tool (control plane only).
        .target(name: "TrafficRules", dependencies: ["Addressing", "Spawn"], path: "Sources/TrafficRules"),

        // Running a tool to completion (nft, CNI delegates) with no descriptor left behind.
        .target(name: "Spawn", dependencies: ["CShims"], path: "Sources/Spawn"),

        // File I/O around the pure modules: pcap capture files through libpcap.
        .target(name: "Capture", dependencies: ["CShims"], path: "Sources/Capture"),

        // flannel's CNI meta-plugin: net conf and subnet.env in, a bridge/host-local delegate config
        // out; the only I/O is the saved configs (SavedDelegates) and running the delegate.
        .target(name: "CNI", dependencies: ["Config", "Addressing", "Spawn"], path: "Sources/CNI"),

        // What weftd reports about itself (/v1/routes, /v1/stats) as Codable values, and the small
        // HTTP-over-Unix-socket client `weft` reads them with: one definition, so the two cannot drift.
        .target(name: "Status", path: "Sources/Status"),

        // What the operator commands judge and show (config changes, lease rows, doctor's verdicts),
        // apart from the etcd reads and host probes that gather it: pure, tested without root.
        .target(name: "Operator", dependencies: ["Config", "Addressing"], path: "Sources/Operator"),

        // Executables.
        .executableTarget(
            name: "weft",
            dependencies: [
                "Addressing", "Packets", "Routes", "Config", "Forwarding", "Capture", "Engine", "Status",
                "Etcd", "ControlPlane", "Daemon", "Operator", "TrafficRules", "Spawn",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/weft"
        ),

        // weftd, the flanneld drop-in: flags, interface choice, healthz, sd_notify, signals.
        .target(name: "Daemon", dependencies: ["Addressing", "Config", "CShims", "Etcd", "ControlPlane", "Engine", "Routes", "HostGateway",
                                              "TrafficRules", "Packets", "Forwarding", "Status",
                                              .product(name: "Logging", package: "swift-log"),
                                              .product(name: "NIOCore", package: "swift-nio"),
                                              .product(name: "NIOPosix", package: "swift-nio"),
                                              .product(name: "NIOHTTP1", package: "swift-nio"),
                                              .product(name: "Metrics", package: "swift-metrics"),
                                              .product(name: "Prometheus", package: "swift-prometheus")],
                path: "Sources/Daemon"),
        .executableTarget(name: "weftd", dependencies: ["Daemon", .product(name: "Logging", package: "swift-log")], path: "Sources/weftd"),
        // The CNI plugin a runtime runs (as the conflist's type): ADD/DEL/CHECK/VERSION.
        .executableTarget(name: "weft-cni", dependencies: ["CNI"], path: "Sources/weft-cni"),

        // Seeded randomness shared by tests and benchmarks.
        .target(name: "TestSupport", path: "Tests/Support"),
        // The `.ownThread` test trait: tests that block run off the two-thread concurrency pool.
        .target(name: "TestThreads", dependencies: ["CShims"], path: "Tests/Threads"),
        // A real etcd per test (TLS, auth, halt/resume) for every test target that talks to etcd.
        .target(name: "EtcdTestSupport", dependencies: ["Etcd"], path: "Tests/EtcdSupport"),

        // A Kubernetes API server for tests (TLS, bearer tokens, flannel's RBAC, nodes and pods with
        // list/watch/patch as kube-apiserver answers them, plus controls to expire, throttle and drop).
        // Test infrastructure only: no product ships it.
        .target(
            name: "KubeTestServer",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTPCompression", package: "swift-nio-extras"),
            ],
            path: "Tests/KubeServer",
            exclude: ["README.md"]
        ),
        // The same server as a process, for namespace tests that run it under `ip netns exec`.
        .executableTarget(name: "weft-kube-test-server", dependencies: ["KubeTestServer"], path: "Tests/KubeServerMain"),

        // Micro-benchmarks: `swift package benchmark` (see README).
        .executableTarget(
            name: "PacketBenchmarks",
            dependencies: [
                "Addressing", "Packets", "Routes", "TestSupport",
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/PacketBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),

        .testTarget(name: "AddressingTests", dependencies: ["Addressing"]),
        .testTarget(name: "SpawnTests", dependencies: ["Spawn"]),
        .testTarget(name: "PacketsTests", dependencies: ["Packets", "Addressing", "TestSupport"]),
        .testTarget(name: "RoutesTests", dependencies: ["Routes", "Addressing", "TestSupport", "TestThreads"]),
        .testTarget(name: "CNITests", dependencies: ["CNI", "Config", "Addressing", "TestThreads"]),
        .testTarget(name: "ConfigTests", dependencies: ["Config", "Addressing", "TestSupport"]),
        .testTarget(name: "OperatorTests", dependencies: ["Operator", "Config", "Addressing"]),
        // The fake API server against real kubectl (Debian's 1.20 and a newer one when present) and raw HTTP.
        .testTarget(name: "KubeTestServerTests", dependencies: ["KubeTestServer"]),
        .testTarget(name: "EtcdTests", dependencies: ["Etcd", "TestSupport", "EtcdTestSupport"]),
        .testTarget(name: "ControlPlaneTests", dependencies: ["ControlPlane", "Etcd", "Config", "Routes", "Addressing", "EtcdTestSupport"]),
        .testTarget(name: "ForwardingTests", dependencies: ["Forwarding", "Packets", "Routes", "Addressing"]),
        .testTarget(
            name: "CaptureTests",
            dependencies: ["Capture", "Forwarding", "Packets", "Routes", "Config", "Addressing", "TestThreads"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(name: "DaemonTests", dependencies: ["Daemon", "Addressing", "Config", "ControlPlane", "Etcd", "Engine", "Routes", "HostGateway", "Status", "TestThreads",
                                                        .product(name: "Metrics", package: "swift-metrics")]),
        // Ruleset and listing tests run anywhere; the keeper's tests run real nft in a namespace (root) and skip otherwise.
        .testTarget(name: "TrafficRulesTests", dependencies: ["TrafficRules", "Addressing", "TestThreads"]),
        // Needs root: weftd's interface choice inside a network namespace. Skips otherwise.
        .testTarget(name: "DaemonIntegrationTests", dependencies: ["Daemon", "Addressing", "TestThreads"]),
        // Needs root: each test makes its own network namespace.
        .testTarget(name: "EngineTests", dependencies: ["Engine", "Forwarding", "Routes", "Packets", "Addressing", "TestSupport", "Capture", "TestThreads"]),
        // Plan tests run anywhere; the three-host namespace tests need root and skip otherwise.
        .testTarget(name: "HostGatewayTests", dependencies: ["HostGateway", "Engine", "Routes", "Addressing", "TestThreads"]),
        // Needs root: network namespaces, kernel VXLAN devices, tcpdump. Skips with a message otherwise.
        .testTarget(name: "IntegrationTests", dependencies: ["Capture", "Packets", "Addressing", "TestThreads"]),
        // Needs root and containernetworking-plugins: weft-cni run as a runtime runs it, delegating to
        // the real bridge and host-local, containers on two hosts joined by `weft dataplane`. Skips otherwise.
        .testTarget(name: "CNIIntegrationTests", dependencies: ["Addressing", "TestThreads"]),
        // Needs root, /usr/bin/etcd and iperf3: real weftd processes in namespaces. Skips otherwise.
        .testTarget(name: "WeftdIntegrationTests", dependencies: ["Config", "Addressing", "Status", "TestSupport", "TestThreads"]),
    ]
)

// libFuzzer target for the packet and config parsers, built only by scripts/fuzz
// (`swift build -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library` needs no main).
if Context.environment["WEFT_FUZZ"] != nil {
    package.targets.append(.target(
        name: "WeftFuzz", dependencies: ["Addressing", "Packets", "Config"], path: "Fuzz/WeftFuzz"))
}
