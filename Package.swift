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
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.30.0"),
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
        .target(name: "ControlPlane", dependencies: ["Etcd", "Config", "Routes", "Addressing"], path: "Sources/ControlPlane"),

        // flannel's host-gw backend: one kernel route per peer, kept in step over rtnetlink; no userspace dataplane.
        .target(name: "HostGateway", dependencies: ["Engine", "Routes", "Addressing", "CShims"], path: "Sources/HostGateway"),

        // File I/O around the pure modules: pcap capture files through libpcap.
        .target(name: "Capture", dependencies: ["CShims"], path: "Sources/Capture"),

        // What the operator commands judge and show (config changes, lease rows, doctor's verdicts),
        // apart from the etcd reads and host probes that gather it: pure, tested without root.
        .target(name: "Operator", dependencies: ["Config", "Addressing"], path: "Sources/Operator"),

        // Executables.
        .executableTarget(
            name: "weft",
            dependencies: [
                "Addressing", "Packets", "Routes", "Config", "Forwarding", "Capture", "Engine",
                "Etcd", "ControlPlane", "Daemon", "Operator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/weft"
        ),

        // weftd, the flanneld drop-in: flags, interface choice, healthz, sd_notify, signals.
        .target(name: "Daemon", dependencies: ["Addressing", "Config", "CShims", "Etcd", "ControlPlane", "Engine", "Routes", "HostGateway",
                                              .product(name: "Logging", package: "swift-log")],
                path: "Sources/Daemon"),
        .executableTarget(name: "weftd", dependencies: ["Daemon", .product(name: "Logging", package: "swift-log")], path: "Sources/weftd"),

        // Seeded randomness shared by tests and benchmarks.
        .target(name: "TestSupport", path: "Tests/Support"),
        // The `.ownThread` test trait: tests that block run off the two-thread concurrency pool.
        .target(name: "TestThreads", dependencies: ["CShims"], path: "Tests/Threads"),

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
        .testTarget(name: "PacketsTests", dependencies: ["Packets", "Addressing", "TestSupport"]),
        .testTarget(name: "RoutesTests", dependencies: ["Routes", "Addressing", "TestSupport", "TestThreads"]),
        .testTarget(name: "ConfigTests", dependencies: ["Config", "Addressing", "TestSupport"]),
        .testTarget(name: "OperatorTests", dependencies: ["Operator", "Config", "Addressing"]),
        .testTarget(name: "EtcdTests", dependencies: ["Etcd", "TestSupport"]),
        .testTarget(name: "ControlPlaneTests", dependencies: ["ControlPlane", "Etcd", "Config", "Routes", "Addressing"]),
        .testTarget(name: "ForwardingTests", dependencies: ["Forwarding", "Packets", "Routes", "Addressing"]),
        .testTarget(
            name: "CaptureTests",
            dependencies: ["Capture", "Forwarding", "Packets", "Routes", "Config", "Addressing", "TestThreads"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(name: "DaemonTests", dependencies: ["Daemon", "Addressing", "Config", "ControlPlane", "Etcd", "Engine", "Routes", "HostGateway", "TestThreads"]),
        // Needs root: weftd's interface choice inside a network namespace. Skips otherwise.
        .testTarget(name: "DaemonIntegrationTests", dependencies: ["Daemon", "Addressing", "TestThreads"]),
        // Needs root: each test makes its own network namespace.
        .testTarget(name: "EngineTests", dependencies: ["Engine", "Forwarding", "Routes", "Packets", "Addressing", "TestSupport", "Capture", "TestThreads"]),
        // Plan tests run anywhere; the three-host namespace tests need root and skip otherwise.
        .testTarget(name: "HostGatewayTests", dependencies: ["HostGateway", "Engine", "Routes", "Addressing", "TestThreads"]),
        // Needs root: network namespaces, kernel VXLAN devices, tcpdump. Skips with a message otherwise.
        .testTarget(name: "IntegrationTests", dependencies: ["Capture", "Packets", "Addressing", "TestThreads"]),
        // Needs root, /usr/bin/etcd and iperf3: real weftd processes in namespaces. Skips otherwise.
        .testTarget(name: "WeftdIntegrationTests", dependencies: ["Config", "Addressing", "TestThreads"]),
    ]
)

// libFuzzer target for the packet and config parsers, built only by scripts/fuzz
// (`swift build -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library` needs no main).
if Context.environment["WEFT_FUZZ"] != nil {
    package.targets.append(.target(
        name: "WeftFuzz", dependencies: ["Addressing", "Packets", "Config"], path: "Fuzz/WeftFuzz"))
}
