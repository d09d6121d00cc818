/// Collects the pages of a LIST: client-go's pager asks for 500 nodes at a time and follows
/// metadata.continue (a watch-cache list at resourceVersion=0 ignores the limit and answers whole).
public struct NodeListPages: Sendable {
    public private(set) var items: [Node] = []
    /// The snapshot's resourceVersion, from the last page.
    public private(set) var resourceVersion = ""

    public init() {}

    /// Adds a page; returns the continue token for the next request, or nil when the list is complete.
    public mutating func add(_ page: NodeList) -> String? {
        items += page.items
        if let version = page.metadata.resourceVersion, !version.isEmpty { resourceVersion = version }
        guard let token = page.metadata.continue, !token.isEmpty else { return nil }
        return token
    }
}
