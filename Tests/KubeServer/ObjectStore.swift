import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// Where a watch's events go: the server's open response stream. Called with the store's lock held,
/// so implementations only hand the bytes to their event loop.
protocol WatchSink: AnyObject, Sendable {
    func send(_ line: ByteBuffer)
    /// Ends the stream cleanly (the zero-length chunk), as kube-apiserver does at a watch's timeout.
    func finish()
}

/// How a watch begins: the events to write first, or the in-stream 410 for a version already forgotten.
enum WatchStart {
    case started(initial: ByteBuffer)
    case expired(line: ByteBuffer)
}

/// The objects, one global resourceVersion, the event history watches resume from, and the open
/// watches. Every real change bumps the version once, is serialized once, and the same bytes go to
/// every watcher; a write that changes nothing bumps nothing and emits nothing.
public final class ObjectStore: @unchecked Sendable {
    private struct Entry {
        var object: JSONValue
        /// The object as a list item: no kind/apiVersion, as kube-apiserver writes list items.
        var item: [UInt8]
    }

    private struct Event {
        let revision: Int
        let resource: Resource
        /// Only what selectors read (name, namespace, labels): history keeps many versions of a node.
        let identity: JSONValue
        let line: ByteBuffer
    }

    private struct Registration {
        let sink: any WatchSink
        let resource: Resource
        let namespace: String?
        let selector: Selector
    }

    private let lock = NIOLock()
    private var revision: Int
    private var objects: [Resource: [ObjectKey: Entry]] = [:]
    private var history: [Event] = []
    /// Watches from any version ≥ this are served from history; older ones get 410 Expired.
    private var historyStart: Int
    private let historyLimit: Int
    private var watches: [ObjectIdentifier: Registration] = [:]
    private let allocator = ByteBufferAllocator()

    /// `historyLimit` events are kept for watches to resume from; older ones are forgotten in halves.
    public init(initialResourceVersion: Int = 1000, historyLimit: Int = 100_000) {
        revision = initialResourceVersion
        historyStart = initialResourceVersion
        self.historyLimit = historyLimit
    }

    public var resourceVersion: Int { lock.withLock { revision } }

    /// `NIOLock.withLock` rethrows untyped; the store's failures are all `StatusError`.
    private func locked<T>(_ body: () throws(StatusError) -> T) throws(StatusError) -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }
    /// The oldest version a watch may start from; `compact()` moves it to the current version.
    public var oldestWatchableVersion: Int { lock.withLock { historyStart } }
    public var openWatches: Int { lock.withLock { watches.count } }

    public func count(_ resource: Resource) -> Int { lock.withLock { objects[resource]?.count ?? 0 } }

    // MARK: Reads

    /// The object with kind and apiVersion, as GET returns it.
    public func get(_ resource: Resource, _ key: ObjectKey) throws(StatusError) -> JSONValue {
        let entry = lock.withLock { objects[resource]?[key] }
        guard let entry else { throw .notFound(resource.name, key.name) }
        return Self.withKind(entry.object, resource)
    }

    public func object(_ resource: Resource, _ key: ObjectKey) -> JSONValue? { try? get(resource, key) }

    /// A `<Kind>List` body. `resourceVersion` "" or "0" is the current state; an older N is the current
    /// state too (kube-apiserver's watch cache serves "not older than N"), except that an N already
    /// forgotten gives 410 when `exact` asks for that version itself, as an etcd read of a compacted
    /// revision does (client-go's reflector then relists with resourceVersion="").
    func list(
        _ resource: Resource,
        namespace: String?,
        selector: Selector,
        resourceVersion: String?,
        exact: Bool
    ) throws(StatusError) -> [UInt8] {
        try locked { () throws(StatusError) -> [UInt8] in
            if let text = resourceVersion, !text.isEmpty, text != "0" {
                guard let requested = Int(text), requested > 0 else {
                    throw .badRequest("resourceVersion: Invalid value: \"\(text)\": must be a non-negative integer")
                }
                if requested > revision { throw .tooLargeResourceVersion(requested, current: revision) }
                if exact, requested < historyStart {
                    throw .expired("The resourceVersion for the provided list is too old.")
                }
            }
            var body = Array(
                #"{"kind":"\#(resource.kind)List","apiVersion":"v1","metadata":{"resourceVersion":"\#(revision)"},"items":["#
                    .utf8
            )
            var first = true
            for entry in matching(resource, namespace: namespace, selector: selector) {
                if !first { body.append(UInt8(ascii: ",")) }
                first = false
                body.append(contentsOf: entry.item)
            }
            body.append(contentsOf: "]}".utf8)
            return body
        }
    }

    private func matching(_ resource: Resource, namespace: String?, selector: Selector) -> [Entry] {
        let all = objects[resource] ?? [:]
        if let name = selector.name {
            guard
                let entry = all[ObjectKey(namespace: resource.namespaced ? namespace : nil, name: name)]
                    ?? (namespace == nil ? all.first(where: { $0.key.name == name })?.value : nil)
            else { return [] }
            return selector.matches(entry.object) ? [entry] : []
        }
        return all.keys.sorted().compactMap { key in
            guard namespace == nil || key.namespace == namespace, let entry = all[key], selector.matches(entry.object)
            else { return nil }
            return entry
        }
    }

    // MARK: Writes

    /// POST: a new object with uid, creationTimestamp and the next resourceVersion.
    public func create(
        _ resource: Resource,
        _ object: JSONValue,
        namespace: String? = nil
    ) throws(StatusError) -> JSONValue {
        guard case .object = object else { throw .badRequest("the body of the request must be a JSON object") }
        var object = object
        object["kind"] = nil
        object["apiVersion"] = nil
        var metadata = object["metadata"]?.object ?? [:]
        guard let name = metadata["name"]?.string, !name.isEmpty else {
            throw .invalid(
                kind: resource.kind,
                name: "",
                causes: [
                    .init(
                        reason: "FieldValueRequired",
                        message: "Required value: name or generateName is required",
                        field: "metadata.name"
                    )
                ]
            )
        }
        if resource.namespaced {
            if let given = metadata["namespace"]?.string, !given.isEmpty, let namespace, given != namespace {
                throw .badRequest(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            }
            metadata["namespace"] = .string(namespace ?? metadata["namespace"]?.string ?? "default")
        } else {
            metadata["namespace"] = nil
        }
        metadata["uid"] = .string(UUID().uuidString.lowercased())
        metadata["creationTimestamp"] = .string(Self.timestamp())
        metadata["resourceVersion"] = nil
        object["metadata"] = .object(metadata)
        if object["spec"] == nil { object["spec"] = [:] }
        if object["status"] == nil { object["status"] = [:] }
        if resource == .nodes {
            NodeRules.mirrorPodCIDRs(&object)
            let causes = NodeRules.validate(object, previous: nil)
            if !causes.isEmpty { throw .invalid(kind: resource.kind, name: name, causes: causes) }
        }
        let key = ObjectKey(namespace: resource.namespaced ? metadata["namespace"]?.string : nil, name: name)
        return try locked { () throws(StatusError) -> JSONValue in
            if objects[resource]?[key] != nil { throw .alreadyExists(resource.name, name) }
            return store(resource, key, object, type: "ADDED")
        }
    }

    /// PATCH and PUT: `change` turns the stored object (with kind/apiVersion) into the requested one;
    /// then the strategy of the main resource or its status subresource, validation, the
    /// resourceVersion precondition, and the no-op check apply, under the lock.
    func update(
        _ resource: Resource,
        _ key: ObjectKey,
        statusSubresource: Bool,
        _ change: (JSONValue) throws(StatusError) -> JSONValue
    ) throws(StatusError) -> JSONValue {
        try locked { () throws(StatusError) -> JSONValue in
            guard let current = objects[resource]?[key]?.object else { throw .notFound(resource.name, key.name) }
            var candidate = try change(Self.withKind(current, resource))
            guard case .object = candidate else { throw .badRequest("the result of the request must be a JSON object") }
            candidate["kind"] = nil
            candidate["apiVersion"] = nil
            var metadata = candidate["metadata"]?.object ?? [:]
            if let name = metadata["name"]?.string, name != key.name {
                throw .badRequest("the name of the object (\(name)) does not match the name on the URL (\(key.name))")
            }
            if let requested = metadata["resourceVersion"]?.string, !requested.isEmpty,
                requested != current.value(at: "metadata.resourceVersion")?.string
            {
                throw .conflict(resource.name, key.name)
            }
            for field in ["name", "namespace", "uid", "creationTimestamp", "resourceVersion"] {
                metadata[field] = current["metadata"]?[field]
            }
            candidate["metadata"] = .object(metadata)
            // The status subresource writes status and metadata only; the main resource never writes status.
            if statusSubresource {
                candidate["spec"] = current["spec"]
            } else {
                candidate["status"] = current["status"]
            }
            if resource == .nodes {
                NodeRules.mirrorPodCIDRs(&candidate)
                let causes = NodeRules.validate(candidate, previous: current)
                if !causes.isEmpty { throw .invalid(kind: resource.kind, name: key.name, causes: causes) }
            }
            if candidate == current { return Self.withKind(current, resource) }
            return store(resource, key, candidate, type: "MODIFIED")
        }
    }

    public func patch(
        _ resource: Resource,
        _ key: ObjectKey,
        status: Bool = false,
        type: PatchType,
        _ patch: JSONValue
    ) throws(StatusError) -> JSONValue {
        try update(resource, key, statusSubresource: status) { (object) throws(StatusError) -> JSONValue in
            do {
                return try Patch.apply(type, patch, to: object)
            } catch let failure as PatchFailure {
                if failure.badRequest { throw .badRequest(failure.description) }
                throw StatusError(code: 422, reason: "Invalid", message: failure.description)
            } catch {
                throw .badRequest("\(error)")
            }
        }
    }

    /// DELETE; the DELETED event carries the object at the deletion's resourceVersion.
    public func delete(
        _ resource: Resource,
        _ key: ObjectKey,
        preconditions: JSONValue? = nil
    ) throws(StatusError) -> JSONValue {
        try locked { () throws(StatusError) -> JSONValue in
            guard let current = objects[resource]?[key]?.object else { throw .notFound(resource.name, key.name) }
            for field in ["uid", "resourceVersion"] {
                if let wanted = preconditions?[field]?.string, wanted != current["metadata"]?[field]?.string {
                    throw .conflict(resource.name, key.name)
                }
            }
            objects[resource]?[key] = nil
            revision += 1
            var gone = current
            gone["metadata"]?["resourceVersion"] = .string(String(revision))
            let full = Self.withKind(gone, resource)
            emit(resource, full, type: "DELETED")
            return full
        }
    }

    /// Creates or replaces an object without validation or strategy (a test fixture, e.g. a node with
    /// three podCIDRs that a real apiserver would refuse). Emits ADDED or MODIFIED like any write.
    @discardableResult
    public func put(_ resource: Resource, _ object: JSONValue) -> JSONValue {
        var object = object
        object["kind"] = nil
        object["apiVersion"] = nil
        let name = object.value(at: "metadata.name")?.string ?? ""
        let namespace = resource.namespaced ? (object.value(at: "metadata.namespace")?.string ?? "default") : nil
        if resource.namespaced { object["metadata"]?["namespace"] = .string(namespace!) }
        let key = ObjectKey(namespace: namespace, name: name)
        return lock.withLock {
            let previous = objects[resource]?[key]?.object
            if object.value(at: "metadata.uid") == nil {
                object["metadata"]?["uid"] =
                    previous?.value(at: "metadata.uid") ?? .string(UUID().uuidString.lowercased())
            }
            if object.value(at: "metadata.creationTimestamp") == nil {
                object["metadata"]?["creationTimestamp"] =
                    previous?.value(at: "metadata.creationTimestamp") ?? .string(Self.timestamp())
            }
            return store(resource, key, object, type: previous == nil ? "ADDED" : "MODIFIED")
        }
    }

    /// Must hold the lock. Bumps the version, keeps the item bytes and emits one event.
    private func store(_ resource: Resource, _ key: ObjectKey, _ object: JSONValue, type: String) -> JSONValue {
        revision += 1
        var object = object
        object["metadata"]?["resourceVersion"] = .string(String(revision))
        objects[resource, default: [:]][key] = Entry(object: object, item: object.serialized)
        let full = Self.withKind(object, resource)
        emit(resource, full, type: type)
        return full
    }

    // MARK: Events and watches

    /// Must hold the lock.
    private func emit(_ resource: Resource, _ full: JSONValue, type: String) {
        let metadata = full["metadata"]
        let identity: JSONValue = [
            "metadata": .object(
                [
                    "name": metadata?["name"], "namespace": metadata?["namespace"],
                    "labels": metadata?["labels"],
                ].compactMapValues { $0 }
            )
        ]
        let event = Event(
            revision: revision,
            resource: resource,
            identity: identity,
            line: eventLine(type, full.serialized)
        )
        history.append(event)
        if history.count > historyLimit {
            history.removeFirst(history.count / 2)
            historyStart = history[0].revision - 1
        }
        for registration in watches.values where registration.resource == resource && Self.matches(registration, full) {
            registration.sink.send(event.line)
        }
    }

    private static func matches(_ registration: Registration, _ object: JSONValue) -> Bool {
        if let namespace = registration.namespace, object.value(at: "metadata.namespace")?.string != namespace {
            return false
        }
        return registration.selector.matches(object)
    }

    private func eventLine(_ type: String, _ object: [UInt8]) -> ByteBuffer {
        var line = allocator.buffer(capacity: object.count + 32)
        line.writeString(#"{"type":"\#(type)","object":"#)
        line.writeBytes(object)
        line.writeString("}\n")
        return line
    }

    /// An event line from a list item's bytes, splicing kind and apiVersion in instead of serializing
    /// the object again (a watch from 0 over 5,000 nodes writes 5,000 of these).
    private func writeEvent(_ type: String, _ resource: Resource, item: [UInt8], into buffer: inout ByteBuffer) {
        buffer.writeString(#"{"type":"\#(type)","object":{"apiVersion":"v1","kind":"\#(resource.kind)""#)
        if item.count > 2 { buffer.writeString(",") }
        buffer.writeBytes(item[1...])
        buffer.writeString("}\n")
    }

    /// Registers `sink` and returns what to write first: synthetic ADDED events for `from` "" or "0",
    /// the retained events after N for `from` N, or the ERROR 410 event when N is forgotten.
    func watch(
        _ resource: Resource,
        namespace: String?,
        selector: Selector,
        from: String?,
        sink: any WatchSink
    ) throws(StatusError) -> WatchStart {
        try locked { () throws(StatusError) -> WatchStart in
            var initial = allocator.buffer(capacity: 0)
            if let text = from, !text.isEmpty, text != "0" {
                guard let requested = Int(text), requested > 0 else {
                    throw .badRequest("resourceVersion: Invalid value: \"\(text)\": must be a non-negative integer")
                }
                if requested < historyStart {
                    let status = StatusError.expired("too old resource version: \(requested) (\(historyStart))")
                    var line = allocator.buffer(capacity: 256)
                    line.writeString(#"{"type":"ERROR","object":"#)
                    line.writeBytes(status.body)
                    line.writeString("}\n")
                    return .expired(line: line)
                }
                let registration = Registration(
                    sink: sink,
                    resource: resource,
                    namespace: namespace,
                    selector: selector
                )
                var low = 0
                var high = history.count
                while low < high {
                    let middle = (low + high) / 2
                    if history[middle].revision <= requested { low = middle + 1 } else { high = middle }
                }
                for event in history[low...]
                where event.resource == resource && Self.matches(registration, event.identity) {
                    var line = event.line
                    initial.writeBuffer(&line)
                }
                watches[ObjectIdentifier(sink)] = registration
            } else {
                for entry in matching(resource, namespace: namespace, selector: selector) {
                    writeEvent("ADDED", resource, item: entry.item, into: &initial)
                }
                watches[ObjectIdentifier(sink)] = Registration(
                    sink: sink,
                    resource: resource,
                    namespace: namespace,
                    selector: selector
                )
            }
            return .started(initial: initial)
        }
    }

    /// Sends a BOOKMARK at the current version, ordered after every event already sent to `sink`.
    func bookmark(_ sink: any WatchSink, resource: Resource) {
        lock.withLock {
            guard watches[ObjectIdentifier(sink)] != nil else { return }
            let object = Array(
                #"{"kind":"\#(resource.kind)","apiVersion":"v1","metadata":{"resourceVersion":"\#(revision)","creationTimestamp":null}}"#
                    .utf8
            )
            sink.send(eventLine("BOOKMARK", object))
        }
    }

    func unregister(_ sink: any WatchSink) {
        _ = lock.withLock { watches.removeValue(forKey: ObjectIdentifier(sink)) }
    }

    /// Forgets the event history: a watch from any version before now gets ERROR 410.
    public func compact() {
        lock.withLock {
            history.removeAll()
            historyStart = revision
        }
    }

    /// Ends every open watch cleanly, as kube-apiserver does at a watch's timeout or on shutdown.
    public func closeWatches() {
        let open = lock.withLock {
            let open = watches.values.map(\.sink)
            watches.removeAll()
            return open
        }
        for sink in open { sink.finish() }
    }

    // MARK: Helpers

    static func withKind(_ object: JSONValue, _ resource: Resource) -> JSONValue {
        var full = object
        full["kind"] = .string(resource.kind)
        full["apiVersion"] = "v1"
        return full
    }

    static func timestamp(_ date: Date = Date()) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}
