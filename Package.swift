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
        .package(url: "https://github.com/apple/swift-nio", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.30.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.26.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // Without its SubprocessFoundation trait: Spawn takes and gives bytes, and weft-cni needs no more Foundation.
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2", traits: []),
        .package(url: "https://github.com/apple/swift-system", from: "1.5.0"),
    ],
    targets: [
        // The only place C is called. liburing and libpcap are linked by the targets that call them
        // (Engine, Capture), so weft-cni, which runs on nodes as /opt/cni/bin/flannel, needs neither.
        .target(name: "CShims", path: "CShims"),

        // Pure modules.
        .target(name: "Addressing", path: "Sources/Addressing"),
        .target(name: "Packets", dependencies: ["Addressing"], path: "Sources/Packets"),
        .target(name: "Routes", dependencies: ["Addressing"], path: "Sources/Routes"),
        // Config names backends with Routes' `Backend`: one enum from net-conf.json to the route table.
        .target(name: "Config", dependencies: ["Addressing", "Routes", "SystemCalls"], path: "Sources/Config"),
        // The per-packet pipeline (validate, look up, TTL, encap/decap, anti-spoofing) shared by the
        // engine and by `weft replay`, so a replayed capture exercises exactly what the engine runs.
        .target(name: "Forwarding", dependencies: ["Addressing", "Packets", "Routes"], path: "Sources/Forwarding"),

        // rtnetlink: links (a kernel vxlan device among them), addresses, routes, neighbours and FDB
        // entries, and the engine's TUN set up from them (TUNLink, which also writes the device's two
        // sysctls: rtnetlink cannot set disable_ipv6); its NetlinkError is SystemCallError under the module's name.
        .target(name: "Netlink", dependencies: ["CShims", "Addressing", "SystemCalls"], path: "Sources/Netlink"),

        // The io_uring dataplane: TUN queues, UDP sockets, rings and provided buffers.
        .target(
            name: "Engine",
            dependencies: [
                "Timing", "CShims", "Packets", "Routes", "Forwarding", "Addressing", "Netlink", "SystemCalls",
            ],
            path: "Sources/Engine",
            linkerSettings: [.linkedLibrary("uring")]
        ),

        // A small HTTP/1.1 client on swift-nio for the control plane's API servers (etcd's gateway,
        // next the Kubernetes API): TCP keepalive and a deadline on every connection, idle
        // connections reused per origin, streaming bodies in both directions.
        .target(
            name: "HTTP1",
            dependencies: [
                "Timing",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Sources/HTTP1"
        ),

        // Control plane: an etcd v3 client over etcd's JSON gateway.
        .target(
            name: "Etcd",
            dependencies: [
                "Timing",
                "HTTP1", "Addressing",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Sources/Etcd"
        ),

        // The subnet-manager seam (flannel's subnet.Manager): the protocol weftd runs, the lease
        // and error types, and the peer table that turns any store's leases into routes.
        .target(
            name: "ControlPlane",
            dependencies: [
                "Timing", "Config", "Routes", "Addressing",
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            path: "Sources/ControlPlane"
        ),
        // flannel's Kubernetes subnet manager (--kube-subnet-mgr): leases from Nodes' podCIDRs and annotations.
        .target(
            name: "KubeSubnets",
            dependencies: [
                "Timing", "ControlPlane", "KubeModel", "HTTP1", "Config", "Routes", "Addressing",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Sources/KubeSubnets"
        ),
        // flannel's etcd subnet manager: lease manager and peer watcher over etcd, route-table snapshots out.
        .target(
            name: "EtcdSubnets",
            dependencies: [
                "Timing", "ControlPlane", "Etcd", "Config", "Routes", "Addressing",
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            path: "Sources/EtcdSubnets"
        ),

        // flannel's host-gw backend: one kernel route per peer, kept in step over rtnetlink; no userspace dataplane.
        .target(
            name: "HostGateway",
            dependencies: ["Netlink", "Routes", "Addressing", "CShims"],
            path: "Sources/HostGateway"
        ),
        // flanneld's vxlan dataplane: the kernel's flannel.<VNI> device and its per-peer neighbour, FDB
        // and route entries, programmed over rtnetlink from the peer routes; the plans are pure.
        .target(
            name: "KernelVXLAN",
            dependencies: ["Netlink", "Routes", "Addressing", "CShims"],
            path: "Sources/KernelVXLAN"
        ),

        // flanneld's masquerade and forward rules as one nftables table (`table ip weft`): the ruleset
        // and the listing comparison are pure; the keeper runs the nft tool (control plane only).
        .target(name: "TrafficRules", dependencies: ["Addressing", "Spawn"], path: "Sources/TrafficRules"),

        // Backoff and Duration in whole units: what every retry loop and every timeout conversion shares.
        .target(name: "Timing", path: "Sources/Timing"),

        // The one place EINTR is retried and errno becomes an error (read, write, send, recv, poll, waitpid).
        .target(name: "SystemCalls", path: "Sources/SystemCalls"),

        // Running a tool to completion (nft, CNI delegates) through swift-subprocess: output bounded,
        // a deadline, no descriptor left behind.
        .target(
            name: "Spawn",
            dependencies: [
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Sources/Spawn"
        ),

        // File I/O around the pure modules: pcap capture files through libpcap.
        .target(
            name: "Capture",
            dependencies: ["CShims"],
            path: "Sources/Capture",
            linkerSettings: [.linkedLibrary("pcap")]
        ),

        // flannel's CNI meta-plugin: net conf and subnet.env in, a bridge/host-local delegate config
        // out; the only I/O is the saved configs (SavedDelegates) and running the delegate.
        .target(name: "CNI", dependencies: ["Config", "Addressing", "Spawn"], path: "Sources/CNI"),

        // What weftd reports about itself (/v1/routes, /v1/stats) as Codable values, and the small
        // HTTP-over-Unix-socket client `weft` reads them with: one definition, so the two cannot drift.
        .target(name: "Status", dependencies: ["SystemCalls"], path: "Sources/Status"),

        // What the operator commands judge and show (config changes, lease rows, doctor's verdicts),
        // apart from the etcd reads and host probes that gather it: pure, tested without root.
        .target(name: "Operator", dependencies: ["Config", "Addressing"], path: "Sources/Operator"),

        // flannel's Kubernetes subnet manager without the network: client config (kubeconfig, in-cluster),
        // API models and the watch-stream decoder, annotations to leases, the status patches, and the
        // node mirror a list+watch keeps. The only I/O is reading kubeconfig, token and CA files.
        .target(
            name: "KubeModel",
            dependencies: ["Config", "Addressing", "SystemCalls", .product(name: "Yams", package: "Yams")],
            path: "Sources/KubeModel"
        ),

        // Executables.
        .executableTarget(
            name: "weft",
            dependencies: [
                "Addressing", "Packets", "Routes", "Config", "Forwarding", "Capture", "Engine", "Netlink", "Status",
                "Etcd", "ControlPlane", "EtcdSubnets", "KubeSubnets", "KubeModel", "Daemon", "Operator", "TrafficRules",
                "Spawn",
                "KernelVXLAN", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/weft"
        ),

        // weftd, the flanneld drop-in: flags, interface choice, healthz, sd_notify, signals.
        .target(
            name: "Daemon",
            dependencies: [
                "Timing", "Addressing", "Config", "CShims", "Etcd", "ControlPlane", "EtcdSubnets", "KubeSubnets",
                "Engine", "Netlink", "Routes", "HostGateway",
                "KernelVXLAN", "TrafficRules", "Packets", "Forwarding", "Status", "SystemCalls", "Operator",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            path: "Sources/Daemon"
        ),
        .executableTarget(
            name: "weftd",
            dependencies: ["Daemon", .product(name: "Logging", package: "swift-log")],
            path: "Sources/weftd"
        ),
        // The CNI plugin a runtime runs (as the conflist's type): ADD/DEL/CHECK/VERSION.
        .executableTarget(name: "weft-cni", dependencies: ["CNI"], path: "Sources/weft-cni"),

        // Seeded randomness shared by tests and benchmarks.
        .target(name: "TestSupport", path: "Tests/Support"),
        // The `.ownThread` test trait: tests that block run off the two-thread concurrency pool; and
        // TiedProcess, a long-lived child (etcd) that dies with the test runner.
        .target(name: "TestThreads", dependencies: ["CShims"], path: "Tests/Threads"),
        // Temporary files and the one-line error check shared by ConfigTests and ConfigRootTests.
        .target(name: "ConfigTestSupport", dependencies: ["Config"], path: "Tests/ConfigSupport"),
        // The rulesets shared by TrafficRulesTests and TrafficRulesRootTests.
        .target(
            name: "TrafficRulesTestSupport",
            dependencies: ["TrafficRules", "Addressing"],
            path: "Tests/TrafficRulesSupport"
        ),
        // A real etcd per test (TLS, auth, halt/resume) for every test target that talks to etcd.
        .target(
            name: "EtcdTestSupport",
            dependencies: ["Etcd", "TestSupport", "TestThreads"],
            path: "Tests/EtcdSupport"
        ),
        // For TiedProcessTests: starts a child through TestThreads' TiedProcess, then waits to be SIGKILLed.
        .executableTarget(
            name: "weft-tied-process-helper",
            dependencies: ["TestThreads"],
            path: "Tests/TiedProcessHelper"
        ),

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
                "TestSupport",
            ],
            path: "Tests/KubeServer",
            exclude: ["README.md"]
        ),
        // The same server as a process, for namespace tests that run it under `ip netns exec`.
        .executableTarget(
            name: "weft-kube-test-server",
            dependencies: ["KubeTestServer"],
            path: "Tests/KubeServerMain"
        ),

        // Baselines that are not production code: flannel's linear route cache and the copying
        // segmenter, measured against the engine's paths and used by the tests as second opinions.
        .target(
            name: "ReferencePaths",
            dependencies: ["Addressing", "Packets", "Routes"],
            path: "Benchmarks/ReferencePaths"
        ),

        // Micro-benchmarks: `swift package benchmark` (see README).
        .executableTarget(
            name: "PacketBenchmarks",
            dependencies: [
                "Addressing", "Forwarding", "Packets", "Routes", "ReferencePaths", "TestSupport",
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/PacketBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),

        // weftd's Kubernetes node watcher at 5,000 nodes against the API stand-in (see its README):
        // `swift build -c release --product KubeScaleBenchmark`, then run it.
        .executableTarget(
            name: "KubeScaleBenchmark",
            dependencies: [
                "KubeSubnets", "KubeTestServer", "ControlPlane", "Config", "Routes", "Addressing", "TestSupport",
            ],
            path: "Benchmarks/KubeScale",
            exclude: ["README.md", "results"]
        ),

        .testTarget(name: "AddressingTests", dependencies: ["Addressing"]),
        .testTarget(name: "SpawnTests", dependencies: ["Spawn"]),
        .testTarget(name: "SystemCallsTests", dependencies: ["SystemCalls"]),
        .testTarget(name: "TimingTests", dependencies: ["Timing"]),
        .testTarget(
            name: "PacketsTests",
            dependencies: ["Packets", "Addressing", "ReferencePaths", "TestSupport", "TestThreads"]
        ),
        .testTarget(
            name: "RoutesTests",
            dependencies: ["Routes", "Addressing", "ReferencePaths", "TestSupport", "TestThreads"]
        ),
        .testTarget(name: "CNITests", dependencies: ["CNI", "Config", "Addressing", "TestThreads"]),
        .testTarget(
            name: "ConfigTests",
            dependencies: ["Config", "ConfigTestSupport", "Addressing", "TestSupport", "TestThreads"]
        ),
        .testTarget(name: "OperatorTests", dependencies: ["Operator", "Config", "Addressing"]),
        // Fixtures are read from the source tree (#filePath), so relative kubeconfig paths resolve as written.
        .testTarget(
            name: "KubeModelTests",
            dependencies: ["KubeModel", "Config", "Addressing", "TestThreads"],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "HTTP1Tests",
            dependencies: [
                "HTTP1",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"), "TestSupport",
            ]
        ),
        // The fake API server against real kubectl (Debian's 1.20 and a newer one when present) and raw HTTP.
        .testTarget(name: "KubeTestServerTests", dependencies: ["KubeTestServer", "TestSupport", "TestThreads"]),
        .testTarget(
            name: "EtcdTests",
            dependencies: ["Timing", "Etcd", "TestSupport", "EtcdTestSupport", "TestThreads"]
        ),
        .testTarget(
            name: "ControlPlaneTests",
            dependencies: ["ControlPlane", "Config", "Routes", "Addressing", "TestSupport", "TestThreads"]
        ),
        .testTarget(
            name: "KubeSubnetsTests",
            dependencies: [
                "KubeSubnets", "KubeTestServer", "ControlPlane", "Config", "Routes", "Addressing", "TestSupport",
            ]
        ),
        .testTarget(
            name: "EtcdSubnetsTests",
            dependencies: [
                "Timing", "EtcdSubnets", "ControlPlane", "Etcd", "Config", "Routes", "Addressing", "EtcdTestSupport",
                "TestSupport",
            ]
        ),
        .testTarget(name: "ForwardingTests", dependencies: ["Forwarding", "Packets", "Routes", "Addressing"]),
        .testTarget(
            name: "CaptureTests",
            dependencies: [
                "Capture", "Forwarding", "Packets", "Routes", "Config", "Addressing", "TestSupport", "TestThreads",
            ],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "DaemonTests",
            dependencies: [
                "Daemon", "Addressing", "Config", "ControlPlane", "EtcdSubnets", "Etcd", "Engine", "Routes",
                "HostGateway", "Status", "TestSupport", "TestThreads", "TrafficRules",
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .testTarget(
            name: "TrafficRulesTests",
            dependencies: ["TrafficRules", "TrafficRulesTestSupport", "Addressing"]
        ),
        // The engine's configuration, counters and source ports, and two engines on memory TUNs and
        // loopback sockets: its forwarding, drops and offload paths without a kernel device.
        .testTarget(
            name: "EngineTests",
            dependencies: [
                "Engine", "Forwarding", "Routes", "Packets", "Addressing", "CShims", "TestSupport", "TestThreads",
            ]
        ),
        .testTarget(name: "HostGatewayTests", dependencies: ["HostGateway", "Netlink", "Routes", "Addressing"]),
        .testTarget(
            name: "KernelVXLANTests",
            dependencies: ["KernelVXLAN", "Netlink", "Routes", "Addressing", "CShims"]
        ),
        .testTarget(name: "NetlinkTests", dependencies: ["Netlink", "Addressing", "CShims"]),

        // Root: a target named <Module>RootTests holds that module's tests that only a kernel can show
        // (network namespaces, TUN devices, netlink, nft), the <Module>Tests beside it what runs as any
        // user; the *IntegrationTests below run the built executables end to end, also as root. Without
        // root they skip with a message; `swift test --skip 'RootTests|IntegrationTests'` leaves them out.

        // chattr +i and +a on subnet.env and its directory: only root sets them.
        .testTarget(name: "ConfigRootTests", dependencies: ["Config", "ConfigTestSupport", "TestSupport"]),
        // The keepers run real nft in a namespace.
        .testTarget(
            name: "TrafficRulesRootTests",
            dependencies: ["TrafficRules", "TrafficRulesTestSupport", "Addressing", "TestThreads"]
        ),
        // weftd's interface choice inside a network namespace.
        .testTarget(name: "DaemonRootTests", dependencies: ["Daemon", "Addressing", "TestSupport", "TestThreads"]),
        // Each test makes its own network namespaces: TUN devices, the engine between two or three hosts,
        // offloads against the kernel's own segmentation, `weft dataplane` as a process.
        .testTarget(
            name: "EngineRootTests",
            dependencies: [
                "Engine", "Netlink", "Forwarding", "Routes", "Packets", "Addressing", "TestSupport", "Capture",
                "TestThreads",
            ]
        ),
        // Three hosts' kernel routes in namespaces, and DirectRouting's routes through an underlay.
        .testTarget(
            name: "HostGatewayRootTests",
            dependencies: ["HostGateway", "Netlink", "Routes", "Addressing", "TestThreads"]
        ),
        // The flannel.<VNI> device and its entries in a network namespace.
        .testTarget(
            name: "KernelVXLANRootTests",
            dependencies: ["KernelVXLAN", "Netlink", "Routes", "Addressing", "CShims", "TestSupport", "TestThreads"]
        ),
        // Routes, links, addresses, neighbours and FDB entries against the kernel in a network namespace.
        .testTarget(name: "NetlinkRootTests", dependencies: ["Netlink", "Addressing", "CShims", "TestThreads"]),
        // `weft replay` against the kernel's VXLAN in namespaces, with tcpdump.
        .testTarget(
            name: "CaptureRootTests",
            dependencies: ["Capture", "Packets", "Addressing", "TestSupport", "TestThreads"]
        ),
        // /usr/bin/etcd and nft: etcd in a network namespace of its own, its traffic dropped while the
        // client holds connections to it.
        .testTarget(
            name: "EtcdRootTests",
            dependencies: [
                "Etcd", "HTTP1", "EtcdTestSupport", "CShims",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"), "TestSupport",
            ]
        ),
        // Needs root and containernetworking-plugins: weft-cni run as a runtime runs it, delegating to
        // the real bridge and host-local, containers on two hosts joined by `weft dataplane`. Skips otherwise.
        .testTarget(name: "CNIIntegrationTests", dependencies: ["Addressing", "TestThreads", "TestSupport"]),
        // Needs root, /usr/bin/etcd and iperf3: real weftd processes in namespaces, against etcd or
        // (Kubernetes mode) weft-kube-test-server in a namespace of its own. Skips otherwise.
        .testTarget(
            name: "WeftdIntegrationTests",
            dependencies: ["Config", "Addressing", "Status", "TestSupport", "TestThreads", "KubeTestServer"]
        ),
        // dist/kubernetes/weft.yml read as the API server would: objects, RBAC, weftd's flags, probes,
        // mounts, and the ConfigMap's configs through weftd's and weft-cni's own parsers.
        .testTarget(
            name: "DeploymentTests",
            dependencies: ["Daemon", "Config", "CNI", .product(name: "Yams", package: "Yams")]
        ),
        // Needs root and umoci: scripts/image on the build `swift build --build-tests` made, the image
        // unpacked, its entrypoint and the manifest's init containers run with its rootfs as /. Skips otherwise.
        .testTarget(
            name: "ImageIntegrationTests",
            dependencies: ["Daemon", "TestThreads", "TestSupport", .product(name: "Yams", package: "Yams")]
        ),
    ]
)

// libFuzzer target for the packet and config parsers, built only by scripts/fuzz
// (`swift build -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library` needs no main).
if Context.environment["WEFT_FUZZ"] != nil {
    package.targets.append(
        .target(
            name: "WeftFuzz",
            dependencies: ["Addressing", "Packets", "Config"],
            path: "Fuzz/WeftFuzz"
        )
    )
}
