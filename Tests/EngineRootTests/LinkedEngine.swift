import Engine
import Netlink
import Routes
import TestThreads

extension TestNamespace {
    /// An engine started inside this namespace (its workers stay there) with its TUN set up as
    /// weftd sets it up: `configuration.link`, warnings to `log`.
    func startEngine(
        _ configuration: EngineConfiguration,
        routes: [Route],
        ipv6Routes: [IPv6Route] = [],
        log: @escaping Engine.Log = { _ in }
    ) throws -> Engine {
        try enter {
            let engine = Engine(configuration: configuration, routes: routes, ipv6Routes: ipv6Routes, log: log)
            try engine.start()
            try configuration.link.configure(warn: log)
            return engine
        }
    }
}
